"""How the evaluation gets predictions: small adapter interfaces, one implementation per source.

* :class:`CropReader` reads the text of given plates (boxes) in an image. This isolates the OCR
  model from the detector; a baseline OCR (Tesseract, PaddleOCR, ...) is just another CropReader.
* :class:`Pipeline` is a CropReader that also runs the full pipeline on an image (detector ->
  crop -> OCR -> reading order) and times its stages.

Implementations: ``runtime`` (the shipped predictor, what deploys), ``replay`` (a predictions.jsonl
written by an earlier evaluation: re-scores or diffs a run without its models), ``oracle`` (the
ground truth itself: an upper bound that checks the plumbing on real data).

Every method gets ``key``: the image's path as the manifest names it, so adapters that look
predictions up by name (replay, oracle) need not recognise pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from evaluate.errors import EvaluateError
from runtime.records import Box, Plate


@runtime_checkable
class CropReader(Protocol):
    def read_plates(self, image: np.ndarray, boxes: Sequence[Box], key: str) -> list[Plate]:
        """One Plate per box (same order, ``box`` kept), ``text`` None when nothing was read.

        The reader cuts the plates from ``image`` itself, as its pipeline cuts detections (the
        runtime: padding and letterbox from the OCR model's metadata), so a crop read here is
        the crop the detector's box would give."""
        ...

    def timings(self) -> dict[str, list[float]]:
        """Milliseconds per call of each stage since the last call of ``timings`` (then cleared).
        Stage names: ``pre``, ``det``, ``ocr``, ``post`` (others are reported too); ``total``
        (optional) is the whole call as the predictor measured it."""
        ...

    def describe(self) -> dict[str, Any]:
        """What is being measured: ``name``, ``backend``, ``precision``, ``threads`` and
        ``models`` ({role: {name, path, sha256, ...}}); free-form extras are kept in the report.
        ``"timed": False`` says the adapter runs no model (its wall time is not a speed)."""
        ...


@runtime_checkable
class Pipeline(CropReader, Protocol):
    def detect_and_read(self, image: np.ndarray, key: str) -> list[Plate]:
        """Every plate the pipeline returns for a BGR image, with ``det_score`` and ``text``."""
        ...


def make_pipeline(kind: str, **options: Any) -> Pipeline:
    """The adapter named in the config (``adapter=runtime|replay|oracle``)."""
    if kind == "replay":
        from evaluate.adapters.replay import ReplayAdapter

        if not options.get("replay"):
            raise EvaluateError("adapter=replay needs replay=PATH/predictions.jsonl")
        return ReplayAdapter(options["replay"])
    if kind == "oracle":
        from evaluate.adapters.oracle import OracleAdapter

        return OracleAdapter(options["manifest"], options.get("rules"))
    if kind == "runtime":
        from evaluate.adapters.runtime import RuntimeAdapter

        return RuntimeAdapter(**options.get("runtime", {}))
    raise EvaluateError(f"unknown adapter {kind!r}; choose runtime, replay or oracle")
