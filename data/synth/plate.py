"""Draw one plate of a style, flat and front-on, with an exact box for every character.

The plate is drawn at ``px_per_mm`` pixels per millimetre (1.0 = an EU plate 520 px wide). Each
character is its font's glyph mask scaled into place, so its box is the mask's extent (the ink), and
its convex hull goes along for warps (``RenderedPlate.hulls``). Headers, captions, band texts,
stickers and emblems are drawn but are not characters to read.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from data.errors import DataError
from data.synth import draw
from data.synth.effects import wear_plate
from data.synth.fonts import Font, available_fonts, scaled_glyph
from data.synth.rand import uniform
from data.synth.style import CONFUSABLE, Pattern, PlateStyle, Token, Variant, load_style, weighted_index
from runtime.records import ALPHABET, Char, Plate


@dataclass
class RenderedPlate:
    image: np.ndarray
    """BGR uint8, the plate's full rectangle (corners outside ``alpha`` are background colour)."""
    alpha: np.ndarray
    """uint8 coverage of the plate's outline (rounded corners)."""
    plate: Plate
    """box = the whole image, text, chars (plate pixels, reading order, ``line`` set), lines."""
    hulls: np.ndarray
    """float32 [N, 2]: every character's ink hull points in plate pixels, one character after the
    other (warp these, take each character's bbox)."""
    hull_starts: list[int]
    """Where each character's points begin in ``hulls``."""
    style: str
    variant: str
    font: str


@dataclass
class PlateWear:
    """Probabilities and strengths of what weather and age do to a plate's face."""

    dirt: float = 0.0
    dirt_amount: tuple[float, float] = (0.1, 0.5)
    fade: float = 0.0
    glare: float = 0.0
    screws: float = 1.0
    sticker: float = 1.0


@functools.lru_cache(maxsize=256)
def _outline(w: int, h: int, r: int) -> np.ndarray:
    return draw.rounded_rect_mask(w, h, r)


@functools.lru_cache(maxsize=64)
def _cell_width(font: Font) -> float:
    """Cell width of monospaced layouts in cap heights: a little over the median glyph (plate faces
    draw M and W narrow and centre 1 and I in a full cell)."""
    return float(np.median([font.glyph(c).aspect * font.glyph(c).height for c in ALPHABET])) * 1.08


def _choose_variant(style: PlateStyle, rng: np.random.Generator) -> Variant:
    return style.variants[weighted_index(rng, tuple(v.weight for v in style.variants))]


