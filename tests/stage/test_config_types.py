"""Wrong-typed config values stop a stage before any work, naming the key; the shipped configs
(every stage, each model) pass the same check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stage.config import CONF_DIR, compose
from stage.config_types import type_problems

ROOT = Path(__file__).resolve().parents[2]


def run_stage(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )


def default_choices(name: str, **chosen: str) -> dict[str, str]:
    spec = yaml.safe_load((CONF_DIR / f"{name}.yaml").read_text())
    choices = {}
    for entry in spec.get("defaults", []):
        if isinstance(entry, dict):
            choices.update({k: v for k, v in entry.items() if isinstance(v, str)})
    return {**choices, **chosen}


@pytest.mark.parametrize(
    "name, chosen",
    [("data", {}), ("evaluate", {}), ("export", {"model": "plate_det"}), ("compile", {})]
    + [("train", {"model": m}) for m in ("plate_det", "plate_ocr")],
)
def test_the_shipped_configs_pass(name, chosen):
    overrides = [f"{k}={v}" for k, v in chosen.items()]
    cfg = compose(name, overrides)
    assert type_problems(cfg, name, default_choices(name, **chosen)) == []


def test_wrong_types_name_the_key_before_any_work(tmp_path):
    manifest = tmp_path / "labels.jsonl"
    manifest.write_text("")
    cases = [
        (
            "data",
            ["action=validate", f"src={manifest}", "validate.box_tolerance_px=abc"],
            "validate.box_tolerance_px",
        ),
        ("evaluate", ["match.iou=abc", f"report_dir={tmp_path / 'r'}"], "match.iou"),
        ("train", ["model=plate_ocr", "epochs=abc", f"cache_dir={tmp_path / 'cache'}"], "epochs"),
        ("data", ["action=split", f"src={manifest}", "split.keep_existing=maybe"], "split.keep_existing"),
    ]
    for module, args, key in cases:
        proc = run_stage(module, *args)
        assert proc.returncode == 2, (module, proc.stderr)
        assert proc.stderr.startswith(f"error: {key}=") and "Traceback" not in proc.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "r").exists()  # nothing was done
