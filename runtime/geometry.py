"""Image geometry shared by training data and inference: letterbox, plate crops, IoU.

The OCR model only works as well as its crops resemble the ones it was trained on, so the data
exporters and the runtime cut plates with these same functions and the same parameters (stored in
the OCR model's metadata).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.errors import InputError
from runtime.records import Box


@dataclass(frozen=True)
class Letterbox:
    """How an image was mapped into a model input: ``model = image * scale + (pad_x, pad_y)``."""

    scale: float
    pad_x: float
    pad_y: float

    def to_image(self, boxes: np.ndarray) -> np.ndarray:
        """Map [..., 4] xyxy boxes from model input pixels back to image pixels."""
        out = np.asarray(boxes, dtype=np.float32).copy()
        out[..., [0, 2]] = (out[..., [0, 2]] - self.pad_x) / self.scale
        out[..., [1, 3]] = (out[..., [1, 3]] - self.pad_y) / self.scale
        return out

    def box_to_model(self, box: Box, origin: tuple[float, float] = (0.0, 0.0)) -> Box:
        """Map one xyxy box from image pixels to model input pixels; ``origin``: where the letterboxed
        image's top-left corner lies in the box's coordinates (a crop's corner in its frame). Scalar
        arithmetic: data exporters map a handful of character boxes per crop."""
        x0, y0 = origin
        k = self.scale
        return (
            (box[0] - x0) * k + self.pad_x,
            (box[1] - y0) * k + self.pad_y,
            (box[2] - x0) * k + self.pad_x,
            (box[3] - y0) * k + self.pad_y,
        )


def letterbox(image: np.ndarray, height: int, width: int, fill: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad to (height, width), centred, as Ultralytics does.

    Padding is split evenly with Ultralytics' rounding (``round(pad - 0.1)`` / ``round(pad + 0.1)``)
    so a model sees exactly the borders it was trained with.
    """
    import cv2  # local: keeps `import runtime.records` free of OpenCV

    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise InputError(f"cannot letterbox an empty image of shape {image.shape}")
    scale = min(height / h, width / w)
    # At least one pixel each way: a 1x8000 strip scales to 640x0 otherwise, which OpenCV refuses.
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (width - new_w) / 2, (height - new_h) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    out = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(fill, fill, fill))
    return out, Letterbox(scale=scale, pad_x=float(left), pad_y=float(top))


def plate_crop_box(
    box: Box, image_w: int, image_h: int, pad_x: float, pad_y: float
) -> tuple[int, int, int, int] | None:
    """The pixel region cut around a plate for OCR: the box grown by ``pad_x`` of its width and
    ``pad_y`` of its height on each side, clipped to the image. None when nothing is left (a
    zero-size box or one entirely outside the image)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx1 = max(0, int(np.floor(x1 - pad_x * w)))
    cy1 = max(0, int(np.floor(y1 - pad_y * h)))
    cx2 = min(image_w, int(np.ceil(x2 + pad_x * w)))
    cy2 = min(image_h, int(np.ceil(y2 + pad_y * h)))
    if cx2 - cx1 < 2 or cy2 - cy1 < 2:
        return None
    return cx1, cy1, cx2, cy2


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` [N, 4] with every box in ``b`` [M, 4] (xyxy) -> [N, M]."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
