"""Validation of datasets: every kind of problem, the CLI's exit codes."""

from __future__ import annotations

from helpers.data_scenes import draw_scene, run_data

from data.manifest import LabeledImage, read_manifest, write_manifest
from data.validate import validate
from runtime.records import Char, Plate


def test_validate_finds_every_kind_of_problem(tmp_path):
    draw_scene(tmp_path / "images" / "ok.jpg", 100, 60, [((10, 10, 50, 25), "AB1")])
    draw_scene(tmp_path / "images" / "small.jpg", 80, 60, [])
    (tmp_path / "images" / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    records = [
        LabeledImage("images/ok.jpg", 100, 60, [Plate((10, 10, 50, 25), "AB1")]),  # fine
        LabeledImage("images/ok.jpg", 100, 60, [Plate((10, 10, 120, 25), "ab-1")]),  # dup, outside, text
        LabeledImage("images/missing.jpg", 100, 60, []),
        LabeledImage("images/corrupt.jpg", 100, 60, []),
        LabeledImage("images/small.jpg", 100, 60, []),  # size mismatch
        LabeledImage(
            "images/small.jpg",
            80,
            60,
            [Plate((1, 1, 20, 9), "AB", chars=[Char("A", (1, 1, 9, 9)), Char("C", (10, 1, 19, 9))])],
        ),
    ]
    manifest = read_manifest(write_manifest(tmp_path, records))
    issues = validate(manifest, progress=False)
    by_line = {(i.line, i.kind) for i in issues}
    assert by_line == {
        (2, "duplicate_image"),
        (2, "box_outside_image"),
        (2, "illegal_text"),
        (3, "bad_image"),
        (4, "bad_image"),
        (5, "size_mismatch"),
        (6, "duplicate_image"),
        (6, "chars_mismatch"),
    }
    assert any("missing.jpg" in i.message and "no such image" in i.message for i in issues)
    assert any("corrupt.jpg" in i.message and "not a decodable image" in i.message for i in issues)


def test_validate_cli_exit_codes(tmp_path):
    draw_scene(tmp_path / "good" / "a.jpg", 64, 48, [((5, 5, 30, 15), "X1")])
    write_manifest(tmp_path / "good", [LabeledImage("a.jpg", 64, 48, [Plate((5, 5, 30, 15), "X1")])])
    ok = run_data("action=validate", f"src={tmp_path / 'good'}")
    assert ok.returncode == 0, ok.stderr
    assert "no issues" in ok.stdout
    write_manifest(tmp_path / "bad", [LabeledImage("gone.jpg", 64, 48, [])])
    bad = run_data("action=validate", f"src={tmp_path / 'bad'}")
    assert bad.returncode == 1
    assert "labels.jsonl:1" in bad.stdout and "gone.jpg" in bad.stdout
    missing = run_data("action=validate", f"src={tmp_path / 'nowhere'}")
    assert missing.returncode == 2 and "no manifest" in missing.stderr
