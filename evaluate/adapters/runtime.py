"""The shipped runtime predictor as an evaluation Pipeline: what is measured is what deploys.

Detection, cropping, OCR, reading order and region rules all run through ``runtime.Predictor``;
this adapter only times the two halves (the detector; cropping + OCR + reading) per image.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from runtime.records import Box, Plate
from stage.files import sha256_file


class RuntimeAdapter:
    def __init__(
        self,
        det_model: str | None = None,
        ocr_model: str | None = None,
        zoo: str | None = None,
        backend: str = "onnx",
        precision: str | None = None,
        threads: int | None = None,
        det_conf: float | None = None,
        verify_models: bool = True,
        **options: Any,
    ):
        from runtime.config import PipelineConfig
        from runtime.pipeline import Predictor

        settings: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        if threads is not None:
            settings["threads"] = int(threads)
        if det_conf is not None:
            settings["det_conf"] = float(det_conf)
        self.config = PipelineConfig.from_dict(settings)
        self.predictor = Predictor(
            zoo=zoo,
            backend=backend,
            config=self.config,
            det_model=det_model,
            ocr_model=ocr_model,
            precision=precision,
            verify_models=verify_models,
        )
        self.backend_name = backend
        self._timings: dict[str, list[float]] = {"det": [], "ocr": []}

    def detect_and_read(self, image: np.ndarray, key: str) -> list[Plate]:
        t0 = time.perf_counter()
        dets = self.predictor.detect(image)
        t1 = time.perf_counter()
        plates = self.predictor.read_plates(image, dets)
        t2 = time.perf_counter()
        self._timings["det"].append(1000 * (t1 - t0))
        self._timings["ocr"].append(1000 * (t2 - t1))
        return plates

    def read_plates(self, image: np.ndarray, boxes: Sequence[Box], key: str) -> list[Plate]:
        """OCR of given plate boxes (ground truth), cut exactly as the runtime cuts detections."""
        from runtime.postprocess import Detections

        n = len(boxes)
        dets = Detections(
            boxes=np.asarray(boxes, dtype=np.float32).reshape(n, 4),
            scores=np.ones(n, dtype=np.float32),
            classes=np.zeros(n, dtype=int),
        )
        t0 = time.perf_counter()
        plates = self.predictor.read_plates(image, dets)
        self._timings["ocr"].append(1000 * (time.perf_counter() - t0))
        for plate in plates:
            plate.det_score = None  # the box is a label, not a detection
        return plates

    def timings(self) -> dict[str, list[float]]:
        out, self._timings = self._timings, {"det": [], "ocr": []}
        return out

    def describe(self) -> dict[str, Any]:
        p = self.predictor
        det_meta, ocr_meta = p.det_meta, p.ocr_meta
        backend = p.backend.describe()
        models = {}
        for role, key, meta in (("det", "det_model", det_meta), ("ocr", "ocr_model", ocr_meta)):
            path = Path(backend[key])
            models[role] = {
                "name": path.stem,
                "path": str(path),
                "sha256": sha256_file(path) if path.is_file() else None,
                "input": [meta.input_height, meta.input_width],  # the report's detector-input widths
            }
        return {
            "name": "runtime",
            "backend": self.backend_name,
            "precision": det_meta.precision
            if det_meta.precision == ocr_meta.precision
            else f"det {det_meta.precision}, ocr {ocr_meta.precision}",
            "threads": self.config.threads,
            "region": self.config.region,
            "models": models,
            # Every setting, and the ones that differ from the defaults: a default can change
            # between versions (the zoomed-out look went on in 2026-12), a report must not.
            "pipeline": self.config.to_dict(),
            "pipeline_changed": _changed(self.config),
        }


def _changed(config: Any) -> dict[str, Any]:
    """The settings of ``config`` (a ``PipelineConfig``) that differ from its defaults."""
    defaults = type(config)().to_dict()
    return {k: v for k, v in config.to_dict().items() if v != defaults.get(k)}
