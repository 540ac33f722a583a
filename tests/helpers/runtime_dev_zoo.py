"""Scenes for the runtime's tests and benchmark, and the development zoo built by hand.

The development zoo (``dev_zoo`` fixture, tests/helpers/model_fixtures.py) holds UNTRAINED yolov8n models at
their real input sizes, exported by the export stage. Untrained detectors find nothing at normal
thresholds, so tests using that zoo lower the thresholds or feed hand-made detections; speed is the
same as a trained model's.

    python tests/helpers/runtime_dev_zoo.py OUT_DIR   # by hand (e.g. for python -m runtime.bench)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
for path in (PROJECT_ROOT, PROJECT_ROOT / "tests"):  # run as a script: the packages and tests/helpers
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from runtime.records import ALPHABET  # noqa: E402


def make_scene(seed: int, plates: int, height: int = 480, width: int = 800, two_line: bool = False):
    """A street-like picture with ``plates`` white plates carrying dark characters (cv2 drawing);
    returns (BGR image, plate boxes, plate texts)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    noise = (rng.random((height // 8, width // 8, 3)) * 255).astype(np.uint8)
    image = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    boxes, texts = [], []
    for k in range(plates):
        text = "".join(rng.choice(list(ALPHABET), 7))
        pw, ph = (90, 70) if two_line else (170, 40)
        x = int(20 + k * (width - 40) / max(plates, 1))
        y = int(rng.integers(20, height - ph - 20))
        cv2.rectangle(image, (x, y), (x + pw, y + ph), (235, 235, 235), -1)
        cv2.rectangle(image, (x, y), (x + pw, y + ph), (20, 20, 20), 2)
        if two_line:
            cv2.putText(image, text[:3], (x + 18, y + 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (10, 10, 10), 2)
            cv2.putText(image, text[3:], (x + 8, y + 62), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (10, 10, 10), 2)
        else:
            cv2.putText(image, text, (x + 6, y + 31), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (10, 10, 10), 2)
        boxes.append((x, y, x + pw, y + ph))
        texts.append(text)
    return image, boxes, texts


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    from helpers.model_fixtures import make_dev_zoo

    out = Path(sys.argv[1])
    if out.exists():
        shutil.rmtree(out)
    print(make_dev_zoo(out))
