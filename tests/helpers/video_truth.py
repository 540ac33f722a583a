"""The known truth of a synthetic video (``data action=synth kind=video``) and the plate an event
is about: what the video tests compare the runtime's events with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtime.geometry import iou_matrix
from runtime.results import Event

Boxes = dict[int, dict[int, list[float]]]
"""plate id -> frame -> the plate's box in that frame."""


def truth_of(folder: Path, visible_only: bool = False) -> tuple[dict, Boxes]:
    """truth.json and every plate's box per frame (``visible_only``: frames where it can be seen)."""
    truth = json.loads((folder / "truth.json").read_text())
    boxes: Boxes = {}
    for line in (folder / "frames.jsonl").read_text().splitlines():
        rec = json.loads(line)
        for p in rec["plates"]:
            if p.get("visible", True) or not visible_only:
                boxes.setdefault(p["id"], {})[rec["frame"]] = p["box"]
    return truth, boxes


def plate_of(event: dict, boxes: Boxes) -> int | None:
    """The true plate an event is about: the one at its best box in its best frame (IoU > 0.3)."""
    best, best_iou = None, 0.3
    for pid, frames in boxes.items():
        if event["best_frame"] in frames:
            iou = float(
                iou_matrix(np.array([frames[event["best_frame"]]]), np.array([event["best_box"]]))[0, 0]
            )
            if iou > best_iou:
                best, best_iou = pid, iou
    return best


def plate_events(items) -> list[dict]:
    """The plate events (as dicts) among a track run's items."""
    return [i.to_dict() for i in items if isinstance(i, Event) and i.kind == "plate"]
