"""Model inputs and outputs in NumPy: the letterboxed input tensor, and boxes from the
``yolov8_xywh_scores`` output ([1, 4 + nc, N]: cx, cy, w, h in input pixels, then class scores).

The export stage uses these to compare PyTorch, ONNX Runtime, int8 and DeGirum on equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.geometry import Letterbox, letterbox
from runtime.metadata import ModelMetadata


def to_input(image_bgr: np.ndarray, meta: ModelMetadata) -> tuple[np.ndarray, Letterbox]:
    """BGR image -> [1, 3, H, W] float32 as the metadata says (letterbox, RGB, scale, mean/std)."""
    boxed, lb = letterbox(image_bgr, meta.input_height, meta.input_width, meta.letterbox_fill)
    x = boxed[:, :, ::-1] if meta.channel_order == "RGB" else boxed
    x = x.astype(np.float32) * np.float32(meta.scale)
    x = (x - np.asarray(meta.mean, np.float32)) / np.asarray(meta.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), lb


@dataclass
class Detections:
    boxes: np.ndarray   # [K, 4] xyxy
    scores: np.ndarray  # [K]
    classes: np.ndarray  # [K] int

    def __len__(self) -> int:
        return len(self.scores)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=int)


def decode(output: np.ndarray, conf: float, iou: float, max_det: int = 300, agnostic: bool = True,
           lb: Letterbox | None = None, image_shape: tuple[int, ...] | None = None) -> Detections:
    """[1, 4 + nc, N] -> detections above ``conf`` after NMS, in input pixels (or image pixels with
    ``lb``, clipped to ``image_shape`` (h, w, ...) when given, as Ultralytics and DeGirum clip)."""
    out = np.asarray(output, dtype=np.float32)
    if out.ndim != 3 or out.shape[0] != 1 or out.shape[1] < 5:
        raise ValueError(f"expected a [1, 4 + nc, N] output, got shape {out.shape}")
    pred = out[0].T  # [N, 4 + nc]
    cls_scores = pred[:, 4:]
    classes = cls_scores.argmax(axis=1)
    scores = cls_scores[np.arange(len(pred)), classes]
    mask = scores >= conf
    xywh, scores, classes = pred[mask, :4], scores[mask], classes[mask]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    if len(boxes):
        # Class-aware NMS by offsetting each class far apart (as Ultralytics does).
        offset = 0 if agnostic else classes[:, None].astype(np.float32) * 7680.0
        keep = nms(boxes + offset, scores, iou)[:max_det]
        boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    if lb is not None:
        boxes = lb.to_image(boxes)
    if image_shape is not None:
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, image_shape[1])
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, image_shape[0])
    return Detections(boxes=boxes.reshape(-1, 4), scores=scores, classes=classes.astype(int))
