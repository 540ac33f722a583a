"""Splits that keep one plate (or one video) in one split."""

from __future__ import annotations

import numpy as np

from data.manifest import LabeledImage
from data.split import assign_splits
from runtime.records import Plate


def test_split_never_puts_one_plate_in_two_splits():
    rng = np.random.default_rng(1)
    texts = [f"AB{i:03d}" for i in range(150)]
    items = []
    for k in range(300):
        chosen = [texts[rng.integers(len(texts))] for _ in range(1 + (k % 15 == 0))]
        items.append(LabeledImage(f"i{k}.jpg", 10, 10, [Plate((0, 0, 5, 5), t) for t in chosen]))
    items.append(LabeledImage("unknown.jpg", 10, 10, [Plate((0, 0, 5, 5), None)]))
    counts = assign_splits(items, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    where: dict[str, set] = {}
    for it in items:
        for p in it.plates:
            if p.text:
                where.setdefault(p.text, set()).add(it.split)
    assert all(len(s) == 1 for s in where.values())
    assert sum(counts.values()) == len(items) and counts["train"] > counts["val"] > 0
    again = [LabeledImage(i.image, 10, 10, i.plates) for i in items]
    assign_splits(again, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    assert [i.split for i in again] == [i.split for i in items]


def test_split_by_record_field_keeps_videos_together():
    items = [LabeledImage(f"f{k}.jpg", 10, 10, [], extra={"video": f"v{k % 5}"}) for k in range(50)]
    assign_splits(items, {"train": 0.6, "val": 0.4}, key="video")
    per_video = {}
    for it in items:
        per_video.setdefault(it.extra["video"], set()).add(it.split)
    assert all(len(s) == 1 for s in per_video.values())
