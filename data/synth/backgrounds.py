"""What surrounds the plates: real scenes cut where no plate is, procedural streets, vehicle bodies,
and distractors (signs, badges, dealer frames: text that is not a plate)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from data.images import read_image
from data.manifest import read_manifest
from data.synth import draw
from data.synth.fonts import available_fonts
from data.synth.rand import uniform

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

SIGN_WORDS = [
    "STOP",
    "PARKING",
    "CENTRO",
    "TAXI",
    "BUS",
    "SALIDA",
    "EXIT",
    "POLICE",
    "HOTEL",
    "FARMACIA",
    "OPEN",
    "PIZZA",
    "CAFE",
    "SALE",
    "AUTO",
    "GARAGE",
    "BANCO",
    "METRO",
    "ONE WAY",
    "NO ENTRY",
    "SCHOOL",
    "KEEP RIGHT",
    "CAUTION",
    "PEDAGIO",
    "AEROPORTO",
    "RUA 25",
    "AV PAULISTA",
    "MAIN ST",
    "5TH AVE",
    "ZONE 30",
    "A-6",
    "E-90",
    "M30",
    "BR 116",
    "KM 12",
    "LOJA",
    "OFERTA",
    "24H",
    "WC",
    "ENTRADA",
    "MADRID 12",
    "LISBOA",
    "CITY",
    "SUPERMARKET",
    "BAR",
]
BADGES = [
    "GTI",
    "TDI",
    "1.6",
    "2.0 TURBO",
    "HYBRID",
    "4MOTION",
    "SPORT",
    "XLE",
    "LX",
    "FLEX",
    "16V",
    "1.0",
    "AUTO",
    "DIESEL",
    "ECO",
    "V6",
    "AWD",
    "GT",
    "SE",
    "TSI",
]
DEALERS = [
    "AUTO CENTER",
    "MOTORS",
    "CAR SALES",
    "VEICULOS",
    "CONCESIONARIO",
    "555-0134",
    "DEALER",
    "AUTOMOVEIS",
    "SERVICE",
    "WWW.CARS.COM",
]
SPEED_LIMITS = [20, 30, 40, 50, 60, 80, 100, 120]
BODY_COLOURS = [
    (235, 235, 235),
    (200, 200, 205),
    (150, 150, 155),
    (40, 40, 42),
    (20, 20, 25),
    (30, 30, 160),
    (150, 60, 20),
    (40, 90, 40),
    (60, 160, 200),
    (100, 100, 110),
    (200, 210, 220),
    (30, 60, 120),
]
"""Car paint, BGR: white, silver, grey, black, red, blue, green, beige, ..."""
TEXT_FONTS = [
    "dejavu-sans:Bold",
    "dejavu-sans",
    "barlow-semi-condensed:SemiBold",
    "roboto-condensed:500",
    "dejavu-serif:Bold",
    "oswald:500",
]


def boxes_overlap(a: Box, b: Box, margin: float = 0.0) -> bool:
    return not (
        a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1]
    )


@dataclass
class _Scene:
    path: Path
    width: int
    height: int
    plates: list[Box]


class RealBackgrounds:
    """Real photographs from manifests, cut where no labelled plate is (read-only).

    A set draws from ``pool`` scenes picked by its seed; each is decoded once (long side at most
    ``max_side``) and kept with its pyramid, so backgrounds cost a crop and a small resize, not a
    JPEG decode."""

    def __init__(
        self,
        manifests: Sequence[Path],
        splits: Sequence[str] | None = None,
        margin: float = 0.15,
        pool: int = 128,
        seed: int = 0,
        max_side: int = 800,
    ):
        scenes: list[_Scene] = []
        for path in manifests:
            scenes.extend(_scenes(Path(path).resolve(), tuple(splits) if splits else None))
        if len(scenes) > pool:
            pick = np.random.default_rng([seed, 7]).choice(len(scenes), size=pool, replace=False)
            scenes = [scenes[i] for i in sorted(pick)]
        self.scenes = scenes
        self.margin = margin
        self.max_side = max_side

    def __len__(self) -> int:
        return len(self.scenes)

    def _levels(self, scene: _Scene) -> tuple[np.ndarray, ...] | None:
        return _decoded(scene.path, self.max_side)

    def region(
        self, rng: np.random.Generator, width: int, height: int, tries: int = 12
    ) -> tuple[_Scene, Box] | None:
        """A scene and a region of it (scene pixels) with the aspect of width x height that keeps
        ``margin`` clear of every labelled plate; None when none is found in ``tries``."""
        for _ in range(tries if self.scenes else 0):
            scene = self.scenes[int(rng.integers(len(self.scenes)))]
            aspect = width / height
            cw = min(scene.width, scene.height * aspect) * uniform(rng, 0.25, 1.0)
            ch = cw / aspect
            x = uniform(rng, 0, scene.width - cw)
            y = uniform(rng, 0, scene.height - ch)
            box = (x, y, x + cw, y + ch)
            if not any(boxes_overlap(box, _grown(p, self.margin)) for p in scene.plates):
                return scene, box
        return None

    def sample(self, rng: np.random.Generator, width: int, height: int) -> np.ndarray | None:
        """A width x height view of a real scene that holds no labelled plate; None when none is found."""
        found = self.region(rng, width, height)
        if found is None:
            return None
        scene, (x1, y1, x2, y2) = found
        levels = self._levels(scene)
        if levels is None:
            return None
        # the smallest level of the scene's pyramid that still holds the region at >= the output size:
        # the resize then shrinks by less than 2x (OpenCV's area filter costs ~1 ms at larger factors)
        img = levels[0]
        for level in levels[1:]:
            if (x2 - x1) * level.shape[1] / scene.width < width or (y2 - y1) * level.shape[
                0
            ] / scene.height < height:
                break
            img = level
        fx, fy = img.shape[1] / scene.width, img.shape[0] / scene.height
        sx1, sy1 = int(x1 * fx), int(y1 * fy)
        view = img[sy1 : max(sy1 + 2, int(y2 * fy)), sx1 : max(sx1 + 2, int(x2 * fx))]
        out = cv2.resize(view, (width, height), interpolation=cv2.INTER_LINEAR)
        return out if rng.random() < 0.5 else cv2.flip(out, 1)


@functools.lru_cache(maxsize=256)
def _decoded(path: Path, max_side: int) -> tuple[np.ndarray, ...] | None:
    """A background photograph decoded once per process, long side at most ``max_side``, with its
    pyramid (each level half the one before, Gaussian-filtered, down to 32 px)."""
    try:
        img = read_image(path)
    except (FileNotFoundError, ValueError) as e:
        log.warning("background skipped: %s", e)
        return None
    if max(img.shape[:2]) > max_side:
        f = max_side / max(img.shape[:2])
        img = cv2.resize(
            img, (round(img.shape[1] * f), round(img.shape[0] * f)), interpolation=cv2.INTER_AREA
        )
    levels = [img]
    while min(levels[-1].shape[:2]) >= 64:
        levels.append(cv2.pyrDown(levels[-1]))
    return tuple(levels)


@functools.lru_cache(maxsize=16)
def _scenes(manifest: Path, splits: tuple[str, ...] | None) -> tuple[_Scene, ...]:
    """A manifest's usable scenes (read once per process)."""
    m = read_manifest(manifest)
    return tuple(
        _Scene(m.image_path(item), item.width, item.height, [tuple(p.box) for p in item.plates])  # type: ignore[misc]
        for item in m.images
        if not item.is_crop and (not splits or item.split in splits)
    )


