"""A checkpoint that leaves the machine carries no path of it (train/publish.py).

The shipped checkpoints are checked as they are; the publishing itself runs on a copy of a shipped
checkpoint given the paths a training run writes into it, and the published copy must load in
Ultralytics with the same weights, read a real crop the same way, and carry its training-set hash
to export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data.manifest import read_manifest
from stage.files import sha256_file
from train.checkpoints import record_checkpoint
from train.publish import cut_paths, machine_paths, provenance, publish_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_OCR = ROOT / "weights" / "yolov8n_relu6_plate_ocr.pt"
UC3M_CROPS = ROOT.parent / "shared" / "datasets" / "uc3m_lp_crops"


def _load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _shipped_sums() -> dict[str, str]:
    """weights/SHA256SUMS as {file name: sha256}."""
    lines = (ROOT / "weights" / "SHA256SUMS").read_text().splitlines()
    return {line.split()[1]: line.split()[0] for line in lines if line.strip()}


@pytest.mark.parametrize("name", ["yolov8n_relu6_plate_det.pt", "yolov8n_relu6_plate_ocr.pt"])
def test_shipped_checkpoints_hold_no_machine_path(name):
    ckpt = _load(ROOT / "weights" / name)
    assert machine_paths(ckpt) == []
    assert provenance(ckpt).get("training_set_hash"), "the shipped weights say what they were trained on"
    assert _shipped_sums()[name] == sha256_file(ROOT / "weights" / name)


def test_cut_paths_keeps_everything_but_absolute_paths():
    value = {
        "data": "/home/me/runs/cache/mix-1/data.yaml",
        "win": "C:\\runs\\det\\weights\\last.pt",
        "rel": "weights/yolov8n_relu6_plate_det.pt",
        "url": "https://docs.ultralytics.com",
        "list": ["/tmp/a.yaml", 3, None],
        "imgsz": 640,
    }
    out, n = cut_paths(value)
    assert n == 3
    assert out == {
        "data": "data.yaml",
        "win": "last.pt",
        "rel": "weights/yolov8n_relu6_plate_det.pt",
        "url": "https://docs.ultralytics.com",
        "list": ["a.yaml", 3, None],
        "imgsz": 640,
    }


def _as_a_run_writes_it(src: Path, run: Path) -> Path:
    """A copy of ``src`` holding the absolute paths an Ultralytics run records, in a run folder."""
    import torch

    ckpt = _load(src)
    paths = {
        "model": str(run / "yolov8n-relu6-plate_ocr.yaml"),
        "data": str(run / "cache" / "data.yaml"),
        "project": str(run.parent),
        "save_dir": str(run),
    }
    ckpt["train_args"].update(paths)
    ckpt["git"] = {"root": str(ROOT), "branch": "main"}
    ckpt["model"].args.update(paths)
    ckpt["model"].yaml["yaml_file"] = paths["model"]
    ckpt.pop("lpr", None)
    (run / "weights").mkdir(parents=True)
    (run / "training_set.json").write_text(json.dumps({"train_hash": "abc123"}))
    out = run / "weights" / "last.pt"
    torch.save(ckpt, out)
    return out


def test_publish_cuts_the_paths_and_keeps_the_model(tmp_path):
    import torch
    from ultralytics import YOLO

    registry = tmp_path / "trusted.sha256"
    last = _as_a_run_writes_it(SHIPPED_OCR, tmp_path / "runs" / "ocr_run")
    assert len(machine_paths(_load(last))) >= 8
    record_checkpoint(last, registry)  # as train records its own saves
    sums = tmp_path / "shipped" / "SHA256SUMS"
    sums.parent.mkdir()
    sums.write_text("0" * 64 + "  other.pt\n")
    out = sums.parent / "plate_ocr.pt"
    result = publish_checkpoint(last, out, registry, sums=sums)

    published = _load(out)
    assert machine_paths(published) == [] and result["paths_cut"] >= 8
    assert published["git"]["root"] is None
    assert published["train_args"]["data"] == "data.yaml" and published["train_args"]["imgsz"] == 256
    assert provenance(published) == {"training_set_hash": "abc123", "run": "ocr_run"}
    before, after = _load(last)["model"].state_dict(), published["model"].state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # the shipped list gets the new file's line, the other lines stay
    assert sums.read_text().splitlines() == ["0" * 64 + "  other.pt", f"{result['sha256']}  plate_ocr.pt"]
    assert result["shipped"] and result["sha256"] == sha256_file(out)
    assert result["sha256"] in registry.read_text()  # ours: the next stage unpickles it untold

    if not UC3M_CROPS.is_dir():
        pytest.skip(f"{UC3M_CROPS} not present: the reading check needs a real crop")
    crop = str(UC3M_CROPS / read_manifest(UC3M_CROPS / "labels.jsonl").images[0].image)
    reads = [YOLO(str(p), task="detect").predict(crop, imgsz=256, verbose=False)[0] for p in (last, out)]
    assert len(reads[0].boxes) > 0
    np.testing.assert_array_equal(reads[0].boxes.cls.numpy(), reads[1].boxes.cls.numpy())
    np.testing.assert_allclose(reads[0].boxes.xyxy.numpy(), reads[1].boxes.xyxy.numpy())


def test_publish_on_the_command_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "LPR_RUNS": str(tmp_path / "runs")}
    cmd = [sys.executable, "-m", "train", "action=publish", f"hydra.run.dir={tmp_path / 'hydra'}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2 and "publish.weights" in proc.stderr and "Traceback" not in proc.stderr
    out = tmp_path / "portable.pt"
    proc = subprocess.run(
        [*cmd, f"publish.weights={SHIPPED_OCR}", f"publish.out={out}", "publish.training_set_hash=feed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"-> {out}" in proc.stdout and "training set feed" in proc.stdout
    assert provenance(_load(out))["training_set_hash"] == "feed" and machine_paths(_load(out)) == []


def test_every_zoo_entry_was_exported_from_a_shipped_checkpoint():
    """The zoo's models and weights/ travel together: each entry's export report names the sha256
    of a checkpoint in weights/SHA256SUMS and the training set recorded inside that checkpoint."""
    by_digest = {digest: name for name, digest in _shipped_sums().items()}
    reports = sorted((ROOT / "runtime" / "zoo").glob("*/export_report.json"))
    assert len(reports) >= 4
    for path in reports:
        report = json.loads(path.read_text())
        name = by_digest.get(report["weights_sha256"])
        assert name, f"{path.parent.name}: exported from {report['weights_sha256']}, not a shipped checkpoint"
        assert report["weights"] == name
        assert report["training_set_hash"] == provenance(_load(ROOT / "weights" / name))["training_set_hash"]


def test_a_path_where_no_known_key_holds_one_stops_the_publishing(tmp_path):
    import torch

    from train.errors import TrainError

    registry = tmp_path / "trusted.sha256"
    run = tmp_path / "runs" / "ocr_run"
    last = _as_a_run_writes_it(SHIPPED_OCR, run)
    ckpt = _load(last)
    ckpt["model"].save_dir_of_a_later_version = str(run / "weights")  # an attribute nobody walks
    torch.save(ckpt, last)
    record_checkpoint(last, registry)
    out = tmp_path / "shared.pt"
    with pytest.raises(TrainError, match=f"still names.*{run}"):
        publish_checkpoint(last, out, registry, sums=tmp_path / "SHA256SUMS")
    assert not out.exists() and not list(tmp_path.glob(".shared.pt.*"))
