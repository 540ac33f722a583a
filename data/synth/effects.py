"""What the world and the camera do to a plate: wear on its face, then light, optics, sensor and codec.

``realism`` knobs come from ``synth.realism`` in conf/data.yaml: each effect has a probability ``p``
and a range. Everything is OpenCV/NumPy on small arrays; sensor noise is cut from one pre-made bank
(so no per-pixel random draws in the hot path).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from data.synth import draw
from data.synth.rand import uniform

Knobs = Mapping[str, Any]


def _on(r: Knobs, name: str, rng: np.random.Generator) -> Knobs | None:
    k = r.get(name)
    if not k:
        return None
    return k if rng.random() < float(k.get("p", 0.0)) else None


def _uniform(rng: np.random.Generator, lo_hi) -> float:
    lo, hi = lo_hi
    return float(uniform(rng, lo, hi))


@functools.lru_cache(maxsize=1)
def noise_bank() -> np.ndarray:
    """Standard normal noise, made once per process from a fixed seed (same bytes everywhere)."""
    return np.random.default_rng(20240611).standard_normal((768, 1344, 3), dtype=np.float32)


@functools.lru_cache(maxsize=1)
def _gray_noise_bank() -> np.ndarray:
    """The bank's first channel repeated in all three (luminance noise, added without a merge)."""
    return cv2.merge([np.ascontiguousarray(noise_bank()[..., 0])] * 3)


