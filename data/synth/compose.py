"""Put a rendered plate into a frame: a camera view of it (perspective), and its boxes after the warp.

Character boxes follow every geometric step exactly: each character's ink hull is mapped through the
same homography as the pixels and the box is the bounding box of the mapped points. A character
less than ``min_visible`` inside the frame (or behind an occluder) is dropped from the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from data.synth import draw
from data.synth.plate import RenderedPlate
from data.synth.rand import uniform
from runtime.records import Char, Plate


@dataclass
class Placed:
    plate: Plate
    """The plate in frame pixels: box = bounding box of its outline, visible chars only."""
    quad: np.ndarray
    """[4, 2] outline corners in frame pixels (TL, TR, BR, BL)."""
    dropped: int
    """Characters left out of the record (cut off by the frame edge or hidden)."""


def camera_quad(
    rng: np.random.Generator,
    width_px: float,
    aspect: float,
    centre: tuple[float, float],
    yaw_deg: float,
    pitch_deg: float,
    roll_deg: float,
) -> np.ndarray:
    """Corners of a plate ``width_px`` wide seen by a pinhole camera at a random angle.

    The plate is turned by yaw/pitch/roll (each uniform within +-limit, small angles more likely) at a
    random distance: near cameras exaggerate the perspective, far ones flatten it."""

    def angle(limit: float) -> float:
        return math.radians(limit * uniform(rng, -1, 1) * uniform(rng, 0.3, 1.0))

    y, p, r = angle(yaw_deg), angle(pitch_deg), angle(roll_deg)
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    # rows of R = Rz(roll) Ry(yaw) Rx(pitch), written out: four corners are too few for matrix calls
    r00, r01 = cr * cy, cr * sy * sp - sr * cp
    r10, r11 = sr * cy, sr * sy * sp + cr * cp
    r20, r21 = -sy, cy * sp
    dist = uniform(rng, 1.5, 8.0)  # in plate widths
    proj = []
    for u, v in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)):  # corners of a 1 x 1/aspect plate
        px, py = u, v / aspect
        depth = 1.0 + (r20 * px + r21 * py) / dist
        proj.append(((r00 * px + r01 * py) / depth, (r10 * px + r11 * py) / depth))
    xs = [q[0] for q in proj]
    k = width_px / max(max(xs) - min(xs), 1e-6)
    return np.array([[x * k + centre[0], y_ * k + centre[1]] for x, y_ in proj], np.float32)


def quad_box(quad: np.ndarray) -> tuple[float, float, float, float]:
    xs, ys = quad.T.tolist()  # four corners: Python's min/max beat four NumPy reductions
    return min(xs), min(ys), max(xs), max(ys)


def _char_boxes(
    points: np.ndarray, starts: list[int], m: np.ndarray
) -> tuple[list[list[float]], list[list[float]]]:
    """Every character's hull points through ``m`` in one call: each character's (x, y) minimum and
    maximum (its box) in frame pixels."""
    if not starts:
        return [], []
    pts = cv2.perspectiveTransform(points.reshape(-1, 1, 2), m).reshape(-1, 2)
    return np.minimum.reduceat(pts, starts).tolist(), np.maximum.reduceat(pts, starts).tolist()


def composite(
    frame: np.ndarray,
    rp: RenderedPlate,
    quad: np.ndarray,
    min_visible: float = 0.6,
    extra: dict | None = None,
) -> Placed | None:
    """Warp ``rp`` onto ``quad`` of ``frame`` (in place); None when no part of it lands in the frame."""
    Hf, Wf = frame.shape[:2]
    x1, y1, x2, y2 = quad_box(quad)
    bx1, by1 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
    bx2, by2 = min(Wf, int(np.ceil(x2)) + 1), min(Hf, int(np.ceil(y2)) + 1)
    if bx2 - bx1 < 2 or by2 - by1 < 2:
        return None
    ph, pw = rp.image.shape[:2]
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    full = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    bgra = cv2.cvtColor(rp.image, cv2.COLOR_BGR2BGRA)  # one resize and one warp for colour and outline
    cv2.insertChannel(rp.alpha, bgra, 3)
    (ax, ay), (bx, by) = quad[:2].tolist()
    target_w = max(2.0, math.hypot(bx - ax, by - ay))
    if target_w < pw * 0.6:  # shrink first: a perspective warp alone would alias a big reduction
        scale = target_w * 1.2 / pw
        bgra = cv2.resize(
            bgra,
            (max(2, int(round(pw * scale))), max(2, int(round(ph * scale)))),
            interpolation=cv2.INTER_AREA,
        )
    sh, sw = bgra.shape[:2]
    src_s = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float32)
    m = cv2.getPerspectiveTransform(src_s, (quad - np.array([bx1, by1], np.float32)).astype(np.float32))
    warped = cv2.warpPerspective(
        bgra, m, (bx2 - bx1, by2 - by1), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    roi = frame[by1:by2, bx1:bx2]
    roi[:] = draw.alpha_blend(roi, cv2.extractChannel(warped, 3), cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR))

    chars, dropped = [], 0
    lo, hi = _char_boxes(rp.hulls, rp.hull_starts, full)
    for ch, (cx1, cy1), (cx2, cy2) in zip(rp.plate.chars, lo, hi, strict=False):
        area = max(1e-6, (cx2 - cx1) * (cy2 - cy1))
        vx1, vy1, vx2, vy2 = max(cx1, 0.0), max(cy1, 0.0), min(cx2, float(Wf)), min(cy2, float(Hf))
        if vx2 <= vx1 or vy2 <= vy1 or (vx2 - vx1) * (vy2 - vy1) / area < min_visible:
            dropped += 1
            continue
        chars.append(Char(char=ch.char, box=(vx1, vy1, vx2, vy2), line=ch.line))
    box = (max(0.0, x1), max(0.0, y1), min(float(Wf), x2), min(float(Hf), y2))
    plate = Plate(box=box, text=rp.plate.text, chars=chars, lines=rp.plate.lines, extra=dict(extra or {}))
    return Placed(plate=plate, quad=quad, dropped=dropped)


def occlude(frame: np.ndarray, placed: Placed, rng: np.random.Generator, max_hidden: float = 0.4) -> None:
    """Something in front of the plate (a tow bar, a pole, a leaf, mud): characters more than
    ``max_hidden`` covered leave the record."""
    x1, y1, x2, y2 = placed.plate.box
    w, h = x2 - x1, y2 - y1
    if w < 4 or h < 4:
        return
    Hf, Wf = frame.shape[:2]
    mask = np.zeros((Hf, Wf), np.uint8)
    kind = rng.integers(3)
    if kind == 0:  # a vertical bar (tow bar, pole, bike rack)
        cx = uniform(rng, x1, x2)
        bw = uniform(rng, 0.05, 0.18) * w
        top = y1 - h if rng.random() < 0.5 else y1 + uniform(rng, 0.3, 0.7) * h
        cv2.rectangle(mask, (int(cx - bw / 2), int(top)), (int(cx + bw / 2), int(y2 + h)), 255, -1)
    elif kind == 1:  # a blob (leaf, mud, a sticker)
        c = (int(uniform(rng, x1, x2)), int(uniform(rng, y1, y2)))
        cv2.ellipse(
            mask,
            c,
            (int(uniform(rng, 0.05, 0.2) * w) + 1, int(uniform(rng, 0.2, 0.6) * h) + 1),
            uniform(rng, 0, 180),
            0,
            360,
            255,
            -1,
            cv2.LINE_AA,
        )
    else:  # the edge of something nearer (another car, a bumper), from one side
        from_left = rng.random() < 0.5
        edge = x1 + uniform(rng, 0.05, 0.3) * w if from_left else x2 - uniform(rng, 0.05, 0.3) * w
        xs = (0, int(edge)) if from_left else (int(edge), Wf)
        cv2.rectangle(mask, (xs[0], 0), (xs[1], Hf), 255, -1)
    colour = np.clip(np.array([rng.integers(10, 200)] * 3, np.float32) * rng.uniform(0.7, 1.3, 3), 0, 255)
    frame[:] = draw.alpha_blend(frame, mask, colour)
    keep = []
    for ch in placed.plate.chars:
        bx1, by1, bx2, by2 = (int(round(v)) for v in ch.box)
        cover = mask[by1 : max(by1 + 1, by2), bx1 : max(bx1 + 1, bx2)]
        if cover.size and float(cover.mean()) / 255.0 > max_hidden:
            placed.dropped += 1
            continue
        keep.append(ch)
    placed.plate.chars = keep
