"""The plate manifest: round trips, malformed lines, rebasing."""

from __future__ import annotations

import json

from helpers.data_scenes import draw_scene

from data.manifest import LabeledImage, read_manifest, rebase, write_manifest
from runtime.records import Char, Plate


def test_manifest_round_trip_keeps_unknown_fields(tmp_path):
    plate = Plate(
        box=(1, 2, 30, 12),
        text="AB12",
        lines=1,
        raw_text="AB-12",
        extra={"plate_colour": "grey"},
        chars=[
            Char("A", (2, 3, 8, 11)),
            Char("B", (9, 3, 15, 11)),
            Char("1", (16, 3, 22, 11)),
            Char("2", (23, 3, 29, 11)),
        ],
    )
    item = LabeledImage(
        image="images/x.jpg",
        width=40,
        height=20,
        plates=[plate],
        region="br",
        split="val",
        extra={"source": "somewhere", "crop": False},
    )
    path = write_manifest(tmp_path, [item])
    back = read_manifest(path)
    assert back.issues == []
    assert back.images[0].to_dict() == item.to_dict()
    assert back.images[0].plates[0].extra == {"plate_colour": "grey"}
    assert back.images[0].plates[0].raw_text == "AB-12"


def test_malformed_lines_are_reported_with_line_numbers(tmp_path):
    good = {"image": "a.jpg", "width": 10, "height": 10, "plates": []}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"image": "b.jpg", "width": 0, "height": 5}),
        json.dumps({"image": "c.jpg", "width": 10, "height": 10, "plates": [{"box": [5, 5, 1, 1]}]}),
    ]
    (tmp_path / "labels.jsonl").write_text("\n".join(lines) + "\n")
    manifest = read_manifest(tmp_path)
    assert len(manifest.images) == 1
    assert [(i.line, i.kind) for i in manifest.issues] == [
        (2, "malformed_json"),
        (3, "malformed_record"),
        (4, "malformed_record"),
    ]
    assert "x2 < x1" in manifest.issues[2].message


def test_rebase_keeps_images_reachable(tmp_path):
    draw_scene(tmp_path / "a" / "img.jpg", 20, 20, [])
    manifest = read_manifest(write_manifest(tmp_path / "a", [LabeledImage("img.jpg", 20, 20)]))
    moved = read_manifest(
        write_manifest(tmp_path / "b" / "c", rebase(manifest, tmp_path / "b" / "c")), roots=[tmp_path / "a"]
    )
    assert moved.image_path(moved.images[0]).resolve() == (tmp_path / "a" / "img.jpg").resolve()
