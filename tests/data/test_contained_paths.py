"""Manifest lines are contained and counted: image paths outside the manifest's folder and the data
roots are reported (file:line) and never opened, a non-UTF-8 line is one issue, and split / yolo /
compact / evaluate say what they skipped and why (real files, real stage commands)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from data.manifest import PATH_OUTSIDE_ROOT, LabeledImage, read_manifest, write_manifest
from runtime.records import Plate

ROOT = Path(__file__).resolve().parents[2]


def scene(path: Path, width: int = 200, height: int = 120, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    return path


def record(image: str, text: str = "ABC1234", box=(10, 10, 90, 40), **extra) -> str:
    return json.dumps(
        {"image": image, "width": 200, "height": 120, "plates": [{"box": list(box), "text": text}], **extra}
    )


def run_stage(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )


def test_paths_outside_the_manifest_folder_are_reported_and_skipped(tmp_path):
    data = tmp_path / "set"
    scene(data / "images" / "a.jpg")
    secret = scene(tmp_path / "elsewhere" / "secret.jpg")
    (data / "images" / "link.jpg").symlink_to(secret)  # a link out of the folder: resolved first
    (data / "images" / "inside_link.jpg").symlink_to(data / "images" / "a.jpg")
    lines = [
        record("images/a.jpg"),
        record("/etc/passwd"),
        record("../elsewhere/secret.jpg"),
        record(str(secret)),
        record("images/link.jpg"),
        record("images/inside_link.jpg"),
        record(str(data / "images" / "a.jpg")),  # absolute, but inside the folder
    ]
    (data / "labels.jsonl").write_text("\n".join(lines) + "\n")
    manifest = read_manifest(data)
    assert [i.line for i in manifest.images] == [1, 6, 7]
    assert [(i.line, i.kind) for i in manifest.issues] == [(n, PATH_OUTSIDE_ROOT) for n in (2, 3, 4, 5)]
    assert all(
        str(i).startswith(f"{data / 'labels.jsonl'}:{i.line}: {PATH_OUTSIDE_ROOT}") for i in manifest.issues
    )
    # A configured root admits its folder; allow_outside admits anything.
    assert [i.line for i in read_manifest(data, roots=[tmp_path / "elsewhere"]).images] == [1, 3, 4, 5, 6, 7]
    assert len(read_manifest(data, allow_outside=True).images) == 7


def test_validate_never_opens_an_outside_path(tmp_path):
    """A FIFO outside the folder: opening it would block the command (and the timeout would fail
    the test); it is reported instead."""
    data = tmp_path / "set"
    scene(data / "images" / "a.jpg")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    (data / "labels.jsonl").write_text(record("images/a.jpg") + "\n" + record(str(fifo)) + "\n")
    proc = run_stage("data", "action=validate", f"src={data}")
    assert proc.returncode == 1
    assert f"labels.jsonl:2: {PATH_OUTSIDE_ROOT}: {fifo}" in proc.stdout
    assert "1 path_outside_root" in proc.stdout


def test_one_non_utf8_line_is_named_and_the_others_are_read(tmp_path):
    data = tmp_path / "set"
    scene(data / "images" / "a.jpg")
    scene(data / "images" / "b.jpg")
    raw = (
        record("images/a.jpg").encode() + b"\n" + record("images/NAME.jpg").encode().replace(b"NAME", b"\xff")
    )
    (data / "labels.jsonl").write_bytes(raw + b"\n" + record("images/b.jpg").encode() + b"\n")
    manifest = read_manifest(data)
    assert [i.line for i in manifest.images] == [1, 3]
    (issue,) = manifest.issues
    assert (issue.line, issue.kind) == (2, "not_utf8") and "0xff" in issue.message


def test_compact_never_writes_outside_out(tmp_path):
    src = tmp_path / "src"
    outside = scene(tmp_path / "other" / "images" / "far.jpg")
    scene(src / "images" / "near.jpg", seed=1)
    (src / "labels.jsonl").write_text(record("images/near.jpg") + "\n" + record(str(outside)) + "\n")
    out = tmp_path / "out"
    # Contained by default: the absolute line is reported and not copied.
    proc = run_stage("data", "action=compact", f"src={src}", f"out={out}")
    assert proc.returncode == 0, proc.stderr
    assert PATH_OUTSIDE_ROOT in proc.stdout
    assert [i.image for i in read_manifest(out).images] == ["images/near.jpg"]
    # Allowed: the copy still lands under out/.
    out2 = tmp_path / "out2"
    proc = run_stage("data", "action=compact", f"src={src}", f"out={out2}", "paths.allow_outside_roots=true")
    assert proc.returncode == 0, proc.stderr
    written = sorted(p for p in tmp_path.rglob("*.jpg") if p.stat().st_mtime >= out2.stat().st_mtime - 1)
    assert all(p.is_relative_to(out2) for p in written if p.parent.name != "images" or out2 in p.parents)
    images = [i.image for i in read_manifest(out2).images]
    assert len(images) == 2 and all((out2 / i).resolve().is_relative_to(out2.resolve()) for i in images)
    assert not (tmp_path / "other" / "images" / "far.jpg.jpg").exists()


def test_split_counts_every_line_it_leaves_out(tmp_path):
    data = tmp_path / "set"
    lines = []
    for k in range(20):
        scene(data / "images" / f"{k}.jpg", seed=k)
        lines.append(record(f"images/{k}.jpg", text=f"ABC{k:04d}"))
    bad = ["{not json", json.dumps({"image": "images/0.jpg"}), json.dumps([1, 2]), record("/etc/passwd")]
    dup = [record("images/3.jpg", text="XYZ0003"), record("images/./4.jpg")]
    (data / "labels.jsonl").write_text("\n".join(lines + bad + dup) + "\n")  # 26 lines
    out = tmp_path / "split"
    proc = run_stage("data", "action=split", f"src={data}", f"out={out}")
    assert proc.returncode == 0, proc.stderr
    written = read_manifest(out, roots=[data])
    assert len(written.images) == 20
    assert "skipped 6 lines" in proc.stdout
    issues = (out / "issues.txt").read_text().splitlines()
    assert len(issues) == 6 and sum("duplicate_image" in i for i in issues) == 2
    assert {i.split(":")[1] for i in issues} == {str(n) for n in range(21, 27)}


def test_yolo_skips_duplicate_lines_instead_of_overwriting(tmp_path):
    data = tmp_path / "set"
    scene(data / "images" / "a.jpg")
    scene(data / "images" / "b.jpg", seed=1)
    lines = [record("images/a.jpg"), record("images/b.jpg"), record("images/a.jpg", box=(100, 50, 190, 110))]
    (data / "labels.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "yolo"
    proc = run_stage("data", "action=yolo", f"src={data}", f"out={out}", "yolo.image_size=0")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 images" in proc.stdout and "1 manifest line (duplicate_image)" in proc.stdout
    labels = sorted((out / "labels" / "train").glob("*.txt"))
    assert len(labels) == 2
    # The first line's box was written for a.jpg, not the duplicate's.
    a_label = next(p for p in labels if p.name.startswith("a_")).read_text().split()
    assert abs(float(a_label[1]) - 50 / 200) < 1e-3


def test_evaluate_reports_duplicates_outside_boxes_and_lowercase_texts(tmp_path):
    data = tmp_path / "set"
    for name in ("a", "b", "c"):
        scene(data / "images" / f"{name}.jpg", seed=ord(name))
    lines = [
        record("images/a.jpg"),
        record("images/a.jpg"),
        record("images/b.jpg", box=(150, 80, 260, 140)),
        record("images/c.jpg", text="abc1234"),
    ]
    (data / "labels.jsonl").write_text("\n".join(lines) + "\n")
    proc = run_stage(
        "evaluate", f"dataset={data}", "adapter=oracle", f"report_dir={tmp_path / 'r'}", "gallery=0"
    )
    assert proc.returncode == 0, proc.stderr
    assert "3/3 images evaluated" in proc.stdout
    for kind in ("duplicate_lines: 1", "boxes_outside_image: 1", "illegal_texts: 1"):
        assert kind in proc.stdout
    issues = (tmp_path / "r" / "issues.txt").read_text()
    assert "labels.jsonl:2: duplicate_image" in issues and "labels.jsonl:4: illegal_text" in issues


def test_written_manifests_stay_readable_with_their_roots(tmp_path):
    data = tmp_path / "set"
    scene(data / "a.jpg")
    manifest = read_manifest(
        write_manifest(data, [LabeledImage("a.jpg", 200, 120, [Plate(box=(1, 1, 5, 5))])])
    )
    assert len(manifest.images) == 1 and not manifest.issues
