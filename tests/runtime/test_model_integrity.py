"""Model integrity and zoo containment: every model file is checked against the sha256 its zoo JSON
records before it is opened, only ONNX/HEF files inside their entry's folder are loaded, and a
JSON that is not a model entry is named in the error. Uses copies of the shipped zoo (real models,
real ONNX Runtime)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from helpers.runtime_dev_zoo import make_scene

from runtime.model_zoo import (
    DEFAULT_ZOO,
    ModelIntegrityError,
    ZooError,
    file_sha256,
    find_models,
    scan_zoo,
)
from runtime.pipeline import Predictor

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def copy_zoo(dest: Path, precision: str = "float") -> Path:
    """The shipped zoo's fp32 entries (JSON, labels, ONNX; no checkpoints) copied to ``dest``."""
    for entry in sorted(DEFAULT_ZOO.glob(f"*_{precision}_*")):
        target = dest / entry.name
        target.mkdir(parents=True)
        for f in entry.iterdir():
            if f.suffix in (".json", ".onnx") and f.name != "export_report.json":
                shutil.copyfile(f, target / f.name)
    if not list(dest.glob("*/*.onnx")):
        pytest.skip(f"{DEFAULT_ZOO} holds no {precision} ONNX models")
    return dest


def flip_byte(path: Path) -> None:
    """Change one bit in the middle of the file (inside a weight tensor: the model still loads)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT
    )


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scene") / "scene.jpg"
    cv2.imwrite(str(path), make_scene(1, 2)[0])
    return path


def test_a_tampered_model_is_refused_naming_the_file_and_both_hashes(tmp_path, scene, capfd):
    zoo = copy_zoo(tmp_path / "zoo")
    det, _ = find_models(zoo)
    recorded = json.loads(det.json_path.read_text())["Checksum"]
    flip_byte(det.model_path)
    actual = file_sha256(det.model_path)
    assert actual != recorded
    with pytest.raises(ModelIntegrityError) as e:
        Predictor(zoo)
    message = str(e.value)
    assert str(det.model_path) in message and actual in message and recorded in message
    # The CLI: one line, exit 2, nothing read.
    out = run_cli(str(scene), "--zoo", str(zoo))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "does not match" in out.stderr and actual in out.stderr
    # --allow-unverified loads it (development), with a warning.
    out = run_cli(str(scene), "--zoo", str(zoo), "--allow-unverified", "--json")
    assert out.returncode == 0, out.stderr
    assert "warning: model verification is off" in out.stderr
    assert json.loads(out.stdout.splitlines()[0])["source"] == str(scene)


def test_an_entry_without_a_recorded_hash_is_refused_unless_allowed(tmp_path):
    zoo = copy_zoo(tmp_path / "zoo")
    _, ocr = find_models(zoo)
    spec = json.loads(ocr.json_path.read_text())
    spec["Checksum"] = "not-a-sha256"
    ocr.json_path.write_text(json.dumps(spec))
    with pytest.raises(ModelIntegrityError, match="records no sha256"):
        find_models(zoo)
    # Where Checksum means something else, our own field carries the hash.
    spec["LPR"]["model_sha256"] = file_sha256(ocr.model_path)
    ocr.json_path.write_text(json.dumps(spec))
    assert find_models(zoo)[1].model_path == ocr.model_path
    spec["LPR"]["model_sha256"] = "0" * 64
    ocr.json_path.write_text(json.dumps(spec))
    with pytest.raises(ModelIntegrityError, match="0{64}"):
        find_models(zoo)
    assert find_models(zoo, verify=False)[1].name == ocr.name


def test_hashes_are_cached_per_file_state(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"a" * 1000)
    first = file_sha256(path)
    assert file_sha256(path) == first
    path.write_bytes(b"b" * 1001)  # another size (and mtime): hashed again
    assert file_sha256(path) != first


def test_model_path_must_stay_in_the_entry_folder_and_be_onnx_or_hef(tmp_path):
    zoo = copy_zoo(tmp_path / "zoo")
    det, _ = find_models(zoo)
    outside = tmp_path / "outside.onnx"
    shutil.copyfile(det.model_path, outside)
    spec = json.loads(det.json_path.read_text())
    for escape in ("../../outside.onnx", str(outside)):
        spec["MODEL_PARAMETERS"][0]["ModelPath"] = escape
        det.json_path.write_text(json.dumps(spec))
        with pytest.raises(ZooError, match="points outside the entry's folder"):
            scan_zoo(zoo)
    # A link inside the folder that leads out of it is resolved before the check.
    (det.json_path.parent / "link.onnx").symlink_to(outside)
    spec["MODEL_PARAMETERS"][0]["ModelPath"] = "link.onnx"
    det.json_path.write_text(json.dumps(spec))
    with pytest.raises(ZooError, match="points outside the entry's folder"):
        scan_zoo(zoo)
    # A checkpoint is a pickle: never a runtime model (with either backend: both read the zoo here).
    (det.json_path.parent / "weights.pt").write_bytes(b"\x80\x04not really a pickle")
    spec["MODEL_PARAMETERS"][0]["ModelPath"] = "weights.pt"
    det.json_path.write_text(json.dumps(spec))
    for backend in ("onnx", "degirum"):
        with pytest.raises(ZooError, match=r"its model file weights\.pt is not ONNX or HEF"):
            Predictor(zoo, backend)


def test_a_model_json_that_is_a_list_is_named(tmp_path):
    zoo = copy_zoo(tmp_path / "zoo")
    for other in zoo.glob("*plate_det--*"):  # one detector: the list must be the reason none is left
        if "--640x640_" not in other.name:
            shutil.rmtree(other)
    det, _ = find_models(zoo)
    det.json_path.write_text(json.dumps([json.loads(det.json_path.read_text())]))
    with pytest.raises(
        ZooError, match=rf"no plate_det model.*{det.json_path.name} \(a JSON list, not an object\)"
    ):
        find_models(zoo)
