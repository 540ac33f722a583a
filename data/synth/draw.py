"""Small drawing helpers shared by plates, vehicles and signs (OpenCV and NumPy only)."""

from __future__ import annotations

import functools

import cv2
import numpy as np

Colour = tuple[int, int, int]


def blend_mask(
    img: np.ndarray, mask: np.ndarray, x: int, y: int, colour: Colour | np.ndarray, opacity: float = 1.0
) -> None:
    """Paint ``colour`` through the 8-bit coverage ``mask`` placed with its top-left at (x, y), in place.

    Parts outside ``img`` are clipped."""
    h, w = mask.shape[:2]
    H, W = img.shape[:2]
    x1, y1, x2, y2 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x2 <= x1 or y2 <= y1:
        return
    m = mask[y1 - y : y2 - y, x1 - x : x2 - x]
    if opacity != 1.0:
        m = cv2.convertScaleAbs(m, alpha=opacity)
    roi = img[y1:y2, x1:x2]
    roi[:] = alpha_blend(roi, m, colour)


def alpha_blend(under: np.ndarray, alpha: np.ndarray, over) -> np.ndarray:
    """under * (1 - alpha) + over * alpha for uint8 images, alpha an 8-bit single-channel mask and
    ``over`` an image or a BGR colour (OpenCV's saturating SIMD arithmetic: fast on small arrays)."""
    a3 = cv2.merge([alpha, alpha, alpha])
    keep = cv2.multiply(under, cv2.bitwise_not(a3), scale=1 / 255)
    if isinstance(over, np.ndarray) and over.ndim == 3:
        add = cv2.multiply(over, a3, scale=1 / 255)
    else:
        add = cv2.multiply(a3, (float(over[0]), float(over[1]), float(over[2]), 0.0), scale=1 / 255)
    return cv2.add(keep, add)


def paste_max(canvas: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Merge a coverage mask into a single-channel canvas at (x, y) (clipped), keeping the maximum."""
    h, w = mask.shape[:2]
    H, W = canvas.shape[:2]
    x1, y1, x2, y2 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x2 > x1 and y2 > y1:
        roi = canvas[y1:y2, x1:x2]
        cv2.max(
            roi, mask[y1 - y : y2 - y, x1 - x : x2 - x], dst=roi
        )  # in place: OpenCV writes through the view


def fit_mask(glyph, height: float, max_width: float) -> np.ndarray:
    """A string's mask (``Font.string``) scaled to ``height`` px (narrower when it would exceed
    ``max_width``)."""
    from data.synth.fonts import scaled_glyph

    mask = glyph.mask
    h = max(1, int(round(height)))
    w = max(1, int(round(mask.shape[1] * h / mask.shape[0])))
    if w > max_width:
        w = max(1, int(max_width))
    return scaled_glyph(glyph, w, h)


def fit_text(font, text: str, height: float, max_width: float) -> np.ndarray:
    """``text`` in ``font`` (a ``fonts.Font``) as a mask ``height`` px high (narrower when it would
    exceed ``max_width``), from the smaller master when that is large enough."""
    return fit_mask(font.string(text, height=height), height, max_width)


def rounded_rect_mask(w: int, h: int, r: float) -> np.ndarray:
    """uint8 mask (255 inside) of a w x h rectangle with corners of radius r (anti-aliased)."""
    mask = np.zeros((h, w), np.uint8)
    r = int(max(0, min(r, w / 2 - 1, h / 2 - 1)))
    if r < 1:
        mask[:] = 255
        return mask
    cv2.rectangle(mask, (r, 0), (w - 1 - r, h - 1), 255, -1)
    cv2.rectangle(mask, (0, r), (w - 1, h - 1 - r), 255, -1)
    for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
        cv2.circle(mask, (cx, cy), r, 255, -1, cv2.LINE_AA)
    return mask


def vertical_gradient(h: int, w: int, top: Colour, bottom: Colour) -> np.ndarray:
    """A new (writable) h x w BGR image fading from ``top`` to ``bottom``."""
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    col = (np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t).astype(np.uint8)
    return cv2.resize(col, (w, h), interpolation=cv2.INTER_NEAREST)  # one column converted, then repeated


def jitter_colour(colour: Colour, rng: np.random.Generator, amount: float = 0.06, shift: float = 8) -> Colour:
    """A colour as paint, print and ageing vary it: a gain on all channels and a shift on each."""
    gain = 1.0 + float(rng.normal(0, amount))
    return tuple(
        int(min(max(v * gain + n, 0.0), 255.0))  # type: ignore[return-value]
        for v, n in zip(colour, rng.normal(0, shift / 2, 3).tolist(), strict=False)
    )


def mix(a: Colour, b: Colour, t: float) -> Colour:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b, strict=False))  # type: ignore[return-value]


def random_colour(rng: np.random.Generator, lo: int = 0, hi: int = 255) -> Colour:
    return tuple(int(v) for v in rng.integers(lo, hi + 1, 3))  # type: ignore[return-value]


@functools.lru_cache(maxsize=256)
def parse_hex(value: str) -> Colour:
    """'#rrggbb' -> BGR (parsed once per value: bands and stars ask for theirs on every plate)."""
    from data.synth.style import parse_colour

    return parse_colour(value, "colour")
