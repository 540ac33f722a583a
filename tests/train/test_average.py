"""Weight averaging of fine-tunes from one start (train/average.py, ``action=average``).

The parts are the shipped OCR checkpoint and copies of it whose weights were moved the way a
fine-tune moves them (a real gradient step on a real crop would need a training run; a shift of
every float tensor is what averaging sees either way). The average must lie where the shares put
it, load in Ultralytics and read a real crop, hold no path of this machine, and say what it was
made from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from data.manifest import read_manifest
from stage.files import sha256_file
from train.average import average_checkpoints
from train.checkpoints import record_checkpoint
from train.errors import TrainError
from train.publish import machine_paths, provenance

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_OCR = ROOT / "weights" / "yolov8n_relu6_plate_ocr.pt"
SHIPPED_DET = ROOT / "weights" / "yolov8n_relu6_plate_det.pt"
UC3M_CROPS = ROOT.parent / "shared" / "datasets" / "uc3m_lp_crops"


def _load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _shifted(src: Path, out: Path, by: float, registry: Path, run: Path | None = None) -> Path:
    """A copy of ``src`` with every float tensor of its network moved by ``by`` times its own
    magnitude (weights, biases and BatchNorm statistics alike), recorded as ours."""
    import torch

    ckpt = _load(src)
    net = ckpt["model"]
    state = {
        k: (v + by * v.abs().mean() if v.is_floating_point() else v) for k, v in net.state_dict().items()
    }
    net.load_state_dict(state)
    if run is not None:  # as a training run leaves it: its folder inside
        ckpt["train_args"]["save_dir"] = str(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out)
    record_checkpoint(out, registry)
    return out


def _floats(path: Path) -> dict:
    return {k: v for k, v in _load(path)["model"].state_dict().items() if v.is_floating_point()}


def test_the_average_lies_where_the_shares_put_it(tmp_path):
    import torch

    registry = tmp_path / "trusted.sha256"
    run = tmp_path / "runs" / "ocr_run"
    moved = _shifted(SHIPPED_OCR, run / "weights" / "last.pt", 0.02, registry, run=run)
    out = tmp_path / "soup" / "ocr_soup.pt"
    result = average_checkpoints([SHIPPED_OCR, moved], out, registry, shares=[3, 1])

    a, b, avg = _floats(SHIPPED_OCR), _floats(moved), _floats(out)
    assert a.keys() == avg.keys()
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert len(changed) > 100  # every conv weight, bias and BN statistic moved
    for k in changed:  # averaged in float32, stored in the parts' dtype (the shipped one is half)
        expected = (0.75 * a[k].float() + 0.25 * b[k].float()).to(a[k].dtype)
        assert avg[k].dtype == a[k].dtype
        torch.testing.assert_close(avg[k], expected)
    # integer buffers (BatchNorm's batch counter) are the first part's
    ints_a = {k: v for k, v in _load(SHIPPED_OCR)["model"].state_dict().items() if not v.is_floating_point()}
    ints_out = {k: v for k, v in _load(out)["model"].state_dict().items() if not v.is_floating_point()}
    assert ints_a.keys() == ints_out.keys() and all(torch.equal(ints_a[k], ints_out[k]) for k in ints_a)

    saved = _load(out)
    assert machine_paths(saved) == [] and saved["ema"] is None and saved.get("optimizer") is None
    parts = provenance(saved)["averaged_from"]
    assert [p["file"] for p in parts] == [SHIPPED_OCR.name, "last.pt"]
    assert [p["share"] for p in parts] == [0.75, 0.25]
    assert [p["sha256"] for p in parts] == [sha256_file(SHIPPED_OCR), sha256_file(moved)]
    assert parts[0]["training_set_hash"] == provenance(_load(SHIPPED_OCR))["training_set_hash"]
    assert len(provenance(saved)["training_set_hash"]) == 64
    assert result["sha256"] == sha256_file(out) and result["sha256"] in registry.read_text()
    assert not result["shipped"]


def test_the_average_of_a_model_with_itself_is_that_model_and_reads_a_real_crop(tmp_path):
    import torch
    from ultralytics import YOLO

    registry = tmp_path / "trusted.sha256"
    out = tmp_path / "same.pt"
    average_checkpoints([SHIPPED_OCR, SHIPPED_OCR], out, registry)
    a, avg = _floats(SHIPPED_OCR), _floats(out)
    assert all(torch.equal(a[k], avg[k]) for k in a)

    if not UC3M_CROPS.is_dir():
        pytest.skip(f"{UC3M_CROPS} not present: the reading check needs a real crop")
    crop = str(UC3M_CROPS / read_manifest(UC3M_CROPS / "labels.jsonl").images[0].image)
    reads = [
        YOLO(str(p), task="detect").predict(crop, imgsz=256, verbose=False)[0] for p in (SHIPPED_OCR, out)
    ]
    assert len(reads[0].boxes) >= 4
    assert reads[0].boxes.cls.tolist() == reads[1].boxes.cls.tolist()


def test_parts_of_different_models_or_bad_shares_are_refused(tmp_path):
    registry = tmp_path / "trusted.sha256"
    out = tmp_path / "soup.pt"
    with pytest.raises(TrainError, match=f"{SHIPPED_DET}.*classes"):
        average_checkpoints([SHIPPED_OCR, SHIPPED_DET], out, registry)
    with pytest.raises(TrainError, match="at least two"):
        average_checkpoints([SHIPPED_OCR], out, registry)
    with pytest.raises(TrainError, match="3 values for 2"):
        average_checkpoints([SHIPPED_OCR, SHIPPED_OCR], out, registry, shares=[1, 1, 1])
    with pytest.raises(TrainError, match="non-negative"):
        average_checkpoints([SHIPPED_OCR, SHIPPED_OCR], out, registry, shares=[1, -1])
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_bytes(b"not a checkpoint")
    record_checkpoint(not_a_checkpoint, registry)
    with pytest.raises(TrainError, match=f"{not_a_checkpoint}"):
        average_checkpoints([SHIPPED_OCR, not_a_checkpoint], out, registry)
    assert not out.exists()


def test_average_on_the_command_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "LPR_RUNS": str(tmp_path / "runs")}
    cmd = [sys.executable, "-m", "train", "action=average", f"hydra.run.dir={tmp_path / 'hydra'}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2 and "average.weights" in proc.stderr and "Traceback" not in proc.stderr
    out = tmp_path / "soup.pt"
    weights = f"average.weights=[{SHIPPED_OCR},{SHIPPED_OCR}]"
    proc = subprocess.run(
        [*cmd, weights, f"average.out={out}", "average.shares=[0.6,0.4]"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{SHIPPED_OCR.name} x 0.6" in proc.stdout and f"-> {out}" in proc.stdout
    assert [p["share"] for p in provenance(_load(out))["averaged_from"]] == [0.6, 0.4]
