"""Other OCR engines read the same ground-truth crops, side by side with ours (``baselines=[...]``).

A baseline is a :class:`evaluate.adapters.CropReader`; one that also has ``spot(image, key)`` (every
text line it finds in the whole image, as :class:`runtime.records.Plate`) is scored end to end too
(``evaluate.spotting``). None is a dependency of the project: each is installed only by whoever asks
for it, and one that is not installed is skipped with the reason in the report (or, with
``baseline_missing=error``, stops the run with that reason). Adding one = a class with
``read_plates``/``timings``/``describe`` (and ``spot``) and an entry in :data:`BASELINES`.
Tesseract is here; PaddleOCR and EasyOCR are in ``evaluate.peers``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from evaluate.errors import BaselineUnavailable, EvaluateError, PredictorError
from evaluate.peers import EasyOcrReader, PaddleOcrReader
from runtime.geometry import plate_crop_box
from runtime.records import ALPHABET, Box, Plate


class TesseractReader:
    """Tesseract (Debian ``tesseract-ocr``) as a single-line plate reader: page segmentation mode 7
    (one text line; two-line plates are read as Tesseract finds them), whitelist 0-9A-Z."""

    def __init__(
        self,
        pad: float = 0.0,
        psm: int = 7,
        min_height: int = 64,
        timeout_s: float = 30.0,
        executable: str | None = None,
    ):
        self.exe = shutil.which(executable or "tesseract")
        if self.exe is None:
            raise BaselineUnavailable(
                "tesseract is not on PATH (Debian/Ubuntu: apt-get install tesseract-ocr)"
            )
        self.pad, self.psm, self.min_height, self.timeout_s = pad, psm, min_height, timeout_s
        out = subprocess.run([self.exe, "--version"], capture_output=True, text=True, timeout=timeout_s)
        first = (out.stdout or out.stderr).splitlines()
        self.version = first[0].strip() if first else "unknown"
        self._ms: list[float] = []

    def _prepare(self, crop: np.ndarray) -> bytes:
        gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        if gray.shape[0] < self.min_height:  # Tesseract reads characters of ~30 px and more best
            scale = self.min_height / gray.shape[0]
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        ok, png = cv2.imencode(".png", gray)
        if not ok:
            raise EvaluateError("could not encode the crop")
        return png.tobytes()

    def read_plates(self, image: np.ndarray, boxes: Sequence[Box], key: str) -> list[Plate]:
        h, w = image.shape[:2]
        out = []
        for box in boxes:
            region = plate_crop_box(box, w, h, self.pad, self.pad)
            if region is None:
                out.append(Plate(box=box, reason="empty crop"))
                continue
            x1, y1, x2, y2 = region
            t0 = time.perf_counter()
            res = subprocess.run(
                [
                    self.exe,
                    "stdin",
                    "stdout",
                    "--psm",
                    str(self.psm),
                    "-c",
                    f"tessedit_char_whitelist={ALPHABET}",
                ],
                input=self._prepare(image[y1:y2, x1:x2]),
                capture_output=True,
                timeout=self.timeout_s,
            )
            self._ms.append((time.perf_counter() - t0) * 1000.0)
            if res.returncode != 0:
                raise PredictorError(
                    f"tesseract failed on {key}: {res.stderr.decode(errors='replace').strip()}"
                )
            text = "".join(c for c in res.stdout.decode(errors="replace").upper() if c in ALPHABET)
            out.append(Plate(box=box, text=text or None, reason=None if text else "no characters found"))
        return out

    def timings(self) -> dict[str, list[float]]:
        out, self._ms = {"ocr": self._ms}, []
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": "tesseract",
            "backend": "tesseract",
            "version": self.version,
            "precision": None,
            "threads": None,
            "psm": self.psm,
            "pad": self.pad,
        }


BASELINES: dict[str, Callable[..., Any]] = {
    "tesseract": TesseractReader,
    "paddleocr": PaddleOcrReader,
    "easyocr": EasyOcrReader,
}


def load_baselines(
    names: Sequence[str], options: dict[str, dict] | None = None, missing: str = "skip"
) -> tuple[dict[str, Any], dict[str, str]]:
    """(readers that are ready, {name: why it was skipped}). Unknown names are a usage error, and
    so is a missing engine when ``missing="error"`` (:class:`BaselineUnavailable`, saying what to
    install)."""
    if missing not in ("skip", "error"):
        raise EvaluateError(f"baseline_missing must be 'skip' or 'error', got {missing!r}")
    options = options or {}
    ready, skipped = {}, {}
    for name in names:
        if name not in BASELINES:
            raise EvaluateError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
        try:
            ready[name] = BASELINES[name](**dict(options.get(name) or {}))
        except BaselineUnavailable as e:
            if missing == "error":
                raise BaselineUnavailable(f"baseline {name}: {e}") from None
            skipped[name] = str(e)
    return ready, skipped
