"""The soak benchmark's 60-second smoke: ``python -m runtime.bench --soak 1`` on a looping video
of real photographs (training split) with the int8 models, sampled every 10 s. Nothing may grow
beyond a bound: resident memory under 10 % from the first sample to the last (the 30-minute run
in docs/reliability.md holds it to 5 %), open files and threads not at all. It prints what it
measured; speed is not asserted (the machine is shared)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from helpers.stream_fixtures import write_video

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.shared_data
def test_soak_smoke_nothing_grows(tmp_path, shared_datasets):
    photos = [
        cv2.imread(str(p))
        for p in sorted((shared_datasets / "uc3m_lp" / "images" / "train").glob("*.jpg"))[:4]
    ]
    video = write_video(tmp_path / "loop.avi", [photos[i // 10] for i in range(40)], fps=25)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime.bench",
            "--soak",
            "1",
            "--soak-interval",
            "10",
            str(video),
            "--precision",
            "int8",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=240,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    print("\n".join(json.dumps(x) for x in lines))
    samples, (verdict,) = lines[:-1], lines[-1:]
    assert verdict["verdict"] and len(samples) >= 5, proc.stderr
    assert samples[-1]["passes"] >= 2 and samples[-1]["frames"] > samples[0]["frames"] > 0
    assert verdict["rss_growth"] < 0.10
    assert verdict["open_files_growth"] <= 0 and verdict["threads_growth"] <= 0
    assert proc.returncode == (0 if verdict["ok"] else 1)
