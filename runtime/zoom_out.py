"""A zoomed-out look for large plates: the frame detected again at a smaller scale.

The shipped detector finds plates up to about 240 px of its 640 px input well and larger ones
badly: they are the ones its data has fewest of, and its stride-16 and stride-32 heads, which draw
the large boxes, learned late (runtime/zoo/MODEL_CARD.md, issue 17). A plate that fills a close-up
photo is often missed outright, or found as pieces along it. The same detector finds it when the
frame is shrunk so that the plate is half as wide: that is what this does, on the frames that need
it, with the same model.

When the first pass found no plate, or found one at least ``zoom_out_trigger`` px wide in the
detector's input, the frame is shrunk by ``zoom_out_factor`` and centred on a canvas of the first
pass's letterboxed size (the letterbox then has nothing left to scale), and detected again. Of the
second pass, only plates at least ``zoom_out_min_width`` px wide (first-pass input px) are taken:
small plates are the first pass's, at full resolution. Each one taken replaces the first-pass boxes
that it overlaps (IoU, or their share inside it, at least ``zoom_out_overlap``): the pieces of a
large plate, or the same plate drawn at the wrong size.

A frame with no plate is where the pass costs most and finds least: a camera on an empty road would
pay the detector twice on most frames. So in a run of frames of one source (a video or stream) an
empty frame gets it when the frame before had a plate, and otherwise every
``zoom_out_empty_every``-th one (:class:`EmptyFramePacer`): a plate too large for the first pass
is in view for many frames, and once the zoomed-out pass has found it the frames after it get the
pass too. A still photo (a frame of another source than the one before) always gets it.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from runtime.config import PipelineConfig
from runtime.postprocess import Detections, clip_boxes

FILL = 114
"""The canvas around the shrunk frame: the letterbox fill the detectors are trained with."""


def letterbox_scale(height: int, width: int, input_hw: tuple[int, int]) -> float:
    """How the detector's letterbox scales a ``height`` x ``width`` frame into ``input_hw``."""
    return min(input_hw[0] / height, input_hw[1] / width)


def needs_zoom_out(dets: Detections, scale: float, config: PipelineConfig, empty_due: bool = True) -> bool:
    """The first pass found nothing (and ``empty_due``: see :class:`EmptyFramePacer`), or a plate
    wide enough to be a large plate or a piece of one (``scale``: the first pass's letterbox scale)."""
    if not config.zoom_out:
        return False
    if len(dets) == 0:
        return empty_due
    widths = (dets.boxes[:, 2] - dets.boxes[:, 0]) * scale
    return bool((widths >= config.zoom_out_trigger).any())


def zoomed_out_canvas(image: np.ndarray, scale: float, factor: float) -> tuple[np.ndarray, float, np.ndarray]:
    """``image`` shrunk to ``scale / factor`` and centred on a canvas of its first-pass letterboxed
    size; returns the canvas, the shrink and the frame's [x, y] offset on it."""
    h, w = image.shape[:2]
    canvas_h, canvas_w = max(1, round(h * scale)), max(1, round(w * scale))
    shrink = scale / factor
    small_w, small_h = max(1, round(w * shrink)), max(1, round(h * shrink))
    small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
    canvas = np.full((canvas_h, canvas_w, *image.shape[2:]), FILL, dtype=image.dtype)
    x0, y0 = (canvas_w - small_w) // 2, (canvas_h - small_h) // 2
    canvas[y0 : y0 + small_h, x0 : x0 + small_w] = small
    return canvas, shrink, np.array([x0, y0], np.float32)


