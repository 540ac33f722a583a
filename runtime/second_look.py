"""A second look at hard plates: re-read small or doubtful plates from other cuts and vote.

A plate narrower than ``second_look_width`` px, or whose reading scores below
``second_look_score`` (or reads nothing), is read again from ``second_look_crops`` other cuts of the
image: an upscaled copy of the same cut (cubic: sharper strokes than the letterbox's linear
enlargement of a 30 px plate) and cuts grown, shrunk and shifted by ``second_look_jitter`` of the
plate's size. All readings of that plate then vote: the most common length wins (ties: the higher
total score), and each character place takes the character with the highest summed score among the
readings of that length. The first reading is kept when no other agrees on a length.

All extra cuts of a frame go to the OCR model in one batch. Off by default
(``PipelineConfig.second_look``): see docs/swap_scenes.md for its measured cost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from runtime.config import PipelineConfig
from runtime.geometry import plate_crop_box
from runtime.postprocess import Detections
from runtime.records import Box, Plate, to_box

UPSCALE = 2.0
"""The upscaled cut is this many times the original cut (cubic)."""


def needs_second_look(plate: Plate, box: Box, config: PipelineConfig) -> bool:
    width = box[2] - box[0]
    if width < 4:  # nothing to re-cut
        return False
    if not plate.text:
        return plate.reason != "empty crop: the plate box has no area inside the image"
    return width < config.second_look_width or (
        plate.score is not None and plate.score < config.second_look_score
    )


def variant_boxes(box: Box, n: int, jitter: float) -> list[Box]:
    """``n`` other plate boxes around ``box``: grown, shrunk, shifted left and right, in that order
    (deterministic: the same frame gives the same readings)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    j = jitter
    moves = [(-j, -j, j, j), (j / 2, j / 2, -j / 2, -j / 2), (-j, 0, -j, 0), (j, 0, j, 0), (0, -j, 0, j)]
    out = []
    for dx1, dy1, dx2, dy2 in moves[: max(0, n)]:
        out.append((x1 + dx1 * w, y1 + dy1 * h, x2 + dx2 * w, y2 + dy2 * h))
    return out


def vote(readings: Sequence[Plate]) -> Plate:
    """One plate from several readings of it (the first is the original): see the module text."""
    first = readings[0]
    groups: dict[int, list[Plate]] = defaultdict(list)
    for r in readings:
        if r.text and len(r.chars) == len(r.text):
            groups[len(r.text)].append(r)
    if not groups:
        return first

    def weight(p: Plate) -> float:
        return float(p.score) if p.score is not None else 0.0

    length, group = max(groups.items(), key=lambda kv: (len(kv[1]), sum(weight(p) for p in kv[1])))
    if len(group) == 1 and group[0] is not first and first.text:
        return first  # one other cut alone does not overrule the first reading
    base = max(group, key=weight)
    chars, score = [], 1.0
    for i in range(length):
        tally: dict[str, float] = defaultdict(float)
        for r in group:
            char_score = r.chars[i].score
            tally[r.chars[i].char] += 1.0 if char_score is None else float(char_score)
        winner = max(tally, key=lambda c: (tally[c], c == base.chars[i].char))
        share = tally[winner] / len(group)
        score *= share
        chars.append(replace(base.chars[i], char=winner, score=round(share, 6)))
    text = "".join(c.char for c in chars)
    extra = dict(base.extra)
    extra["second_look"] = {"reads": len(readings), "agreeing": len(group), "first": first.text}
    return replace(
        base, box=first.box, det_score=first.det_score, text=text, score=score, chars=chars, extra=extra
    )


def second_look(
    image: np.ndarray,
    boxes: np.ndarray,
    plates: list[Plate],
    config: PipelineConfig,
    pad: tuple[float, float],
    read: Callable[[list[np.ndarray]], list[Detections]],
    assemble: Callable[[Box, float | None, tuple[int, int, int, int], Detections], Plate],
) -> list[Plate]:
    """``plates`` with the hard ones re-read and voted. ``read`` is the OCR backend's batch call,
    ``assemble`` makes a plate from a box, its score, a cut region and the OCR model's detections."""
    import cv2

    h, w = image.shape[:2]
    jobs: list[tuple[int, tuple[int, int, int, int], float]] = []  # plate index, region, scale
    crops: list[np.ndarray] = []
    for i, plate in enumerate(plates):
        box = to_box(boxes[i])
        if not needs_second_look(plate, box, config):
            continue
        n = max(0, int(config.second_look_crops))
        region = plate_crop_box(box, w, h, *pad)
        if region is not None and n > 0:  # the same cut, enlarged
            cut = image[region[1] : region[3], region[0] : region[2]]
            crops.append(cv2.resize(cut, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC))
            jobs.append((i, region, UPSCALE))
            n -= 1
        for vb in variant_boxes(box, n, config.second_look_jitter):
            r = plate_crop_box(vb, w, h, *pad)
            if r is not None:
                crops.append(image[r[1] : r[3], r[0] : r[2]])
                jobs.append((i, r, 1.0))
    if not crops:
        return plates
    results = read(crops)
    extra: dict[int, list[Plate]] = defaultdict(list)
    for (i, region, scale), dets in zip(jobs, results, strict=True):
        if scale != 1.0 and len(dets):
            dets = replace(dets, boxes=dets.boxes / np.float32(scale))
        extra[i].append(assemble(to_box(boxes[i]), plates[i].det_score, region, dets))
    return [vote([p, *extra[i]]) if i in extra else p for i, p in enumerate(plates)]
