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
    """The bank's first channel, contiguous (luminance noise)."""
    return np.ascontiguousarray(noise_bank()[..., 0])


def _noise_banks(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The colour and luminance banks, tiled when h x w does not fit in them."""
    bank, gray = noise_bank(), _gray_noise_bank()
    bh, bw = bank.shape[:2]
    if h > bh or w > bw:
        reps = (-(-h // bh), -(-w // bw))
        bank, gray = np.tile(bank, reps + (1,)), np.tile(gray, reps)
    return bank, gray


def noise_patch(h: int, w: int, rng: np.random.Generator, luminance: bool = False) -> np.ndarray:
    """An h x w view of the noise bank at a random place (luminance: its first channel only)."""
    bank, gray = _noise_banks(h, w)
    y, x = int(rng.integers(0, bank.shape[0] - h + 1)), int(rng.integers(0, bank.shape[1] - w + 1))
    return (gray if luminance else bank)[y:y + h, x:x + w]


def smooth_field(h: int, w: int, rng: np.random.Generator, cells: int = 3) -> np.ndarray:
    """A smooth random field in [0, 1] (lighting, dirt), upsampled from a few random cells."""
    small = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


# -- the plate's face ------------------------------------------------------------------------------

def wear_plate(rp, wear, rng: np.random.Generator) -> None:
    """Dirt, sun fading and glare on a rendered plate (in place)."""
    img = rp.image
    H, W = img.shape[:2]
    if wear.dirt and rng.random() < wear.dirt:
        amount = _uniform(rng, wear.dirt_amount)
        cells = max(3, int(rng.integers(3, 9)))
        field = cv2.resize(rng.random((cells, cells * 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
        a = np.clip((field - uniform(rng, 0.3, 0.7)) * 3.0, 0, 1) * amount
        if rng.random() < 0.5:  # grime gathers along the bottom edge
            a = np.maximum(a, np.linspace(0, 1, H, dtype=np.float32)[:, None] ** 4 * amount)
        dirt = np.array(draw.jitter_colour((50, 75, 95), rng, 0.2, 20), np.float32)
        img[:] = (img * (1 - a[..., None]) + dirt * a[..., None]).astype(np.uint8)
    if wear.fade and rng.random() < wear.fade:
        t = uniform(rng, 0.1, 0.35)
        img[:] = cv2.addWeighted(img, 1 - t, np.full_like(img, int(rng.integers(170, 230))), t, 0)
    if wear.glare and rng.random() < wear.glare:
        yy, xx = np.mgrid[0:max(2, H // 4), 0:max(2, W // 4)].astype(np.float32)
        cy, cx = uniform(rng, 0, yy.shape[0]), uniform(rng, 0, xx.shape[1])
        r = uniform(rng, 0.15, 0.5) * xx.shape[1]
        spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        spot = cv2.resize(spot, (W, H), interpolation=cv2.INTER_LINEAR) * uniform(rng, 60, 170)
        img[:] = np.clip(img + spot[..., None], 0, 255).astype(np.uint8)


# -- the camera ------------------------------------------------------------------------------------

def degrade(img: np.ndarray, rng: np.random.Generator, r: Knobs, sharpness: float = 1.0,
            window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Light, colour, optics, sensor and codec applied to a frame (a new uint8 BGR array).

    ``sharpness`` < 1 scales blur radii and resolution loss down (OCR crops of small plates: a plate
    blurred beyond reading teaches the OCR model nothing but noise).

    ``window`` = (x1, y1, x2, y2): only that part of the frame is wanted (an OCR crop needs only the
    region the runtime cuts) and only it is returned and computed; lighting, shadows and the contrast's
    mean still span the whole frame, as if it were degraded whole."""
    FH, FW = img.shape[:2]
    x1, y1, x2, y2 = window if window is not None else (0, 0, FW, FH)
    f = img[y1:y2, x1:x2].astype(np.float32)
    H, W = f.shape[:2]
    gain = None  # lighting x shadow over the whole frame, one multiplication
    if k := _on(r, "lighting", rng):
        s = _uniform(rng, k["strength"])
        gain = 1.0 + (smooth_field(FH, FW, rng, int(rng.integers(2, 5))) * 2 - 1) * s
    if k := _on(r, "shadow", rng):
        shadow = 1.0 - _uniform(rng, k["darkness"]) * _shadow_mask(FH, FW, rng)
        gain = shadow if gain is None else cv2.multiply(gain, shadow)
    if gain is not None:
        g1 = gain[y1:y2, x1:x2]
        f = cv2.multiply(f, cv2.merge([g1, g1, g1]))
    # the frame's channel means are a linear map of its means after lighting: colour maps below update it
    colour_map = np.eye(3)
    if k := _on(r, "colour_cast", rng):
        g = 1.0 + rng.uniform(-1, 1, 3) * _uniform(rng, k["strength"])
        f = cv2.multiply(f, (float(g[0]), float(g[1]), float(g[2]), 0.0))
        colour_map = g[:, None] * colour_map
    if k := _on(r, "ir_mono", rng):
        gray = cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)
        tints = k.get("tints") or [[1.0, 1.0, 1.0]]
        t = tints[int(rng.integers(len(tints)))]  # BGR gains
        f = cv2.merge([gray * float(t[0]), gray * float(t[1]), gray * float(t[2])])
        colour_map = np.outer(np.asarray(t, np.float64), _GRAY_BGR @ colour_map)
    if k := _on(r, "contrast", rng):
        a = _uniform(rng, k["factor"])
        if window is None:
            m = float(np.mean(cv2.mean(f)[:3]))
        else:  # pulled towards the whole frame's mean, not the window's
            m = float(np.mean(colour_map @ _lit_means(img, gain)))
        f = cv2.addWeighted(f, a, f, 0.0, m * (1 - a))
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
        small = cv2.resize(f, (max(2, int(W * sc)), max(2, int(H * sc))), interpolation=cv2.INTER_AREA)
        f = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    if k := _on(r, "noise", rng):
        sigma = _uniform(rng, k["sigma"])
        bank, gray = _noise_banks(H, W)
        y, x = int(rng.integers(0, bank.shape[0] - H + 1)), int(rng.integers(0, bank.shape[1] - W + 1))
        if rng.random() < 0.5:  # luminance noise only
            n = gray[y:y + H, x:x + W]
            n = cv2.merge([n, n, n])
        else:
            n = bank[y:y + H, x:x + W]  # a view: OpenCV reads it with its row stride, no copy
        f = cv2.scaleAdd(n, sigma, f)
    out = np.clip(f, 0, 255, out=f).astype(np.uint8)
    if k := _on(r, "gamma", rng):
        g = _uniform(rng, k["range"])
        lut = (np.linspace(0, 1, 256) ** g * 255).clip(0, 255).astype(np.uint8)
        out = cv2.LUT(out, lut)
    if k := _on(r, "jpeg", rng):
        q = int(rng.integers(k["quality"][0], k["quality"][1] + 1))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


_GRAY_BGR = np.array([0.114, 0.587, 0.299])
"""OpenCV's BGR -> gray weights."""


def _lit_means(img: np.ndarray, gain: np.ndarray | None) -> np.ndarray:
    """Per-channel means (B, G, R) of the whole frame ``img`` times the lighting ``gain``."""
    if gain is None:
        return np.array(cv2.mean(img)[:3])
    lit = cv2.multiply(img.astype(np.float32), cv2.merge([gain, gain, gain]))
    return np.array(cv2.mean(lit)[:3])


def _shadow_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged shadow (a building's or a tree's) across part of the frame, values in [0, 1]."""
    sh, sw = max(4, h // 8), max(4, w // 8)
    small = np.zeros((sh, sw), np.float32)
    n = int(rng.integers(3, 7))
    pts = np.stack([rng.uniform(-0.3, 1.3, n) * sw, rng.uniform(-0.3, 1.3, n) * sh], 1)
    hull = cv2.convexHull(pts.astype(np.float32)).astype(np.int32)
    cv2.fillPoly(small, [hull], 1.0)
    small = cv2.GaussianBlur(small, (0, 0), uniform(rng, 0.3, 1.5))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
