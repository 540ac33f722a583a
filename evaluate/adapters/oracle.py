"""The ground truth as a predictor: every metric should come out perfect.

An upper bound that exercises the whole evaluation (images, matching, report, pictures) on real
data without a model; a report that is not perfect under it points at the evaluation itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from data.manifest import Manifest
from evaluate.text import MASK, TextRules
from runtime.records import Box, Plate


class OracleAdapter:
    def __init__(self, manifest: Manifest, rules: TextRules | None = None):
        self.rules = rules or TextRules()
        self._plates = {item.image: item.plates for item in manifest.images}

    def _as_prediction(self, plate: Plate) -> Plate:
        label = self.rules.label(plate)
        # a masked character accepts any reading: fill it with the alphabet's first character
        text = None if label is None else label.text.replace(MASK, self.rules.alphabet[0])
        return Plate(box=plate.box, text=text, score=1.0, det_score=1.0, lines=plate.lines)

    def detect_and_read(self, image: np.ndarray, key: str) -> list[Plate]:
        return [self._as_prediction(p) for p in self._plates.get(key, [])]

    def read_plates(self, image: np.ndarray, boxes: Sequence[Box], key: str) -> list[Plate]:
        by_box = {tuple(p.box): p for p in self._plates.get(key, [])}
        return [
            self._as_prediction(by_box[tuple(b)])
            if tuple(b) in by_box
            else Plate(box=b, reason="not a labelled box")
            for b in boxes
        ]

    def timings(self) -> dict[str, list[float]]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {
            "name": "oracle",
            "backend": "ground truth",
            "precision": None,
            "threads": None,
            "models": {},
            "timed": False,
        }
