"""The interface every backend implements, and the pre/post-processing they share.

A backend runs the two models and returns :class:`~runtime.postprocess.Detections`: plates in image
pixels, characters in crop pixels. Everything after that (cropping, reading order, rules) is the
pipeline's and identical for all backends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from runtime.config import PipelineConfig
from runtime.errors import BackendError
from runtime.geometry import Letterbox, letterbox
from runtime.metadata import ModelMetadata
from runtime.model_zoo import ZooModel
from runtime.postprocess import Detections, decode_yolov8


def preprocess(image: np.ndarray, meta: ModelMetadata) -> tuple[np.ndarray, Letterbox]:
    """BGR image -> the model's input tensor [1, 3, H, W] float32, as the metadata prescribes."""
    import cv2

    boxed, lb = letterbox(image, meta.input_height, meta.input_width, meta.letterbox_fill)
    if meta.channel_order.upper() == "RGB":
        boxed = cv2.cvtColor(boxed, cv2.COLOR_BGR2RGB)
    x = boxed.astype(np.float32)
    x *= np.float32(meta.scale)
    if any(meta.mean) or any(s != 1 for s in meta.std):
        x -= np.asarray(meta.mean, np.float32)
        x /= np.asarray(meta.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), lb


def decode_plates(
    raw: np.ndarray, meta: ModelMetadata, lb: Letterbox, width: int, height: int, config: PipelineConfig
) -> Detections:
    """Plate boxes in image pixels (clipped to the image) from the detector's raw output."""
    dets = decode_yolov8(
        raw, meta.num_classes, config.det_conf, config.det_iou, config.max_plates, agnostic=True
    )
    return dets.to_image(lb, width, height)


def decode_chars(
    raw: np.ndarray, meta: ModelMetadata, lb: Letterbox, width: int, height: int, config: PipelineConfig
) -> Detections:
    """Character boxes in crop pixels from the OCR model's raw output (class-agnostic NMS)."""
    dets = decode_yolov8(
        raw, meta.num_classes, config.ocr_decode_conf, config.ocr_iou, config.max_chars, agnostic=True
    )
    return dets.to_image(lb, width, height)


def check_output_layout(model: ZooModel, shape: list) -> None:
    """The model's output must be [1, 4 + nc, N] for the ``yolov8_xywh_scores`` layout."""
    nc = model.meta.num_classes
    if len(shape) != 3 or (isinstance(shape[1], int) and shape[1] != 4 + nc):
        raise BackendError(
            f"{model.model_path}: output shape {shape} is not [1, 4 + {nc}, N] "
            f"({model.meta.output_layout} with {nc} classes)"
        )


class Backend(ABC):
    """Runs the plate detector and the OCR model of one zoo."""

    name: str = "?"
    max_concurrent_detect: int = 1
    """How many ``detect`` calls may run at once (threads); the pipeline respects it."""

    def __init__(self, det: ZooModel, ocr: ZooModel, config: PipelineConfig) -> None:
        self.det = det
        self.ocr = ocr
        self.config = config

    @abstractmethod
    def detect(self, image: np.ndarray) -> Detections:
        """Plates in one BGR image: boxes in image pixels, best first."""

    @abstractmethod
    def read(self, crops: list[np.ndarray]) -> list[Detections]:
        """Characters in each plate crop (one batch per frame): boxes in that crop's pixels."""

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources keep this no-op
        """Release the models (the backend is unusable afterwards)."""

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "det_model": str(self.det.model_path),
            "ocr_model": str(self.ocr.model_path),
        }
