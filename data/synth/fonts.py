"""TrueType fonts that a fresh install has, rendered once into glyph masks with exact ink boxes.

A font is named in a plate style as ``family[:variant][*condense]``:

* ``dejavu-sans:Bold``, ``dejavu-sans-mono:Bold``, ``dejavu-serif:Italic`` - matplotlib's DejaVu files.
* ``barlow-semi-condensed:SemiBold`` - any ``fontpkg-<family>`` package (pyproject.toml installs a few
  close to plate lettering); a numeric variant (``oswald:500``) sets the weight axis of a variable font.
* ``*0.8`` scales glyphs horizontally (a condensed cut of a font that has none).

Each character is rendered once per font at a master size (PIL, only here, never in the hot path),
cropped to its ink, and kept with the convex hull of that ink. Drawing a character is then a resize
of the mask, and its box is exact: the mask's extent, or after a perspective warp the bounding box of
the warped hull points (a projective map keeps convex hulls convex).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from data.errors import DataError

log = logging.getLogger(__name__)

MASTER_SIZE = 160
"""Font size (px) glyphs are rendered at once; plates draw them scaled down."""
SMALL_STRING_SIZE = 64
"""Font size (px) of the masters of strings drawn at most ``SMALL_STRING_HEIGHT`` px high (most
headers, captions and badges): a fifth of the pixels to render and crop for each new text."""
SMALL_STRING_HEIGHT = 38

_SPEC = re.compile(r"^(?P<family>[a-z0-9-]+)(?::(?P<variant>[A-Za-z0-9]+))?(?:\*(?P<condense>[0-9.]+))?$")
_DEJAVU = {
    "dejavu-sans": "DejaVuSans",
    "dejavu-sans-mono": "DejaVuSansMono",
    "dejavu-serif": "DejaVuSerif",
}


@dataclass(frozen=True)
class FontSpec:
    family: str
    variant: str | None
    condense: float

    @property
    def name(self) -> str:
        out = self.family + (f":{self.variant}" if self.variant else "")
        return out + (f"*{self.condense:g}" if self.condense != 1.0 else "")


def parse_font(spec: str) -> FontSpec:
    m = _SPEC.match(spec.strip())
    if not m:
        raise DataError(f"font {spec!r}: expected family[:variant][*condense], e.g. 'dejavu-sans:Bold*0.8'")
    condense = float(m["condense"]) if m["condense"] else 1.0
    if not 0.3 <= condense <= 1.5:
        raise DataError(f"font {spec!r}: condense {condense} outside 0.3..1.5")
    return FontSpec(m["family"], m["variant"], condense)


def _matplotlib_font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def font_file(spec: FontSpec) -> tuple[Path, int | None] | None:
    """(TrueType file, weight axis value for variable fonts) or None when the font is not installed."""
    if spec.family in _DEJAVU:
        base = _DEJAVU[spec.family]
        suffix = {None: "", "Regular": "", "Book": ""}.get(spec.variant, f"-{spec.variant}")
        path = _matplotlib_font_dir() / f"{base}{suffix}.ttf"
        return (path, None) if path.is_file() else None
    module = "fontpkg_" + spec.family.replace("-", "_")
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    files = Path(list(found.submodule_search_locations)[0]) / "files"
    variable = sorted(p for p in files.glob("*[[]wght[]].ttf") if "Italic" not in p.name)
    if spec.variant is None or spec.variant.isdigit():
        if variable:
            return variable[0], int(spec.variant) if spec.variant else None
        static = sorted(files.glob("*-Regular.ttf"))
        return (static[0], None) if static else None
    static = sorted(files.glob(f"*-{spec.variant}.ttf"))
    return (static[0], None) if static else None


@dataclass
class Glyph:
    """One character's ink: an 8-bit coverage mask cropped to the ink, and its convex hull."""

    mask: np.ndarray
    """uint8 coverage, shape (h, w), cropped to the ink."""
    hull: np.ndarray
    """float32 [N, 2] hull points in [0, 1] x [0, 1] of the mask (x right, y down)."""
    top: float
    """Ink top below the font's cap line, in cap heights (0 for capitals and digits)."""
    height: float
    """Ink height in cap heights (about 1 for capitals and digits)."""
    levels: list[np.ndarray] = field(default_factory=list)
    """The mask halved again and again (scaling starts from the smallest level still large enough)."""
    sized: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)
    """Masks already scaled to (width, height): plates repeat sizes, so each is resized once."""

    @property
    def aspect(self) -> float:
        return self.mask.shape[1] / self.mask.shape[0]