def _overlaps(boxes: np.ndarray, big: np.ndarray) -> np.ndarray:
    """[N, M]: for each of ``boxes`` and each of ``big``, the larger of their IoU and the share of
    the box's area inside the big one."""
    ix = np.clip(
        np.minimum(boxes[:, None, 2], big[None, :, 2]) - np.maximum(boxes[:, None, 0], big[None, :, 0]),
        0,
        None,
    )
    iy = np.clip(
        np.minimum(boxes[:, None, 3], big[None, :, 3]) - np.maximum(boxes[:, None, 1], big[None, :, 1]),
        0,
        None,
    )
    inter = ix * iy
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    area_big = np.clip(big[:, 2] - big[:, 0], 0, None) * np.clip(big[:, 3] - big[:, 1], 0, None)
    union = area[:, None] + area_big[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
    inside = np.where(area[:, None] > 0, inter / np.maximum(area[:, None], 1e-9), 0.0)
    return np.maximum(iou, inside)


def merge_zoomed_out(
    first: Detections, zoomed: Detections, scale: float, config: PipelineConfig
) -> Detections:
    """``first`` with the large plates of ``zoomed`` (both in image pixels) in place of the boxes
    they overlap; best first, at most ``max_plates``."""
    if len(zoomed) == 0:
        return first
    large = (zoomed.boxes[:, 2] - zoomed.boxes[:, 0]) * scale >= config.zoom_out_min_width
    zoomed = zoomed.select(np.flatnonzero(large))
    if len(zoomed) == 0:
        return first
    if len(first):
        keep = _overlaps(first.boxes, zoomed.boxes).max(axis=1) < config.zoom_out_overlap
        first = first.select(np.flatnonzero(keep))
    both = _concat(first, zoomed)
    order = np.argsort(-both.scores, kind="stable")[: config.max_plates]
    return both.select(order)


def _concat(a: Detections, b: Detections) -> Detections:
    if len(a) == 0:
        return b
    class_scores = None
    if a.class_scores is not None and b.class_scores is not None:
        class_scores = np.concatenate([a.class_scores, b.class_scores])
    return Detections(
        boxes=np.concatenate([a.boxes, b.boxes]).astype(np.float32),
        scores=np.concatenate([a.scores, b.scores]).astype(np.float32),
        classes=np.concatenate([a.classes, b.classes]),
        class_scores=class_scores,
    )


class EmptyFramePacer:
    """Which frames without a plate get the zoomed-out pass.

    Frames come in order (the pipeline's reader thread). In a run of frames of one source, an
    empty frame is due when the frame before it had a plate (found by either pass) or started the
    run, and then every ``every``-th empty frame; so a large plate that only the zoomed-out pass
    finds keeps being looked for on every frame while it is in view. A frame whose source differs
    from the previous frame's (each photo of a folder) is always due. Two runs interleaved on one
    predictor only make more frames due, never fewer.
    """

    def __init__(self, every: int) -> None:
        self.every = max(1, every)
        self._source: str | None = None
        self._empty = 0
        """Frames of ``_source`` in a row without a plate."""

    def _of(self, source: str) -> None:
        if source != self._source:
            self._source, self._empty = source, 0

    def due(self, source: str) -> bool:
        """Whether a frame of ``source`` whose first pass found no plate gets the second pass."""
        self._of(source)
        return self._empty % self.every == 0

    def seen(self, source: str, found: bool) -> None:
        """A frame of ``source`` is done: ``found``, whether it has a plate after both passes."""
        self._of(source)
        self._empty = 0 if found else self._empty + 1


def detect_zoomed_out(
    detect: Callable[[np.ndarray], Detections],
    image: np.ndarray,
    first: Detections,
    input_hw: tuple[int, int],
    config: PipelineConfig,
    empty_due: bool = True,
) -> Detections:
    """``first`` (the plates ``detect`` found in ``image``), completed by a zoomed-out pass when
    it needs one (see the module text; ``empty_due``: whether an empty frame gets it)."""
    h, w = image.shape[:2]
    scale = letterbox_scale(h, w, input_hw)
    if not needs_zoom_out(first, scale, config, empty_due):
        return first
    canvas, shrink, offset = zoomed_out_canvas(image, scale, config.zoom_out_factor)
    zoomed = detect(canvas)
    if len(zoomed):
        boxes = (zoomed.boxes - np.tile(offset, 2)) / shrink
        zoomed = zoomed.with_boxes(clip_boxes(boxes, w, h))
    return merge_zoomed_out(first, zoomed, scale, config)
