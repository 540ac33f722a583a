"""Synthetic traffic videos with known plates: for the runtime's video tests and benchmarks.

    make_video(out, frames=150, seed=0, ...) -> out/video.mp4 + out/truth.json + out/frames.jsonl

Plates drive through a street scene in lanes, growing as they approach (one plate per lane at a
time, so tracks never cross). Each plate is rendered once (data.synth.plate) and warped onto its
place in every frame, so its character boxes are exact in every frame. Options make the cases a
tracker must survive: two-line plates, a pillar that hides a plate completely for a few frames,
and frames where one character of every plate is smeared (single-frame misreads for voting to fix).

truth.json: {"video", "fps", "frames", "width", "height", "plates": [{"id", "text", "lines", "style",
"font", "first_frame", "last_frame", "hidden_frames", "smeared_frames"}]}; frames.jsonl: one line per frame,
{"frame", "plates": [{"id", "box", "text", "visible"}]}.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from data.errors import DataError
from data.synth.backgrounds import street, vehicle
from data.synth.compose import camera_quad, composite, quad_box
from data.synth.plate import render
from data.synth.style import load_style


@dataclass
class VideoPlate:
    id: int
    text: str
    lines: int
    style: str
    font: str
    lane: int
    first_frame: int
    last_frame: int
    hidden_frames: list[int] = field(default_factory=list)
    """Frames where the pillar covers the whole plate."""
    smeared_frames: list[int] = field(default_factory=list)
    """Frames where one of its characters is smeared."""


def _schedule(
    frames: int, lanes: int, plates: int, duration: tuple[int, int], rng: np.random.Generator
) -> list[tuple[int, int, int]]:
    """(lane, first, last) for ``plates`` plates: each lane carries one plate at a time, with a gap."""
    free_from = [int(rng.integers(0, max(1, duration[0] // 2))) for _ in range(lanes)]
    out = []
    for _ in range(plates):
        lane = int(np.argmin(free_from))
        length = int(rng.integers(duration[0], duration[1] + 1))
        first = free_from[lane]
        last = min(frames - 1, first + length - 1)
        if last - first < duration[0] // 2:
            break  # no room left in the video
        out.append((lane, first, last))
        free_from[lane] = last + 1 + int(rng.integers(3, 10))
    return out


def make_video(
    out: str | Path,
    frames: int = 150,
    seed: int = 0,
    *,
    fps: float = 25.0,
    width: int = 960,
    height: int = 540,
    plates: int = 6,
    lanes: int = 2,
    styles: list[str] | None = None,
    two_line_style: str = "moto",
    two_line_share: float = 0.25,
    duration: tuple[int, int] = (40, 70),
    plate_width: tuple[float, float] = (0.12, 0.2),
    pillar_frames: int = 0,
    smear_every: int = 0,
    noise: float = 2.0,
    fonts: list[str] | None = None,
    vehicle_scale: tuple[float, float] | None = (1.6, 2.0),
    codec: str = "mp4v",
    progress: bool = True,
) -> Path:
    """Write a synthetic traffic video and its ground truth to ``out``; returns truth.json's path.

    ``plate_width``: plate width / frame width when entering and when leaving (they approach).
    ``pillar_frames`` > 0: a pillar in front of the far lane (lane 0) hides each of its plates
    completely for about that many frames; the other lanes pass in front of it. ``smear_every`` > 0:
    every that many frames, one character of each plate is smeared (its cell blurred and painted over
    in plate colour).
    ``fonts``: draw every plate in one of these fonts (data.synth.fonts specs) instead of its style's.
    ``vehicle_scale``: each plate on the rear of a car this many plate widths wide (the same car in
    every frame; its roof cut where it would reach into the lane behind); None: plates alone on the
    street, which a detector trained on real cars may rightly take for signs.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    styles = list(styles or ["eu", "es", "br_old", "mercosur", "us"])
    background = street(rng, width, height)
    lane_y = [height * (0.25 + 0.6 * (k + 0.5) / lanes) for k in range(lanes)]
    drift = 0.06 * height  # plates move down a little as they approach
    rendered, placed_plates = [], []
    for pid, (lane, first, last) in enumerate(_schedule(frames, lanes, plates, duration, rng), start=1):
        # Styles in rotation, every k-th plate two-line: a short video still shows every kind.
        every = max(1, round(1 / two_line_share)) if two_line_share > 0 else 0
        two_line = every > 0 and pid % every == 0
        style = (
            two_line_style if two_line else styles[(pid - 1 - (pid // every if every else 0)) % len(styles)]
        )
        plate_style = load_style(style)
        if fonts:
            plate_style = replace(plate_style, fonts=list(fonts))
        rp = render(plate_style, None, rng, px_per_mm=0.7)
        aspect = rp.image.shape[1] / rp.image.shape[0]
        # A fixed view of the plate (small angles), scaled and moved along the lane frame by frame.
        unit = camera_quad(rng, 1.0, aspect, (0.0, 0.0), 12, 8, 4)
        direction = 1 if rng.random() < 0.5 else -1
        # Smaller plates (motorbikes, US) look smaller, but less than in proportion: the camera is nearer.
        size = float(np.sqrt(min(1.0, plate_style.size_mm[0] / 520.0)))
        rendered.append((rp, unit * size, direction))
        placed_plates.append(
            VideoPlate(
                id=pid,
                text=rp.plate.text or "",
                lines=rp.plate.lines or 1,
                style=style,
                font=rp.font,
                lane=lane,
                first_frame=first,
                last_frame=last,
            )
        )
    pillar = None
    if pillar_frames > 0:
        # A plate is hidden while the pillar spans it: as wide as a plate mid-way plus the distance
        # a plate moves in ``pillar_frames`` frames (0.9 of the width over a plate's time in view).
        speed = width * 0.9 / np.mean(duration)
        pw = int(width * np.mean(plate_width) + speed * pillar_frames)
        far = [
            rp.image.shape[0] / rp.image.shape[1]
            for (rp, _, _), vp in zip(rendered, placed_plates, strict=False)
            if vp.lane == 0
        ]
        bottom = lane_y[0] + drift + 0.5 * width * plate_width[1] * max(far, default=0.5) * 1.3
        pillar = (width // 2 - pw // 2, width // 2 + pw // 2, int(bottom))
    writer = cv2.VideoWriter(str(out / "video.mp4"), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    if not writer.isOpened():
        raise DataError(f"{out / 'video.mp4'}: OpenCV cannot write {codec!r} video here")
    truth_lines = []
    try:
        # The far lane first: nearer cars are drawn over it, but never above the bottom of the lane
        # behind (its plates at their largest and lowest; 0.6: the height of the squarest plate, a
        # two-line one, over its width), so a near car does not cover the plates behind it.
        order = sorted(range(len(placed_plates)), key=lambda k: placed_plates[k].lane)
        lane_top = [0.0] + [lane_y[k] + drift + 0.5 * width * plate_width[1] * 0.6 for k in range(lanes - 1)]
        for f in tqdm(range(frames), desc="synthetic video", unit="frame", disable=not progress):
            frame = background.copy()
            records = []
            for k in order:
                vp, (rp, unit, direction) = placed_plates[k], rendered[k]
                if not vp.first_frame <= f <= vp.last_frame:
                    continue
                t = (f - vp.first_frame) / max(1, vp.last_frame - vp.first_frame)
                w = width * (plate_width[0] + (plate_width[1] - plate_width[0]) * t)
                x = width * (0.05 + 0.9 * (t if direction > 0 else 1 - t))
                y = lane_y[vp.lane] + drift * t
                quad = unit * w + np.array([x, y], np.float32)
                if vehicle_scale is not None:
                    # Its own generator: the same car in every frame, and the plates and texts of a
                    # seed the same with or without cars.
                    car = frame.copy()
                    vehicle(car, np.random.default_rng([seed, vp.id]), quad_box(quad), None, vehicle_scale)
                    top = int(lane_top[vp.lane])
                    frame[top:] = car[top:]
                smear = smear_every > 0 and f % smear_every == smear_every - 1
                image = _smeared(rp, rng) if smear else rp.image
                placed = composite(frame, _with_image(rp, image), quad)
                if placed is None:
                    continue
                box = placed.plate.box
                hidden = pillar is not None and vp.lane == 0 and box[0] >= pillar[0] and box[2] <= pillar[1]
                if hidden:
                    vp.hidden_frames.append(f)
                if smear:
                    vp.smeared_frames.append(f)
                records.append(
                    {"id": vp.id, "box": [round(v, 2) for v in box], "text": vp.text, "visible": not hidden}
                )
            if pillar is not None:  # in front of the far lane only
                cv2.rectangle(frame, (pillar[0], 0), (pillar[1], pillar[2]), (70, 75, 80), -1)
                cv2.rectangle(frame, (pillar[0], 0), (pillar[1], pillar[2]), (40, 40, 45), 3)
            if noise > 0:  # sensor noise: no two frames alike, as from a camera
                grain = rng.normal(0, noise, frame.shape).astype(np.int16)
                frame = np.clip(frame.astype(np.int16) + grain, 0, 255).astype(np.uint8)
            writer.write(frame)
            truth_lines.append({"frame": f, "plates": records})
    finally:
        writer.release()
    (out / "frames.jsonl").write_text("".join(json.dumps(r) + "\n" for r in truth_lines))
    truth = {
        "video": "video.mp4",
        "fps": fps,
        "frames": frames,
        "width": width,
        "height": height,
        "seed": seed,
        "plates": [asdict(p) for p in placed_plates],
    }
    path = out / "truth.json"
    path.write_text(json.dumps(truth, indent=1))
    return path


def _with_image(rp: Any, image: np.ndarray) -> Any:
    return rp if image is rp.image else replace(rp, image=image)


def _smeared(rp: Any, rng: np.random.Generator) -> np.ndarray:
    """The plate with one character smeared beyond reading: its box blurred hard and half painted
    over in the plate's own colour (mud, a glint), so that frame's reading of it goes wrong."""
    image = rp.image.copy()
    chars = rp.plate.chars
    if not chars:
        return image
    c = chars[int(rng.integers(len(chars)))]
    x1, y1, x2, y2 = (int(round(v)) for v in c.box)
    x1, y1 = max(0, x1 - 2), max(0, y1 - 2)
    x2, y2 = min(image.shape[1], x2 + 2), min(image.shape[0], y2 + 2)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return image
    cell = image[y1:y2, x1:x2]
    k = max(3, ((y2 - y1) // 2) | 1)
    cell[:] = cv2.GaussianBlur(cell, (k, k), 0)
    colour = np.median(image.reshape(-1, 3), axis=0)  # mostly the plate's background
    half = y1 + (y2 - y1) // 2
    image[half:y2, x1:x2] = colour.astype(np.uint8)
    return image