class Font:
    """A font's glyphs at the master size, rendered lazily and kept for the process' lifetime."""

    def __init__(self, spec: FontSpec, path: Path, weight: int | None):
        self.spec = spec
        self.path = path
        self.weight = weight
        self._pil = self._truetype(MASTER_SIZE)
        self._pil_small = None
        self._glyphs: dict[str, Glyph] = {}
        self._strings: dict[tuple[str, bool], Glyph] = {}
        _, top, bottom = self._ink("H")
        self.cap_top, self.cap_height = top, bottom - top

    def _truetype(self, size: int):
        from PIL import ImageFont

        pil = ImageFont.truetype(str(self.path), size)
        if self.weight is not None:
            try:
                pil.set_variation_by_axes([self.weight])
            except OSError as e:  # not a variable font after all
                raise DataError(f"font {self.spec.name}: {self.path} has no weight axis ({e})") from None
        return pil

    def _ink(self, text: str, pil=None) -> tuple[np.ndarray, int, int]:
        """``text``'s coverage cropped to its ink, and the ink's top and bottom below the text origin.

        FreeType's own mask (``getmask2``, what ``ImageDraw.text`` pastes) is cropped directly: the
        same pixels as drawing it on a padded canvas, without measuring the text first and without
        the canvas (a quarter of the cost of a string seen for the first time)."""
        from PIL import Image

        core, (ox, oy) = (pil or self._pil).getmask2(text, "L")
        arr = np.asarray(Image.Image()._new(core))
        pts = cv2.findNonZero((arr > 8).astype(np.uint8)) if arr.size else None
        if pts is None:
            raise DataError(f"font {self.spec.name} ({self.path.name}) has no ink for {text!r}")
        x, y, w, h = cv2.boundingRect(pts)
        return arr[y : y + h, x : x + w].copy(), oy + y, oy + y + h

    def glyph(self, char: str) -> Glyph:
        g = self._glyphs.get(char)
        if g is None:
            mask, y1, y2 = self._ink(char)
            if self.spec.condense != 1.0:
                w = max(1, round(mask.shape[1] * self.spec.condense))
                mask = cv2.resize(mask, (w, mask.shape[0]), interpolation=cv2.INTER_AREA)
            pts = cv2.findNonZero((mask > 40).astype(np.uint8))
            hull = cv2.convexHull(pts).reshape(-1, 2).astype(np.float32)
            hull[:, 0] = (hull[:, 0] + 0.5) / mask.shape[1]
            hull[:, 1] = (hull[:, 1] + 0.5) / mask.shape[0]
            g = Glyph(
                mask=mask,
                hull=np.clip(hull, 0, 1),
                top=(y1 - self.cap_top) / self.cap_height,
                height=(y2 - y1) / self.cap_height,
                levels=_pyramid(mask),
            )
            self._glyphs[char] = g
        return g

    def string(self, text: str, height: float | None = None) -> Glyph:
        """A whole string (header, caption, sign) as one ink-cropped mask; not read as characters.

        ``height``: the largest height it will be drawn at (a smaller master serves small ones)."""
        small = height is not None and height <= SMALL_STRING_HEIGHT
        g = self._strings.get((text, small))
        if g is None:
            if small and self._pil_small is None:
                self._pil_small = self._truetype(SMALL_STRING_SIZE)
            m, _, _ = self._ink(text, self._pil_small if small else self._pil)
            if self.spec.condense != 1.0:
                m = cv2.resize(
                    m,
                    (max(1, round(m.shape[1] * self.spec.condense)), m.shape[0]),
                    interpolation=cv2.INTER_AREA,
                )
            g = Glyph(mask=m, hull=np.zeros((0, 2), np.float32), top=0.0, height=1.0, levels=_pyramid(m))
            if len(self._strings) < 4096:
                self._strings[(text, small)] = g
        return g


_warned: set[str] = set()


@functools.cache
def load_font(spec: str) -> Font | None:
    """The font named by ``spec``, or None (logged once) when it is not installed."""
    parsed = parse_font(spec)
    found = font_file(parsed)
    if found is None:
        if spec not in _warned:
            _warned.add(spec)
            log.warning(
                "font %s is not installed (pip install fontpkg-%s); styles naming it use their other fonts",
                spec,
                parsed.family,
            )
        return None
    return Font(parsed, *found)


FALLBACK_FONT = "dejavu-sans:Bold*0.8"
"""matplotlib always ships DejaVu: the font of last resort."""


def available_fonts(specs: list[str]) -> list[Font]:
    """The installed fonts among ``specs`` (in order); the fallback font when none is."""
    fonts = [f for f in (load_font(s) for s in specs) if f is not None]
    if not fonts:
        fallback = load_font(FALLBACK_FONT)
        if fallback is None:
            raise DataError("matplotlib's DejaVu fonts are missing: cannot draw plates")
        fonts = [fallback]
    return fonts


def _pyramid(mask: np.ndarray) -> list[np.ndarray]:
    levels = [mask]
    while levels[-1].shape[0] >= 32 and levels[-1].shape[1] >= 8:
        m = levels[-1]
        levels.append(
            cv2.resize(m, ((m.shape[1] + 1) // 2, (m.shape[0] + 1) // 2), interpolation=cv2.INTER_AREA)
        )
    return levels


SIZED_CACHE = 2048
"""Scaled masks kept per glyph (then the cache starts again)."""


def scaled_glyph(glyph: Glyph, width: int, height: int) -> np.ndarray:
    """The glyph's mask at width x height, resized from the nearest pyramid level above that size."""
    width, height = max(1, width), max(1, height)
    key = (width, height)
    out = glyph.sized.get(key)
    if out is not None:
        return out
    src = glyph.mask
    for level in glyph.levels:
        if level.shape[0] >= height and level.shape[1] >= width:
            src = level
        else:
            break
    out = scaled_mask(src, width, height)
    if len(glyph.sized) >= SIZED_CACHE:
        glyph.sized.clear()
    glyph.sized[key] = out
    return out


def scaled_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A glyph or string mask resized to width x height (area filter when shrinking)."""
    width, height = max(1, width), max(1, height)
    if (width, height) == (mask.shape[1], mask.shape[0]):
        return mask
    shrink = width < mask.shape[1] and height < mask.shape[0]
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
