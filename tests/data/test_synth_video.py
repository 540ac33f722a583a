"""data.synth.video: plates drive through on the rears of cars, the same car in every frame."""

from __future__ import annotations

import json

import cv2
import numpy as np

from data.synth.video import make_video


def _frames(folder) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(folder / "video.mp4"))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return out
        out.append(frame)


def _truth(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "frames.jsonl").read_text().splitlines()]


def test_plates_ride_on_cars_and_the_cars_change_nothing_else(tmp_path):
    with_cars, alone = tmp_path / "cars", tmp_path / "alone"
    make_video(with_cars, frames=30, seed=3, plates=2, progress=False)
    make_video(alone, frames=30, seed=3, plates=2, progress=False, vehicle_scale=None)
    # The same plates, texts and boxes: the cars come from their own generator.
    assert (
        json.loads((with_cars / "truth.json").read_text())["plates"]
        == json.loads((alone / "truth.json").read_text())["plates"]
    )
    assert _truth(with_cars) == _truth(alone)
    cars, bare = _frames(with_cars), _frames(alone)
    seen = 0
    for rec, a, b in zip(_truth(with_cars), cars, bare, strict=True):
        for plate in rec["plates"]:
            x1, y1, x2, y2 = (int(v) for v in plate["box"])
            h = y2 - y1
            # Left of the plate, its own height: car body with cars, street without.
            strip = (slice(max(0, y1), y2), slice(max(0, x1 - h), max(0, x1 - 2)))
            if a[strip].size == 0:
                continue
            diff = np.abs(a[strip].astype(int) - b[strip].astype(int)).mean()
            assert diff > 10, f"frame {rec['frame']}: nothing drawn beside plate {plate['id']}"
            seen += 1
    assert seen > 20


def test_the_same_car_in_every_frame(tmp_path):
    make_video(tmp_path, frames=60, seed=4, plates=1, progress=False, noise=0.0)
    truth, frames = _truth(tmp_path), _frames(tmp_path)
    colours = []
    for rec, frame in zip(truth, frames, strict=True):
        for plate in rec["plates"]:
            x1, y1, x2, y2 = (int(v) for v in plate["box"])
            h = y2 - y1
            patch = frame[max(0, y1) : y2, max(0, x1 - h) : max(0, x1 - 2)]
            if patch.size:
                colours.append(np.median(patch.reshape(-1, 3), axis=0))
    assert len(colours) > 10
    spread = np.ptp(np.array(colours), axis=0).max()
    assert spread < 40, f"the car beside the plate changes colour from frame to frame ({spread})"