def _noise_banks(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The colour and luminance banks, tiled when h x w does not fit in them."""
    bank, gray = noise_bank(), _gray_noise_bank()
    bh, bw = bank.shape[:2]
    if h > bh or w > bw:
        reps = (-(-h // bh), -(-w // bw))
        bank, gray = np.tile(bank, reps + (1,)), np.tile(gray, reps + (1,))
    return bank, gray


def smooth_field(
    h: int,
    w: int,
    rng: np.random.Generator,
    cells: int | tuple[int, int] = 3,
    lo: float = 0.0,
    hi: float = 1.0,
) -> np.ndarray:
    """A smooth random field in [lo, hi] (lighting, dirt), upsampled from a few random cells (``cells``
    per side, or (rows, columns)); the range is applied to the cells: interpolation is linear, so
    only the cells need the arithmetic."""
    shape = (cells, cells) if isinstance(cells, int) else cells
    small = (lo + (hi - lo) * rng.random(shape)).astype(np.float32)
    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(field, lo, hi, out=field)


# -- the plate's face ------------------------------------------------------------------------------


def wear_plate(rp, wear, rng: np.random.Generator) -> None:
    """Dirt, sun fading and glare on a rendered plate (in place)."""
    img = rp.image
    H, W = img.shape[:2]
    if wear.dirt and rng.random() < wear.dirt:
        amount = _uniform(rng, wear.dirt_amount)
        cells = max(3, int(rng.integers(3, 9)))
        # the dirt's cover is smooth: made at 1/4 size, then enlarged
        sh, sw = max(2, H // 4), max(2, W // 4)
        field = smooth_field(sh, sw, rng, (cells, cells * 3))
        a = np.clip((field - uniform(rng, 0.3, 0.7)) * 3.0, 0, 1) * amount
        if rng.random() < 0.5:  # grime gathers along the bottom edge
            a = np.maximum(a, np.linspace(0, 1, sh, dtype=np.float32)[:, None] ** 4 * amount)
        a = cv2.resize(a, (W, H), interpolation=cv2.INTER_LINEAR)
        dirt = draw.jitter_colour((50, 75, 95), rng, 0.2, 20)
        img[:] = draw.alpha_blend(img, cv2.convertScaleAbs(a, alpha=255.0), dirt)
    if wear.fade and rng.random() < wear.fade:
        t = uniform(rng, 0.1, 0.35)
        img[:] = cv2.addWeighted(img, 1 - t, img, 0.0, t * int(rng.integers(170, 230)))
    if wear.glare and rng.random() < wear.glare:
        yy, xx = np.mgrid[0 : max(2, H // 4), 0 : max(2, W // 4)].astype(np.float32)
        cy, cx = uniform(rng, 0, yy.shape[0]), uniform(rng, 0, xx.shape[1])
        r = uniform(rng, 0.15, 0.5) * xx.shape[1]
        spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)) * uniform(rng, 60, 170)
        spot = cv2.resize(spot, (W, H), interpolation=cv2.INTER_LINEAR)
        img[:] = cv2.add(img, cv2.merge([spot, spot, spot]), dtype=cv2.CV_8U)


# -- the camera ------------------------------------------------------------------------------------


def degrade(img: np.ndarray, rng: np.random.Generator, r: Knobs, sharpness: float = 1.0) -> np.ndarray:
    """Light, colour, optics, sensor and codec applied to a frame (a new uint8 BGR array).

    ``sharpness`` < 1 scales blur radii and resolution loss down (OCR crops of small plates: a plate
    blurred beyond reading teaches the OCR model nothing but noise)."""
    H, W = img.shape[:2]
    # lighting x shadow: smooth, so made on a grid 1/8 of the frame and enlarged once, in 3 channels
    gh, gw = max(4, H // 8), max(4, W // 8)
    gain = None
    if k := _on(r, "lighting", rng):
        s = _uniform(rng, k["strength"])
        gain = smooth_field(gh, gw, rng, int(rng.integers(2, 5)), 1.0 - s, 1.0 + s)
    if k := _on(r, "shadow", rng):
        shadow = _shadow_gain(gh, gw, rng, _uniform(rng, k["darkness"]))
        gain = shadow if gain is None else cv2.multiply(gain, shadow)
    if gain is None:
        f = img.astype(np.float32)
    else:
        gain = cv2.resize(cv2.merge([gain, gain, gain]), (W, H), interpolation=cv2.INTER_LINEAR)
        f = cv2.multiply(img, gain, dtype=cv2.CV_32F)
    # colour cast, IR monochrome and contrast are all linear in the pixel: one 3x4 affine map,
    # applied once (rows: output B, G, R; the last column an offset)
    colour = None
    if k := _on(r, "colour_cast", rng):
        g = 1.0 + rng.uniform(-1, 1, 3) * _uniform(rng, k["strength"])
        colour = np.diag(g)
    if k := _on(r, "ir_mono", rng):
        tints = k.get("tints") or [[1.0, 1.0, 1.0]]
        t = tints[int(rng.integers(len(tints)))]  # BGR gains of the grey image
        mono = np.outer(np.asarray(t, np.float64), _GRAY_BGR)
        colour = mono if colour is None else mono @ colour
    affine = None if colour is None else np.hstack([colour, np.zeros((3, 1))])
    if k := _on(r, "contrast", rng):
        a = _uniform(rng, k["factor"])
        means = np.array(cv2.mean(f)[:3])  # pulled towards the frame's mean after the colour map
        m = float(np.mean(means if colour is None else colour @ means))
        affine = np.hstack([a * (np.eye(3) if colour is None else colour), np.full((3, 1), m * (1 - a))])
    if affine is not None:
        f = cv2.transform(f, affine)
    if k := _on(r, "blur", rng):
        f = cv2.GaussianBlur(f, (0, 0), max(0.3, _uniform(rng, k["sigma"]) * sharpness))
    if k := _on(r, "motion_blur", rng):
        n = int(round(rng.integers(k["length"][0], k["length"][1] + 1) * sharpness))
        if n > 1:
            kernel = np.zeros((n, n), np.float32)
            kernel[n // 2, :] = 1.0 / n
            rot = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), uniform(rng, 0, 180), 1.0)
            kernel = cv2.warpAffine(kernel, rot, (n, n))
            f = cv2.filter2D(f, -1, kernel / max(kernel.sum(), 1e-6))
    if k := _on(r, "low_res", rng):
        sc = 1.0 - (1.0 - _uniform(rng, k["scale"])) * sharpness
        # a box filter as wide as a sensor pixel, sampled: the area average of INTER_AREA, whose
        # general (non-integer) path costs 5x more
        k = int(round(1.0 / sc))
        small = cv2.resize(
            cv2.blur(f, (k, k)) if k > 1 else f,
            (max(2, int(W * sc)), max(2, int(H * sc))),
            interpolation=cv2.INTER_LINEAR,
        )
        f = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    # back to 8 bits (rounded, saturated), with the sensor noise added on the way when there is some
    if k := _on(r, "noise", rng):
        sigma = _uniform(rng, k["sigma"])
        bank, gray = _noise_banks(H, W)
        y, x = int(rng.integers(0, bank.shape[0] - H + 1)), int(rng.integers(0, bank.shape[1] - W + 1))
        # luminance noise only, or in every channel (a view: OpenCV reads it with its row stride, no copy)
        n = (gray if rng.random() < 0.5 else bank)[y : y + H, x : x + W]
        out = cv2.addWeighted(n, sigma, f, 1.0, 0.0, dtype=cv2.CV_8U)
    else:
        out = cv2.add(f, 0.0, dtype=cv2.CV_8U)
    if k := _on(r, "gamma", rng):
        lut = np.power(_UNIT_LEVELS, _uniform(rng, k["range"]))
        out = cv2.LUT(out, np.multiply(lut, 255.0, out=lut).astype(np.uint8))
    if k := _on(r, "jpeg", rng):
        q = int(rng.integers(k["quality"][0], k["quality"][1] + 1))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


_GRAY_BGR = np.array([0.114, 0.587, 0.299])
"""OpenCV's BGR -> gray weights."""

_UNIT_LEVELS = np.linspace(0.0, 1.0, 256)
"""The 256 levels of a byte in [0, 1] (gamma tables)."""


def _shadow_gain(h: int, w: int, rng: np.random.Generator, darkness: float) -> np.ndarray:
    """h x w: 1 - darkness x a soft-edged shadow (a building's or a tree's) across part of the frame."""
    small = np.zeros((h, w), np.float32)
    n = int(rng.integers(3, 7))
    pts = np.stack([rng.uniform(-0.3, 1.3, n) * w, rng.uniform(-0.3, 1.3, n) * h], 1)
    hull = cv2.convexHull(pts.astype(np.float32)).astype(np.int32)
    cv2.fillPoly(small, [hull], 1.0)
    small = cv2.GaussianBlur(small, (0, 0), uniform(rng, 0.3, 1.5))
    return cv2.addWeighted(small, -darkness, small, 0.0, 1.0)
