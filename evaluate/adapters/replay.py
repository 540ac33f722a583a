"""Replay a predictions.jsonl written by an earlier evaluation, as if its predictor ran again.

Re-scores a run under other rules (operating threshold, equivalences) without its models, and is
how two runs are diffed: the same scoring code sees the same records."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluate.predictions import ImageRecord, read_predictions
from runtime.records import Box, Plate

BOX_TOLERANCE_PX = 0.02
"""Recorded boxes are rounded to 2 decimals: a requested box matches a recorded one within this."""


class ReplayAdapter:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.header, self.records, self.issues = read_predictions(self.path)
        self._pending: dict[str, list[float]] = {}

    def _record(self, key: str) -> ImageRecord:
        rec = self.records.get(key)
        if rec is None:
            raise LookupError(f"{self.path}: no recorded predictions for image {key}")
        return rec

    def _where(self, rec: ImageRecord) -> str:
        return f"{self.path}:{rec.line}" if rec.line is not None else str(self.path)

    def detect_and_read(self, image: np.ndarray, key: str) -> list[Plate]:
        rec = self._record(key)
        if rec.plates is None:
            why = f" ({rec.error})" if rec.error else ""
            raise LookupError(
                f"{self._where(rec)}: image {key} was not run end to end in the recorded run{why}"
            )
        self._pending = copy.deepcopy(rec.timings_ms)
        if rec.total_ms is not None:
            self._pending["total"] = [rec.total_ms]
        return copy.deepcopy(rec.plates)

    def read_plates(self, image: np.ndarray, boxes: Sequence[Box], key: str) -> list[Plate]:
        rec = self._record(key)
        recorded = [p for p in (rec.crop_reads or []) if p is not None]
        out = []
        for box in boxes:
            hit = next((p for p in recorded if np.allclose(p.box, box, atol=BOX_TOLERANCE_PX)), None)
            if hit is None:
                raise LookupError(
                    f"{self._where(rec)}: image {key}: no recorded crop reading for box {list(box)}"
                )
            out.append(copy.deepcopy(hit))
        self._pending = copy.deepcopy(rec.crop_timings_ms)
        return out

    def baseline_reads(self, key: str) -> dict[str, list[Plate | None]]:
        rec = self.records.get(key)
        return {} if rec is None else copy.deepcopy(rec.baselines)

    def baseline_lines(self, key: str) -> dict[str, list[Plate] | None]:
        """The text lines each spotting baseline found in the recorded run."""
        rec = self.records.get(key)
        return {} if rec is None else copy.deepcopy(rec.baseline_lines)

    def baseline_timings(self, key: str) -> dict[str, dict[str, list[float]]]:
        rec = self.records.get(key)
        return {} if rec is None else copy.deepcopy(rec.baseline_timings_ms)

    def timings(self) -> dict[str, list[float]]:
        out, self._pending = self._pending, {}
        return out

    def describe(self) -> dict[str, Any]:
        original = dict(self.header.get("adapter") or {})
        original["replayed_from"] = str(self.path)
        if self.header.get("peak_rss_mb") is not None:
            original["peak_rss_mb"] = self.header["peak_rss_mb"]
        return original
