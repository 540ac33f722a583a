"""Decoding YOLOv8 outputs and non-maximum suppression, in numpy (shared by every backend).

The models' output layout ``yolov8_xywh_scores`` is Ultralytics' ONNX Detect output: [1, 4 + nc, N]
with cx, cy, w, h in model-input pixels, then nc sigmoid class scores. Any backend that can hand
over that tensor (ONNX Runtime, DeGirum with its post-processing switched off) decodes it here, so
their outputs are identical by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.errors import InputError
from runtime.geometry import Letterbox


@dataclass
class Detections:
    """Boxes found by a detector in one image, best first."""

    boxes: np.ndarray
    """[N, 4] xyxy float32, in the pixels stated by whoever made it (model input or image)."""
    scores: np.ndarray
    """[N] float32: the best class score of each box."""
    classes: np.ndarray
    """[N] int: the best class of each box."""
    class_scores: np.ndarray | None = None
    """[N, nc] float32: every class's score for each box (alternatives), when the backend has them."""

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, num_classes: int | None = None) -> Detections:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            classes=np.zeros(0, np.int64),
            class_scores=None if num_classes is None else np.zeros((0, num_classes), np.float32),
        )

    def select(self, index: np.ndarray) -> Detections:
        return Detections(
            boxes=self.boxes[index],
            scores=self.scores[index],
            classes=self.classes[index],
            class_scores=None if self.class_scores is None else self.class_scores[index],
        )

    def with_boxes(self, boxes: np.ndarray) -> Detections:
        return Detections(np.asarray(boxes, np.float32), self.scores, self.classes, self.class_scores)

    def to_image(self, lb: Letterbox, width: int, height: int) -> Detections:
        """Boxes mapped from model-input pixels back through the letterbox ``lb`` into an image of
        ``width`` x ``height`` pixels, clipped to it (as Ultralytics and DeGirum clip)."""
        return self.with_boxes(clip_boxes(lb.to_image(self.boxes), width, height)) if len(self) else self


def nms(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None
) -> np.ndarray:
    """Greedy non-maximum suppression; indices of the kept boxes, best score first."""
    order = np.argsort(-scores, kind="stable")
    boxes = boxes.astype(np.float32, copy=False)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if max_keep is not None and len(keep) >= max_keep:
            break
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def suppress_contained(dets: Detections, share: float) -> Detections:
    """``dets`` without the boxes lying inside a more confident one: a box goes when at least
    ``share`` of its area is covered by a single box that scores higher (0 = keep every box).

    For plates, not characters. NMS keeps a small box inside a large one, and the shifted boxes
    the detector fires along a large plate, when their IoU is low; a plate inside a plate is never
    real. The cost: where the more confident box is the worse one (a half of the plate, or a box
    far larger than it), the plate's true box goes with the others. Best first, as given.
    """
    if share <= 0 or len(dets) < 2:
        return dets
    order = np.argsort(-dets.scores, kind="stable")
    boxes = dets.boxes[order].astype(np.float32, copy=False)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep: list[int] = []
    for j in range(len(boxes)):
        if keep and area[j] > 0:
            k = np.asarray(keep)
            iw = np.clip(np.minimum(x2[k], x2[j]) - np.maximum(x1[k], x1[j]), 0, None)
            ih = np.clip(np.minimum(y2[k], y2[j]) - np.maximum(y1[k], y1[j]), 0, None)
            if float((iw * ih).max()) >= share * float(area[j]):
                continue
        keep.append(j)
    return dets.select(order[np.asarray(keep, dtype=np.int64)])


def decode_yolov8(
    output: np.ndarray,
    num_classes: int,
    conf_threshold: float,
    iou_threshold: float,
    max_det: int,
    agnostic: bool = True,
    max_candidates: int = 30000,
) -> Detections:
    """Boxes from one image's ``yolov8_xywh_scores`` output ([1, 4 + nc, N] or [4 + nc, N]).

    Boxes stay in model-input pixels. ``agnostic`` NMS keeps one box per place whatever its class
    (right for characters: the other classes become alternatives through ``class_scores``);
    otherwise NMS runs per class as Ultralytics validates.
    """
    out = np.asarray(output)
    if out.ndim == 3:
        if out.shape[0] != 1:
            raise InputError(f"decode_yolov8 takes one image's output, got batch {out.shape[0]}")
        out = out[0]
    if out.ndim != 2 or out.shape[0] != 4 + num_classes:
        raise InputError(f"expected a [4 + {num_classes}, N] output, got shape {np.asarray(output).shape}")
    class_scores = out[4:]  # [nc, N]
    best = class_scores.argmax(axis=0) if num_classes > 1 else np.zeros(out.shape[1], np.int64)
    best_score = class_scores.max(axis=0) if num_classes > 1 else class_scores[0]
    candidates = np.flatnonzero(best_score > conf_threshold)
    if candidates.size == 0:
        return Detections.empty(num_classes)
    if candidates.size > max_candidates:
        candidates = candidates[np.argsort(-best_score[candidates], kind="stable")[:max_candidates]]
    cx, cy, w, h = out[0, candidates], out[1, candidates], out[2, candidates], out[3, candidates]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    scores = best_score[candidates].astype(np.float32)
    classes = best[candidates].astype(np.int64)
    if agnostic or num_classes == 1:
        keep = nms(boxes, scores, iou_threshold, max_det)
    else:
        # Per-class NMS by shifting each class into its own coordinate range (as Ultralytics does).
        offset = classes[:, None].astype(np.float32) * (float(boxes.max()) + 1.0)
        keep = nms(boxes + offset, scores, iou_threshold, max_det)
    return Detections(
        boxes=boxes[keep],
        scores=scores[keep],
        classes=classes[keep],
        class_scores=class_scores[:, candidates[keep]].T.astype(np.float32),
    )


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip [N, 4] xyxy boxes to an image of ``width`` x ``height`` pixels."""
    out = np.asarray(boxes, np.float32).copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out
