"""Ten real car photos as a video (each held 1.5 s with a slow pan and zoom, black frames between
cars), as a new user would try it: one confirmed event per car, no junk, and texts at least as
good as reading the photos one by one."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.pipeline import Predictor
from runtime.results import Event

FPS, HELD, BLACK = 10, 15, 5  # 1.5 s per car, 0.5 s of black
WIDTH, HEIGHT = 1024, 576


def photo_video(photos: list[Path], out: Path) -> list[tuple[int, int]]:
    """Write the video; returns each photo's (first, last) frame."""
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    spans, n = [], 0
    for path in photos:
        image = cv2.imread(str(path))
        h, w = image.shape[:2]
        spans.append((n, n + HELD - 1))
        for k in range(HELD):
            t = k / (HELD - 1)
            zoom = 1.0 - 0.1 * t  # a 10 % zoom in while panning right
            cw, ch = w * zoom, h * zoom
            x0, y0 = (w - cw) * t, (h - ch) / 2
            s = min(WIDTH / cw, HEIGHT / ch)
            warp = np.array([[s, 0, -x0 * s + (WIDTH - cw * s) / 2], [0, s, -y0 * s + (HEIGHT - ch * s) / 2]])
            writer.write(cv2.warpAffine(image, warp.astype(np.float32), (WIDTH, HEIGHT)))
            n += 1
        for _ in range(BLACK):
            writer.write(np.zeros((HEIGHT, WIDTH, 3), np.uint8))
            n += 1
    writer.release()
    return spans


@pytest.mark.shared_data
def test_ten_photo_video_gives_one_clean_event_per_car(shared_datasets, tmp_path):
    folder = shared_datasets / "pl_parking"
    records = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines()]
    records = [r for r in records if len(r["plates"]) == 1 and r["plates"][0]["text"]][:10]
    assert len(records) == 10
    photos = [folder / r["image"] for r in records]
    truth = [r["plates"][0]["text"] for r in records]
    video = tmp_path / "ten_cars.mp4"
    spans = photo_video(photos, video)
    with Predictor() as predictor:
        one_by_one = []
        for path in photos:
            plates = predictor.predict(cv2.imread(str(path)))
            one_by_one.append(max(plates, key=lambda p: p.score or 0).text if plates else "")
        run = predictor.track(str(video))
        events = [i.to_dict() for i in run if isinstance(i, Event) and i.kind == "plate"]
    stats = run.stats.to_dict()
    per_car: dict[int, list[dict]] = {}
    for e in events:
        car = next((k for k, (a, b) in enumerate(spans) if a <= e["best_frame"] <= b), None)
        assert car is not None, f"an event outside every car's frames: {e['text']}"
        per_car.setdefault(car, []).append(e)
    assert all(e["confirmed"] for e in events), "no junk: unconfirmed tracks make no event"
    assert {car: len(es) for car, es in per_car.items()} == {k: 1 for k in range(10)}, [
        (e["text"], e["first_frame"]) for e in events
    ]
    assert stats["scene_cuts"] >= 10, "the black frames between cars end the tracks"
    video_right = sum(per_car[k][0]["text"] == truth[k] for k in range(10))
    photo_right = sum(one_by_one[k] == truth[k] for k in range(10))
    assert video_right >= photo_right, (
        [per_car[k][0]["text"] for k in range(10)],
        one_by_one,
        truth,
    )