def _grown(b: Box, f: float) -> Box:
    w, h = b[2] - b[0], b[3] - b[1]
    return (b[0] - f * w, b[1] - f * h, b[2] + f * w, b[3] + f * h)


# -- procedural streets ----------------------------------------------------------------------------


def street(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Sky, buildings, road and lane marks: a plausible street behind the vehicles."""
    img = np.empty((height, width, 3), np.uint8)
    horizon = int(height * uniform(rng, 0.3, 0.6))
    sky_top = draw.jitter_colour((230, 200, 160), rng, 0.15, 30)
    img[:horizon] = draw.vertical_gradient(horizon, width, sky_top, draw.mix(sky_top, (245, 245, 245), 0.6))
    road = draw.jitter_colour((95, 95, 100), rng, 0.25, 20)
    img[horizon:] = draw.vertical_gradient(
        height - horizon, width, draw.mix(road, (160, 160, 160), 0.3), road
    )
    x = int(rng.integers(-width // 8, width // 8))
    while x < width:  # buildings along the horizon
        bw = int(rng.integers(width // 12, width // 4))
        bh = int(rng.integers(horizon // 4, horizon + 1))
        colour = draw.jitter_colour(tuple(int(v) for v in rng.integers(60, 220, 3)), rng)  # type: ignore[arg-type]
        cv2.rectangle(img, (x, horizon - bh), (x + bw, horizon), colour, -1)
        win = draw.mix(colour, (40, 40, 40) if rng.random() < 0.6 else (220, 230, 240), 0.5)
        step = max(4, bw // int(rng.integers(3, 8)))
        for wy in range(horizon - bh + step // 2, horizon - step // 2, step):
            for wx in range(x + step // 3, x + bw - step // 2, step):
                cv2.rectangle(img, (wx, wy), (wx + step // 2, wy + step // 2), win, -1)
        x += bw + int(rng.integers(0, width // 20 + 1))
    vx = width * uniform(rng, 0.3, 0.7)  # lane marks towards a vanishing point
    for k in range(int(rng.integers(1, 4))):
        bottom = width * uniform(rng, -0.2, 1.2)
        for t0 in np.arange(0.05, 1.0, 0.12):
            t1 = t0 + 0.06
            p0 = (int(vx + (bottom - vx) * t0), int(horizon + (height - horizon) * t0))
            p1 = (int(vx + (bottom - vx) * t1), int(horizon + (height - horizon) * t1))
            cv2.line(
                img,
                p0,
                p1,
                (225, 225, 225) if k else (60, 200, 230),
                max(1, int(3 * t1 * width / 640)),
                cv2.LINE_AA,
            )
    for _ in range(int(rng.integers(0, 4))):  # poles and trees
        px = int(rng.integers(0, width))
        cv2.line(
            img,
            (px, int(horizon * uniform(rng, 0.1, 0.8))),
            (px, int(horizon + (height - horizon) * uniform(rng, 0.1, 0.6))),
            draw.random_colour(rng, 30, 120),
            max(1, width // 160),
        )
    return img


def texture(rng: np.random.Generator, width: int, height: int, plain: bool = False) -> np.ndarray:
    """A plain surface (mostly car paint, else a wall or asphalt) with some structure (``plain``: one
    colour, for a frame a vehicle will nearly cover)."""
    if rng.random() < 0.7:
        base = draw.jitter_colour(BODY_COLOURS[int(rng.integers(len(BODY_COLOURS)))], rng, 0.1, 12)
    else:
        base = draw.random_colour(rng, 30, 230)
    if plain:
        img = np.empty((height, width, 3), np.uint8)
        cv2.rectangle(img, (0, 0), (width, height), base, -1)
        return img
    img = draw.vertical_gradient(height, width, base, draw.jitter_colour(base, rng, 0.3, 30))
    for _ in range(int(rng.integers(0, 6))):
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(
            img,
            p1,
            p2,
            draw.jitter_colour(base, rng, 0.3, 40),
            int(rng.integers(1, max(2, width // 30))),
            cv2.LINE_AA,
        )
    return img


# -- vehicles --------------------------------------------------------------------------------------


def vehicle(
    frame: np.ndarray,
    rng: np.random.Generator,
    plate_box: Box,
    badge_fonts: list | None = None,
    body_scale: tuple[float, float] = (3.2, 4.6),
) -> Box:
    """A car's rear or front around a plate at ``plate_box`` (drawn before the plate); its box.
    ``body_scale``: the body's width in plate widths (a real car is about 3.5; less is a close-up
    of its rear)."""
    px1, py1, px2, py2 = plate_box
    pw, ph = px2 - px1, py2 - py1
    cx = (px1 + px2) / 2 + rng.normal(0, 0.05) * pw
    body_w = pw * uniform(rng, *body_scale)
    body_h = body_w * uniform(rng, 0.55, 0.8)
    plate_y = uniform(rng, 0.55, 0.8)  # plate centre height on the body, from its top
    top = (py1 + py2) / 2 - body_h * plate_y
    x1, x2, y1, y2 = cx - body_w / 2, cx + body_w / 2, top, top + body_h
    paint = draw.jitter_colour(BODY_COLOURS[int(rng.integers(len(BODY_COLOURS)))], rng, 0.08, 10)
    dark = draw.mix(paint, (0, 0, 0), 0.45)
    i = lambda v: int(round(v))  # noqa: E731
    shoulder = y1 + body_h * uniform(rng, 0.3, 0.45)
    glass = draw.jitter_colour((45, 40, 40), rng, 0.3, 15)
    inset = body_w * uniform(rng, 0.08, 0.16)
    # window (trapezoid) above the shoulder line, body below it
    cv2.fillPoly(
        frame,
        [
            np.array(
                [
                    [i(x1 + inset * 1.6), i(y1)],
                    [i(x2 - inset * 1.6), i(y1)],
                    [i(x2 - inset * 0.6), i(shoulder)],
                    [i(x1 + inset * 0.6), i(shoulder)],
                ]
            )
        ],
        glass,
        cv2.LINE_AA,
    )
    body = np.array(
        [
            [i(x1 + inset * 0.4), i(shoulder)],
            [i(x2 - inset * 0.4), i(shoulder)],
            [i(x2), i(shoulder + body_h * 0.15)],
            [i(x2), i(y2)],
            [i(x1), i(y2)],
            [i(x1), i(shoulder + body_h * 0.15)],
        ]
    )
    cv2.fillPoly(frame, [body], paint, cv2.LINE_AA)
    # shading: lighter upper body, darker bumper
    bumper_y = (py1 + py2) / 2 + ph * uniform(rng, 0.6, 1.4)
    cv2.rectangle(
        frame, (i(x1), i(bumper_y)), (i(x2), i(y2)), draw.mix(paint, dark, uniform(rng, 0.2, 1.0)), -1
    )
    cv2.line(frame, (i(x1), i(bumper_y)), (i(x2), i(bumper_y)), dark, max(1, i(ph * 0.08)), cv2.LINE_AA)
    # lights at both sides
    lw, lh = body_w * uniform(rng, 0.12, 0.22), body_h * uniform(rng, 0.08, 0.16)
    ly = shoulder + body_h * uniform(rng, 0.02, 0.12)
    light = draw.jitter_colour((40, 40, 200) if rng.random() < 0.7 else (200, 210, 220), rng, 0.15, 20)
    for lx in (x1 + body_w * 0.03, x2 - body_w * 0.03 - lw):
        cv2.rectangle(frame, (i(lx), i(ly)), (i(lx + lw), i(ly + lh)), light, -1, cv2.LINE_AA)
        cv2.rectangle(
            frame, (i(lx), i(ly)), (i(lx + lw), i(ly + lh)), dark, max(1, i(lh * 0.08)), cv2.LINE_AA
        )
    # recess the plate sits in
    rx, ry = pw * uniform(rng, 0.03, 0.12), ph * uniform(rng, 0.05, 0.25)
    cv2.rectangle(
        frame,
        (i(px1 - rx), i(py1 - ry)),
        (i(px2 + rx), i(py2 + ry)),
        draw.mix(paint, dark, 0.6),
        -1,
        cv2.LINE_AA,
    )
    if badge_fonts and rng.random() < 0.5:  # a model badge: chrome text near the plate, not a plate
        m = draw.fit_text(
            badge_fonts[int(rng.integers(len(badge_fonts)))],
            BADGES[int(rng.integers(len(BADGES)))],
            ph * uniform(rng, 0.25, 0.5),
            pw * 0.8,
        )
        bx = i(cx + (-1, 1)[int(rng.integers(2))] * body_w * uniform(rng, 0.15, 0.35) - m.shape[1] / 2)
        draw.blend_mask(
            frame, m, bx, i(py1 - ry - ph * uniform(rng, 0.4, 1.2)), draw.jitter_colour((200, 200, 205), rng)
        )
    # shadow under the car
    cv2.rectangle(
        frame,
        (i(x1 - body_w * 0.02), i(y2)),
        (i(x2 + body_w * 0.02), i(y2 + body_h * 0.06)),
        (25, 25, 28),
        -1,
    )
    return (x1, y1, x2, y2 + body_h * 0.06)


def plate_frame(frame: np.ndarray, rng: np.random.Generator, quad: np.ndarray, fonts: list) -> None:
    """A plate holder around the plate's outline with a dealer's text in its lower bar (drawn before
    the plate: only the frame's margin stays visible)."""
    q = quad.astype(np.float32)
    w = float(np.linalg.norm(q[1] - q[0]))
    h = float(np.linalg.norm(q[3] - q[0]))
    grow_x, grow_top, grow_bot = 0.04 * w, 0.08 * h, uniform(rng, 0.15, 0.3) * h
    ux, uy = (q[1] - q[0]) / max(w, 1e-6), (q[3] - q[0]) / max(h, 1e-6)
    outer = np.array(
        [
            q[0] - ux * grow_x - uy * grow_top,
            q[1] + ux * grow_x - uy * grow_top,
            q[2] + ux * grow_x + uy * grow_bot,
            q[3] - ux * grow_x + uy * grow_bot,
        ]
    )
    colour = (20, 20, 22) if rng.random() < 0.6 else draw.jitter_colour((190, 190, 195), rng)
    cv2.fillPoly(frame, [np.round(outer).astype(np.int32)], colour, cv2.LINE_AA)
    if rng.random() < 0.7 and grow_bot > 5:
        m = draw.fit_text(fonts[0], DEALERS[int(rng.integers(len(DEALERS)))], grow_bot * 0.6, w * 0.7)
        ink = (230, 230, 230) if sum(colour) < 300 else (30, 30, 30)
        bottom_mid = (q[2] + q[3]) / 2 + uy * grow_bot * 0.5
        draw.blend_mask(
            frame, m, int(bottom_mid[0] - m.shape[1] / 2), int(bottom_mid[1] - m.shape[0] / 2), ink
        )


# -- distractors -----------------------------------------------------------------------------------


def distractor(frame: np.ndarray, rng: np.random.Generator, box: Box) -> None:
    """A sign with text or numbers inside ``box``: not a plate (a road sign, a shop sign, a street name)."""
    fonts = available_fonts(TEXT_FONTS)
    font = fonts[int(rng.integers(len(fonts)))]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    w, h = x2 - x1, y2 - y1
    if w < 4 or h < 4:
        return
    kind = rng.integers(4)
    if kind == 0:  # round road sign with a number (speed limit)
        r = min(w, h) // 2
        c = (x1 + w // 2, y1 + h // 2)
        cv2.line(
            frame, (c[0], c[1]), (c[0], min(frame.shape[0] - 1, c[1] + r * 3)), (90, 90, 95), max(1, r // 6)
        )
        cv2.circle(frame, c, r, (240, 240, 240), -1, cv2.LINE_AA)
        cv2.circle(frame, c, r, (30, 30, 200), max(1, r // 5), cv2.LINE_AA)
        m = draw.fit_text(font, str(SPEED_LIMITS[int(rng.integers(len(SPEED_LIMITS)))]), r * 0.8, r * 1.3)
        draw.blend_mask(frame, m, c[0] - m.shape[1] // 2, c[1] - m.shape[0] // 2, (20, 20, 20))
        return
    bg = {
        1: [(120, 60, 0), (40, 110, 0), (255, 255, 255), (0, 200, 255)],
        2: [(30, 30, 30), (20, 20, 160), (200, 120, 20), (230, 230, 230), (0, 140, 255)],
        3: [(245, 245, 245), (30, 170, 230)],
    }[int(kind)]
    colour = draw.jitter_colour(bg[int(rng.integers(len(bg)))], rng)
    ink = (255, 255, 255) if sum(colour) < 400 else (20, 20, 20)
    cv2.rectangle(frame, (x1, y1), (x2, y2), colour, -1)
    if kind == 1:
        cv2.rectangle(
            frame,
            (x1 + max(1, h // 12), y1 + max(1, h // 12)),
            (x2 - max(1, h // 12), y2 - max(1, h // 12)),
            ink,
            max(1, h // 20),
        )
    words = [
        SIGN_WORDS[int(rng.integers(len(SIGN_WORDS)))] for _ in range(1 + int(kind == 1 and h > w * 0.5))
    ]
    if kind == 3:  # a bus number or a house number: digits that are not a plate
        words = [str(int(rng.integers(1, 999)))]
    for k, word in enumerate(words):
        m = draw.fit_text(font, word, h * (0.55 if len(words) == 1 else 0.32), w * 0.85)
        yy = y1 + (h - m.shape[0]) // 2 if len(words) == 1 else y1 + int(h * (0.12 + 0.46 * k))
        draw.blend_mask(frame, m, x1 + (w - m.shape[1]) // 2, yy, ink)
