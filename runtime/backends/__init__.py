"""Inference backends behind one interface: ``onnx`` (ONNX Runtime) and ``degirum`` (DeGirum PySDK)."""

from __future__ import annotations

from typing import Any

from runtime.backends.base import Backend, BackendError, preprocess
from runtime.config import PipelineConfig
from runtime.model_zoo import ZooModel

BACKENDS = ("onnx", "degirum")


def create_backend(
    name: str, det: ZooModel, ocr: ZooModel, config: PipelineConfig, **options: Any
) -> Backend:
    """A backend by name; ``options`` go to its constructor (degirum: host, zoo_url, token)."""
    if name == "onnx":
        from runtime.backends.onnx import OnnxBackend

        if options:
            raise BackendError(f"the onnx backend takes no options, got {sorted(options)}")
        return OnnxBackend(det, ocr, config)
    if name == "degirum":
        from runtime.backends.degirum import DegirumBackend

        return DegirumBackend(det, ocr, config, **options)
    raise BackendError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "Backend", "BackendError", "create_backend", "preprocess"]