def _tokens_for(
    style: PlateStyle, text: str | None, rng: np.random.Generator, confusable_boost: float, confusables: str
) -> tuple[str, list[Token]]:
    if text is None:
        text, pattern = style.sample_text(rng, confusable_boost, confusables)
        return text, pattern.tokens
    bad = sorted({c for c in text if c not in ALPHABET})
    if not text or bad:
        raise DataError(f"plate text {text!r} must be 1+ characters of 0-9A-Z (bad: {bad})")
    pattern: Pattern | None = style.pattern_for(text)
    if pattern is not None:
        return text, pattern.tokens
    tokens = [Token("char", ALPHABET) for _ in text]
    if style.lines == 2 and len(text) > 1:  # no pattern fits: split a two-line plate's text in half
        tokens.insert((len(text) + 1) // 2, Token("newline"))
    return text, tokens


def _lines(tokens: list[Token]) -> list[list[Token]]:
    lines: list[list[Token]] = [[]]
    for t in tokens:
        if t.kind == "newline":
            lines.append([])
        else:
            lines[-1].append(t)
    return [line for line in lines if line]


def render(
    style: PlateStyle | str,
    text: str | None,
    rng: np.random.Generator,
    px_per_mm: float = 1.0,
    confusable_boost: float = 1.0,
    wear: PlateWear | None = None,
    confusables: str = CONFUSABLE,
) -> RenderedPlate:
    """Draw a plate of ``style`` reading ``text`` (random from the style's patterns when None)."""
    if isinstance(style, str):
        style = load_style(style)
    wear = wear or PlateWear()
    text, tokens = _tokens_for(style, text, rng, confusable_boost, confusables)
    variant = _choose_variant(style, rng)
    fonts = available_fonts(style.fonts)
    font = fonts[int(rng.integers(len(fonts)))]
    s = float(px_per_mm)
    W, H = max(8, int(round(style.size_mm[0] * s))), max(4, int(round(style.size_mm[1] * s)))
    # paint, print and ageing vary every colour a little (one draw for all of them)
    keys = [k for k, v in variant.colours.items() if v is not None]
    noise = rng.normal(0.0, 1.0, (len(keys), 4))
    col: dict = {k: None for k in variant.colours}
    jittered = (
        np.array([variant.colours[k] for k in keys], np.float64) * (1.0 + 0.06 * noise[:, :1])
        + 4.0 * noise[:, 1:]
    )
    for k, c in zip(keys, np.clip(jittered, 0, 255).astype(np.int64).tolist(), strict=False):
        col[k] = tuple(c)
    bg, fg = col["background"], col["text"]
    assert bg is not None and fg is not None

    if col.get("gradient"):
        img = draw.vertical_gradient(H, W, bg, col["gradient"])  # type: ignore[arg-type]
    else:
        img = np.empty((H, W, 3), np.uint8)
        cv2.rectangle(
            img, (0, 0), (W, H), bg, -1
        )  # OpenCV's fill: NumPy broadcasting a BGR triple is 20x slower
    if col.get("stripe"):
        for y1, y2 in style.stripes_mm:
            cv2.rectangle(img, (0, int(y1 * s)), (W, int(round(y2 * s)) - 1), col["stripe"], -1)
    if col.get("silhouette"):
        _silhouette(img, rng, col["silhouette"])  # type: ignore[arg-type]

    left = _band(img, style, col, rng, s, fonts)
    _header(img, style.header, col.get("header") or fg, rng, s, fonts)
    _header(img, style.caption, col.get("caption") or fg, rng, s, fonts)
    if style.stickers:
        _stickers(img, style.stickers, rng, s, fonts, wear.sticker)

    chars, hulls, hull_starts = _draw_text(img, style, tokens, text, font, fg, bg, rng, s, left)  # type: ignore[arg-type]

    if (
        style.border
        and col.get("border") is not None
        and rng.random() < float(style.border.get("probability", 1.0))
    ):
        t = max(1, int(round(float(style.border.get("width_mm", 2)) * s)))
        inset = int(round(float(style.border.get("inset_mm", 2)) * s))
        r = int(round(style.corner_radius_mm * s * 0.7))
        _rounded_border(img, inset, t, r, col["border"])  # type: ignore[arg-type]
    if style.screws and rng.random() < wear.screws * float(style.screws.get("probability", 1.0)):
        _screws(img, style.screws, rng, s, bg)
    alpha = _outline(W, H, int(round(style.corner_radius_mm * s)))
    plate = Plate(
        box=(0.0, 0.0, float(W), float(H)), text=text, chars=chars, lines=1 + max(c.line or 0 for c in chars)
    )
    rp = RenderedPlate(
        image=img,
        alpha=alpha,
        plate=plate,
        hulls=hulls,
        hull_starts=hull_starts,
        style=style.name,
        variant=variant.name,
        font=font.spec.name,
    )
    wear_plate(rp, wear, rng)
    return rp


def _draw_text(
    img: np.ndarray,
    style: PlateStyle,
    tokens: list[Token],
    text: str,
    font: Font,
    fg,
    bg,
    rng: np.random.Generator,
    s: float,
    left: float,
) -> tuple[list[Char], np.ndarray, list[int]]:
    W = img.shape[1]
    lay = style.text
    chars: list[Char] = []
    hulls: list[np.ndarray] = []  # each character's glyph hull (unit square) and where it went
    hull_boxes: list[tuple[int, int, int, int]] = []
    k = 0
    H = img.shape[0]
    ink = np.zeros((H, W), np.uint8)  # all the text's coverage, blended once at the end
    alias = lay.same_glyph if lay.same_glyph and rng.random() < lay.same_glyph_p else {}
    glyphs = [font.glyph(alias.get(c, c)) for c in text]  # labelled as text[k] whatever the shape
    for li, line in enumerate(_lines(tokens)):
        cap = lay.height_mm[li] * s
        cell = _cell_width(font) * cap if lay.monospace else 0.0
        widths = []
        j = k  # the next character's index in text
        for t in line:
            if t.kind == "char":
                g = glyphs[j]
                j += 1
                natural = g.aspect * min(max(g.height, 0.92), 1.08) * cap
                widths.append(("char", max(cell, min(natural, cell * 1.12)) if cell else natural))
            else:
                widths.append(
                    (
                        t.kind,
                        {
                            "dash": 0.32 * cap,
                            "dot": 0.16 * cap,
                            "gap": lay.gap_mm * s,
                            "emblem": {"seals": 0.45, "inspection": 0.5}.get(style.emblem or "", 0.8) * cap,
                            "glyph": 0.85 * cap,
                        }[t.kind],
                    )
                )
        spacing = lay.spacing_mm * s * uniform(rng, 0.85, 1.15)
        total = sum(w for _, w in widths) + spacing * (len(widths) - 1)
        avail = W - left - 2 * lay.margin_mm * s
        # in steps of 1/64: glyph sizes then repeat and their scaled masks come from the cache
        squeeze = math.floor(64 * min(1.0, avail / total)) / 64 if total > 0 else 1.0
        slack = max(0.0, avail - total * squeeze)
        x = left + lay.margin_mm * s + slack / 2 + uniform(rng, -0.3, 0.3) * slack / 2
        y_top = lay.y_mm[li] * s - cap / 2 + uniform(rng, -0.02, 0.02) * cap
        for kind, w in widths[: len(line)]:
            w *= squeeze
            if kind == "char":
                g = glyphs[k]
                # plate faces have no descenders: every character stands between cap line and baseline
                gh = cap * min(max(g.height, 0.92), 1.08)
                gw = min(g.aspect * gh * squeeze, w)
                mw, mh = max(1, int(round(gw))), max(1, int(round(gh)))
                mx = int(round(x + (w - gw) / 2))
                my = min(max(0, int(round(y_top + min(max(g.top, -0.04), 0.04) * cap))), H - mh)
                draw.paste_max(ink, scaled_glyph(g, mw, mh), mx, my)
                chars.append(
                    Char(char=text[k], box=(float(mx), float(my), float(mx + mw), float(my + mh)), line=li)
                )
                hulls.append(g.hull)
                hull_boxes.append((mw, mh, mx, my))
                k += 1
            elif kind in ("dash", "dot"):
                cy = y_top + cap * 0.5
                hh = cap * (0.09 if kind == "dash" else 0.13) / 2
                cv2.rectangle(
                    ink,
                    (int(round(x + w * 0.1)), int(round(cy - hh))),
                    (int(round(x + w * 0.9)), int(round(cy + hh))),
                    255,
                    -1,
                    cv2.LINE_AA,
                )
            elif kind == "emblem":
                _emblem(img, ink, style.emblem, x, y_top, w, cap, rng)
            elif kind == "glyph":
                _pseudo_glyph(ink, x, y_top, w, cap, rng)
            x += w + spacing * squeeze
    if lay.emboss:  # pressed metal: shadow below-right, highlight above-left of the raised ink
        d = max(1, int(round(0.02 * lay.height_mm[0] * s)))
        draw.blend_mask(img, ink, d, d, draw.mix(bg, (0, 0, 0), 0.55), 0.45)
        draw.blend_mask(img, ink, -d, -d, draw.mix(bg, (255, 255, 255), 0.6), 0.3)
    draw.blend_mask(img, ink, 0, 0, fg)
    # every hull scaled and moved into place in one go (a few NumPy calls per plate, not per character)
    counts = [len(h) for h in hulls]
    place = np.repeat(np.array(hull_boxes, np.float32), counts, axis=0)
    points = np.concatenate(hulls) * place[:, :2] + place[:, 2:]
    return chars, points, [0, *itertools.accumulate(counts[:-1])]


def _band(img, style: PlateStyle, col, rng, s: float, fonts: list[Font]) -> float:
    """Draw the band (EU blue strip, Mercosur top bar); returns the width it takes on the left."""
    b = style.band
    if not b or rng.random() >= float(b.get("probability", 1.0)):
        return 0.0
    H, W = img.shape[:2]
    colour = col.get("band") or draw.jitter_colour(draw.parse_hex(b.get("colour", "#003399")), rng)
    text_colour = col.get("band_text") or draw.parse_hex(b.get("text_colour", "#ffffff"))
    size = float(b.get("size_mm", 40)) * s
    texts = b.get("texts") or []
    font = fonts[0]
    if b.get("side", "left") == "left":
        bw = int(round(size))
        cv2.rectangle(img, (0, 0), (bw - 1, H - 1), colour, -1)
        if b.get("stars", False):
            cx, cy, r = bw / 2, H * 0.33, bw * 0.28
            star = draw.parse_hex(b.get("star_colour", "#ffcc00"))
            rs = max(1, int(round(bw * 0.045)))
            for i in range(12):
                a = 2 * math.pi * i / 12  # math's cos/sin: the same doubles as NumPy's, a ufunc call cheaper
                cv2.circle(
                    img,
                    (int(round(cx + r * math.cos(a))), int(round(cy + r * math.sin(a)))),
                    rs,
                    star,
                    -1,
                    cv2.LINE_AA,
                )
        if texts:
            m = draw.fit_text(font, str(texts[int(rng.integers(len(texts)))]), H * 0.26, bw * 0.8)
            draw.blend_mask(img, m, int(round((bw - m.shape[1]) / 2)), int(round(H * 0.62)), text_colour)
        return float(bw)
    bh = int(round(size))
    cv2.rectangle(img, (0, 0), (W - 1, bh - 1), colour, -1)
    if texts:
        m = draw.fit_text(font, str(texts[int(rng.integers(len(texts)))]), bh * 0.6, W * 0.5)
        draw.blend_mask(img, m, int(round((W - m.shape[1]) / 2)), int(round(bh * 0.2)), text_colour)
    if b.get("flag", False):  # a small flag at the right, an emblem at the left of the bar
        fw, fh = int(bh * 1.1), int(bh * 0.7)
        x0, y0 = W - fw - int(bh * 0.5), int(bh * 0.15)
        cv2.rectangle(img, (x0, y0), (x0 + fw, y0 + fh), (60, 150, 0), -1)
        cv2.fillPoly(
            img,
            [
                np.array(
                    [
                        [x0 + fw // 2, y0 + 1],
                        [x0 + fw - 2, y0 + fh // 2],
                        [x0 + fw // 2, y0 + fh - 1],
                        [x0 + 2, y0 + fh // 2],
                    ],
                    np.int32,
                )
            ],
            (0, 220, 250),
            cv2.LINE_AA,
        )
        cv2.circle(img, (x0 + fw // 2, y0 + fh // 2), max(1, fh // 4), (140, 50, 20), -1, cv2.LINE_AA)
        cv2.circle(
            img,
            (int(bh * 0.9), bh // 2),
            max(1, int(bh * 0.3)),
            text_colour,
            max(1, int(bh * 0.06)),
            cv2.LINE_AA,
        )
    return 0.0


def _header(img, spec, colour, rng, s: float, fonts: list[Font]) -> None:
    if not spec or rng.random() >= float(spec.get("probability", 1.0)):
        return
    texts = spec.get("texts") or []
    if not texts:
        return
    hfonts = available_fonts(list(spec["fonts"])) if spec.get("fonts") else fonts
    font = hfonts[int(rng.integers(len(hfonts)))]
    H, W = img.shape[:2]
    h = float(spec.get("height_mm", 10)) * s * uniform(rng, 0.9, 1.1)
    m = draw.fit_text(
        font, str(texts[int(rng.integers(len(texts)))]), h, W * float(spec.get("max_width", 0.8))
    )
    cx = float(spec["x_mm"]) * s if spec.get("x_mm") is not None else W / 2
    cy = float(spec.get("y_mm", 10)) * s
    draw.blend_mask(img, m, int(round(cx - m.shape[1] / 2)), int(round(cy - m.shape[0] / 2)), colour)


def _stickers(img, spec, rng, s: float, fonts: list[Font], scale_p: float) -> None:
    size = spec.get("size_mm", [40, 25])
    for x, y in spec.get("positions_mm", []):
        if rng.random() >= float(spec.get("probability", 0.5)) * scale_p:
            continue
        w, h = int(round(size[0] * s)), int(round(size[1] * s))
        x1, y1 = int(round(x * s - w / 2)), int(round(y * s - h / 2))
        colour = draw.random_colour(rng, 20, 235)
        cv2.rectangle(img, (x1, y1), (x1 + w, y1 + h), colour, -1)
        texts = spec.get("texts") or []
        if texts and h >= 6:
            ink = (255, 255, 255) if sum(colour) < 380 else (20, 20, 20)
            m = draw.fit_text(fonts[0], str(texts[int(rng.integers(len(texts)))]), h * 0.6, w * 0.85)
            draw.blend_mask(img, m, x1 + (w - m.shape[1]) // 2, y1 + (h - m.shape[0]) // 2, ink)


def _rounded_border(img, inset: int, t: int, r: int, colour) -> None:
    H, W = img.shape[:2]
    x1, y1, x2, y2 = inset + t // 2, inset + t // 2, W - 1 - inset - t // 2, H - 1 - inset - t // 2
    r = max(0, min(r, (x2 - x1) // 2, (y2 - y1) // 2))
    if r < 2:
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, t, cv2.LINE_AA)
        return
    cv2.line(img, (x1 + r, y1), (x2 - r, y1), colour, t, cv2.LINE_AA)
    cv2.line(img, (x1 + r, y2), (x2 - r, y2), colour, t, cv2.LINE_AA)
    cv2.line(img, (x1, y1 + r), (x1, y2 - r), colour, t, cv2.LINE_AA)
    cv2.line(img, (x2, y1 + r), (x2, y2 - r), colour, t, cv2.LINE_AA)
    for (cx, cy), a in (
        ((x1 + r, y1 + r), 180),
        ((x2 - r, y1 + r), 270),
        ((x2 - r, y2 - r), 0),
        ((x1 + r, y2 - r), 90),
    ):
        cv2.ellipse(img, (cx, cy), (r, r), a, 0, 90, colour, t, cv2.LINE_AA)


def _screws(img, spec, rng, s: float, bg) -> None:
    r = max(1, int(round(float(spec.get("radius_mm", 5)) * s)))
    metal = draw.jitter_colour((170, 170, 175), rng, 0.15)
    for x, y in spec.get("positions_mm", []):
        c = (int(round(x * s + rng.normal(0, 1.5 * s))), int(round(y * s + rng.normal(0, 1.5 * s))))
        cv2.circle(img, c, r, metal, -1, cv2.LINE_AA)
        cv2.circle(img, c, r, draw.mix(metal, (0, 0, 0), 0.5), max(1, r // 4), cv2.LINE_AA)
        if r >= 3:
            a = uniform(rng, 0, np.pi)
            dx, dy = int(round(np.cos(a) * r * 0.7)), int(round(np.sin(a) * r * 0.7))
            cv2.line(
                img,
                (c[0] - dx, c[1] - dy),
                (c[0] + dx, c[1] + dy),
                draw.mix(metal, (0, 0, 0), 0.6),
                max(1, r // 4),
                cv2.LINE_AA,
            )


def _emblem(img, ink, kind: str | None, x: float, y: float, w: float, cap: float, rng) -> None:
    cx = int(round(x + w / 2))
    if kind == "seals":  # two round stickers stacked (German registration seals)
        r = max(1, int(round(w * 0.45)))
        top = draw.random_colour(rng, 40, 230)
        cv2.circle(img, (cx, int(round(y + cap * 0.25))), r, top, -1, cv2.LINE_AA)
        cv2.circle(
            img,
            (cx, int(round(y + cap * 0.75))),
            r,
            draw.jitter_colour((200, 200, 200), rng, 0.1),
            -1,
            cv2.LINE_AA,
        )
        cv2.circle(img, (cx, int(round(y + cap * 0.75))), max(1, r // 2), (60, 60, 60), 1, cv2.LINE_AA)
    elif kind == "inspection":  # a Swedish-style inspection sticker between the groups
        _inspection_sticker(img, x, y, w, cap, rng)
    elif kind == "arms":  # a coat of arms between the groups (SK, HR, AT, CH): colour, never ink
        _arms(img, x, y, w, cap, rng)
    elif kind == "state":  # a state's outline or a logo between the groups
        n = int(rng.integers(5, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.3, 0.5, n)
        pts = np.stack([cx + np.cos(ang) * rad * w, y + cap / 2 + np.sin(ang) * rad * cap], 1)
        cv2.fillPoly(ink, [np.round(pts).astype(np.int32)], 255, cv2.LINE_AA)
    else:
        cv2.circle(ink, (cx, int(round(y + cap / 2))), max(1, int(round(w * 0.2))), 255, -1, cv2.LINE_AA)


_STICKER_COLOURS = (
    (60, 170, 60),
    (40, 40, 210),
    (200, 120, 30),
    (30, 170, 240),
    (200, 200, 200),
    (150, 60, 150),
)


def _inspection_sticker(img, x: float, y: float, w: float, cap: float, rng) -> None:
    """An upright coloured sticker with a small number in it (the month of the next inspection), or
    an empty white frame where it was peeled off. Drawn in colour on the plate, never ink: the OCR
    model must learn that the digit in it is not a character of the plate (read as 8, 0 or B)."""
    sw, sh = w * uniform(rng, 0.7, 0.95), cap * uniform(rng, 0.5, 0.75)
    x0, y0 = x + (w - sw) / 2, y + (cap - sh) / 2 + uniform(rng, -0.08, 0.08) * cap
    if sw < 3 or sh < 4:
        return
    p1 = (int(round(x0)), int(round(y0)))
    p2 = (int(round(x0 + sw)), int(round(y0 + sh)))
    if rng.random() < 0.2:  # the sticker is gone: its frame is left
        cv2.rectangle(img, p1, p2, draw.jitter_colour((235, 235, 235), rng, 0.05), -1, cv2.LINE_AA)
        cv2.rectangle(img, p1, p2, draw.jitter_colour((90, 90, 200), rng, 0.2), max(1, int(sw * 0.08)))
        return
    colour = draw.jitter_colour(_STICKER_COLOURS[int(rng.integers(len(_STICKER_COLOURS)))], rng, 0.1)
    cv2.rectangle(img, p1, p2, colour, -1, cv2.LINE_AA)
    scale = sh / 60.0
    if scale > 0.1:
        text = str(int(rng.integers(1, 13)))
        thick = max(1, int(round(scale * 2)))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        org = (int(round(x0 + (sw - tw) / 2)), int(round(y0 + (sh + th) / 2)))
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (25, 25, 25), thick, cv2.LINE_AA)


_ARMS_RED, _ARMS_WHITE, _ARMS_BLUE = (40, 30, 200), (240, 240, 240), (150, 60, 20)


def _arms(img, x: float, y: float, w: float, cap: float, rng) -> None:
    """A heraldic shield (flat top, pointed foot) with one of a few national designs: a red field
    with a white cross or double cross, red-white checks, or red-white-red bars. Drawn in colour on
    the plate, so it is never part of the character ink."""
    sw, sh = w * 0.9, cap * 0.82
    x0, y0 = x + (w - sw) / 2, y + (cap - sh) / 2
    if sw < 3 or sh < 4:
        return
    outline = np.array(
        [[x0, y0], [x0 + sw, y0], [x0 + sw, y0 + sh * 0.62], [x0 + sw / 2, y0 + sh], [x0, y0 + sh * 0.62]]
    )
    H, W = img.shape[:2]
    mask = np.zeros((H, W), np.uint8)
    cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 255, cv2.LINE_AA)
    design = int(rng.integers(4))
    field = np.zeros_like(img)
    field[:] = _ARMS_RED
    i = lambda v: int(round(v))  # noqa: E731
    t = max(1, i(sw * 0.14))
    if design == 0:  # white cross (CH)
        cv2.rectangle(
            field,
            (i(x0 + sw / 2 - t / 2), i(y0 + sh * 0.15)),
            (i(x0 + sw / 2 + t / 2), i(y0 + sh * 0.75)),
            _ARMS_WHITE,
            -1,
        )
        cv2.rectangle(
            field,
            (i(x0 + sw * 0.2), i(y0 + sh * 0.38)),
            (i(x0 + sw * 0.8), i(y0 + sh * 0.38 + t)),
            _ARMS_WHITE,
            -1,
        )
    elif design == 1:  # white double cross over blue hills (SK)
        cv2.rectangle(
            field,
            (i(x0 + sw / 2 - t / 2), i(y0 + sh * 0.1)),
            (i(x0 + sw / 2 + t / 2), i(y0 + sh * 0.7)),
            _ARMS_WHITE,
            -1,
        )
        for fy, fw in ((0.25, 0.25), (0.45, 0.35)):
            cv2.rectangle(
                field,
                (i(x0 + sw * (0.5 - fw)), i(y0 + sh * fy)),
                (i(x0 + sw * (0.5 + fw)), i(y0 + sh * fy + t * 0.8)),
                _ARMS_WHITE,
                -1,
            )
        cv2.ellipse(
            field,
            (i(x0 + sw / 2), i(y0 + sh * 0.85)),
            (i(sw * 0.45), i(sh * 0.2)),
            0,
            180,
            360,
            _ARMS_BLUE,
            -1,
        )
    elif design == 2:  # red and white checks (HR)
        n = 5
        for r in range(n):
            for c in range(n):
                if (r + c) % 2:
                    cv2.rectangle(
                        field,
                        (i(x0 + c * sw / n), i(y0 + r * sh / n)),
                        (i(x0 + (c + 1) * sw / n), i(y0 + (r + 1) * sh / n)),
                        _ARMS_WHITE,
                        -1,
                    )
    else:  # red-white-red bars (AT)
        cv2.rectangle(field, (i(x0), i(y0 + sh / 3)), (i(x0 + sw), i(y0 + sh * 0.62)), _ARMS_WHITE, -1)
    img[:] = draw.alpha_blend(img, mask, field)
    cv2.polylines(
        img, [np.round(outline).astype(np.int32)], True, (60, 60, 60), max(1, i(sw * 0.04)), cv2.LINE_AA
    )


def _pseudo_glyph(ink, x: float, y: float, w: float, cap: float, rng) -> None:
    """A stroke glyph that is not a Latin character (the Chinese province character's place)."""
    t = max(1, int(round(cap * 0.06)))
    for _ in range(int(rng.integers(4, 7))):
        if rng.random() < 0.5:
            yy = y + uniform(rng, 0.05, 0.95) * cap
            a, b = x + uniform(rng, 0, 0.4) * w, x + uniform(rng, 0.6, 1.0) * w
            p1, p2 = (a, yy), (b, yy + rng.normal(0, 0.03) * cap)
        else:
            xx = x + uniform(rng, 0.1, 0.9) * w
            p1, p2 = (
                (xx, y + uniform(rng, 0, 0.4) * cap),
                (xx + rng.normal(0, 0.1) * w, y + uniform(rng, 0.6, 1) * cap),
            )
        cv2.line(ink, tuple(int(round(v)) for v in p1), tuple(int(round(v)) for v in p2), 255, t, cv2.LINE_AA)


def _silhouette(img, rng, colour) -> None:
    """Scenic US plates: hills or a skyline across the lower part."""
    H, W = img.shape[:2]
    n = int(rng.integers(4, 9))
    xs = np.linspace(0, W, n)
    ys = H * rng.uniform(0.55, 0.85, n)
    pts = np.concatenate([np.stack([xs, ys], 1), [[W, H], [0, H]]])
    overlay = img.copy()
    cv2.fillPoly(overlay, [np.round(pts).astype(np.int32)], colour, cv2.LINE_AA)
    cv2.addWeighted(overlay, 0.55, img, 0.45, 0, dst=img)
