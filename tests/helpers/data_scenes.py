"""Scenes and commands the data tests share: images drawn by our own code, ``python -m data`` runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def draw_scene(
    path: Path, width: int, height: int, plates: list[tuple[tuple[int, int, int, int], str]], seed: int = 0
) -> None:
    """A scene made by our own code: noise background, white plates with black characters."""
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 120, size=(height, width, 3), dtype=np.uint8)
    for (x1, y1, x2, y2), text in plates:
        cv2.rectangle(image, (x1, y1), (x2, y2), (235, 235, 235), -1)
        cv2.putText(image, text, (x1 + 3, y2 - 4), cv2.FONT_HERSHEY_SIMPLEX, (y2 - y1) / 30, (10, 10, 10), 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def run_data(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "data", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
