"""A .pt given to export weights= or train init= is unpickled only when a run on this machine
wrote it or the user says trust_checkpoint=true. The proof: a real pickle whose loading creates
a folder; the stages refuse it (naming the file and its sha256) and the folder never appears."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

from stage.files import sha256_file
from train.checkpoints import UntrustedCheckpointError, record_checkpoint, require_trusted

ROOT = Path(__file__).resolve().parents[2]


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def evil_checkpoint(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"model": _Payload(marker)}))
    return path


def run_stage(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )


def test_export_and_train_refuse_a_foreign_checkpoint_before_unpickling_it(tmp_path):
    marker = tmp_path / "code_ran"
    pt = evil_checkpoint(tmp_path / "weights.pt", marker)
    digest = sha256_file(pt)
    proc = run_stage("export", f"weights={pt}", f"out={tmp_path / 'zoo'}")
    assert proc.returncode == 2, proc.stderr
    assert f"weights={pt}" in proc.stderr and digest in proc.stderr and "trust_checkpoint=true" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_stage(
        "train", "model=plate_ocr", f"init={pt}", "data=[uc3m_lp_crops]", f"out={tmp_path / 't'}"
    )
    assert proc.returncode == 2, proc.stderr
    assert f"init={pt}" in proc.stderr and digest in proc.stderr
    assert not marker.exists()  # never unpickled
    # Vouched for, it is loaded (and its code runs: that is what trusting a pickle means).
    proc = run_stage("export", f"weights={pt}", f"out={tmp_path / 'zoo'}", "trust_checkpoint=true")
    assert marker.exists()
    assert proc.returncode != 0 and "not loadable Ultralytics weights" in proc.stderr


def test_the_registry_vouches_for_recorded_checkpoints(tmp_path):
    registry = tmp_path / "trusted.sha256"
    pt = tmp_path / "ours.pt"
    pt.write_bytes(b"pretend checkpoint")
    try:
        require_trusted(pt, registry, False, "weights")
    except UntrustedCheckpointError as e:
        assert sha256_file(pt) in str(e)
    else:
        raise AssertionError("an unrecorded checkpoint was trusted")
    record_checkpoint(pt, registry)
    record_checkpoint(pt, registry)
    assert require_trusted(pt, registry, False, "weights") == sha256_file(pt)
    assert len(registry.read_text().splitlines()) == 1
    pt.write_bytes(b"pretend checkpoint, changed")
    try:
        require_trusted(pt, registry, False, "weights")
    except UntrustedCheckpointError:
        pass
    else:
        raise AssertionError("a changed checkpoint kept its trust")
