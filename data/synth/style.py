"""Plate styles: one YAML file per style in conf/plate_style/ (copy one to add a region).

A style says how a plate of a region looks (size, colours, band, border, header and caption texts
that are not read, screws, stickers), what its text looks like (patterns of letters and digits with
separators, one or two lines) and which fonts draw it. See conf/plate_style/eu.yaml for every key.

Patterns: ``L`` a letter, ``D`` a digit, ``A`` a letter or digit, ``[XYZ]`` one of these characters
(a fixed character: ``[B]``), ``-`` a dash and ``.`` a dot drawn between characters, a space for a
gap, ``~`` the style's emblem (seal stickers, a state shape), ``#`` a glyph that is not read (e.g.
the Chinese province character), ``|`` the next line. Only L, D, A and [..] are characters to read.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from data.errors import DataError
from runtime.records import ALPHABET

STYLE_DIR = Path(__file__).resolve().parents[2] / "conf" / "plate_style"
LETTERS = ALPHABET[10:]
DIGITS = ALPHABET[:10]
CONFUSABLE = "O0QDI1B8S5Z2"
"""Look-alikes the OCR model must tell apart from the glyph alone (the default of the
``synth.confusables`` setting: O/0/Q/D on worn faces, I/1, B/8, S/5, Z/2)."""

_TOKEN = re.compile(r"\[[^\]]+\]|[LDA\-. ~#|]")


@dataclass(frozen=True)
class Token:
    kind: str
    """'char' (read), 'dash', 'dot', 'gap', 'emblem', 'glyph' (drawn, not read), 'newline'."""
    choices: str = ""


@dataclass
class Pattern:
    source: str
    weight: float
    tokens: list[Token]

    @property
    def n_chars(self) -> int:
        return sum(t.kind == "char" for t in self.tokens)

    @property
    def n_lines(self) -> int:
        return 1 + sum(t.kind == "newline" for t in self.tokens)

    def accepts(self, text: str) -> bool:
        slots = [t for t in self.tokens if t.kind == "char"]
        return len(slots) == len(text) and all(c in t.choices for c, t in zip(text, slots, strict=False))


def parse_pattern(source: str, letters: str, digits: str, where: str) -> list[Token]:
    pos, tokens = 0, []
    for m in _TOKEN.finditer(source):
        if m.start() != pos:
            raise DataError(
                f"{where}: pattern {source!r} has an unknown symbol at {pos}: {source[pos : m.start()]!r}"
            )
        pos = m.end()
        s = m.group()
        if s.startswith("["):
            choices = s[1:-1]
            bad = [c for c in choices if c not in ALPHABET]
            if bad:
                raise DataError(f"{where}: pattern {source!r}: {bad} in {s} are not in 0-9A-Z")
            tokens.append(Token("char", choices))
        else:
            tokens.append(
                {
                    "L": Token("char", letters),
                    "D": Token("char", digits),
                    "A": Token("char", letters + digits),
                    "-": Token("dash"),
                    ".": Token("dot"),
                    " ": Token("gap"),
                    "~": Token("emblem"),
                    "#": Token("glyph"),
                    "|": Token("newline"),
                }[s]
            )
    if pos != len(source):
        raise DataError(f"{where}: pattern {source!r} has an unknown symbol at {pos}: {source[pos:]!r}")
    if not any(t.kind == "char" for t in tokens):
        raise DataError(f"{where}: pattern {source!r} has no character to read (L, D, A or [..])")
    return tokens


def parse_colour(value: Any, where: str) -> tuple[int, int, int]:
    """'#rrggbb' -> BGR (OpenCV order)."""
    if not isinstance(value, str) or not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise DataError(f"{where}: colour must be '#rrggbb', got {value!r}")
    r, g, b = int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
    return (b, g, r)


@dataclass
class TextLayout:
    height_mm: list[float]
    """Cap height per line."""
    y_mm: list[float]
    """Centre of each line, from the plate's top."""
    spacing_mm: float
    gap_mm: float
    margin_mm: float
    monospace: bool
    emboss: bool
    same_glyph: dict[str, str] = field(default_factory=dict)
    """Characters the region's face draws with another character's shape (e.g. the old Brazilian
    face's 1 is a bare bar like its I): drawn so, labelled as themselves."""
    same_glyph_p: float = 0.0
    """Share of plates drawn with ``same_glyph`` (the rest in the font's own shapes)."""


def _same_glyph(spec: Any, source: str) -> dict[str, Any]:
    """``text.same_glyph: {as: {"1": "I"}, probability: P}`` -> TextLayout's two fields."""
    if spec is None:
        return {}
    where = f"{source}: text.same_glyph"
    shape_ok = isinstance(spec, dict) and isinstance(spec.get("as"), dict)
    if not shape_ok or set(spec) - {"as", "probability"}:
        raise DataError(f"{where}: needs {{as: {{CHAR: CHAR, ...}}, probability: P}}, got {spec!r}")
    pairs = {str(k): str(v) for k, v in spec["as"].items()}
    bad = [f"{k}->{v}" for k, v in pairs.items() if not (len(k) == len(v) == 1 and {k, v} <= set(ALPHABET))]
    if bad:
        raise DataError(f"{where}: each pair maps one character of 0-9A-Z to another, got {bad}")
    p = float(spec.get("probability", 1.0))
    if not 0.0 <= p <= 1.0:
        raise DataError(f"{where}.probability must be within [0, 1], got {p}")
    return {"same_glyph": pairs, "same_glyph_p": p}


@dataclass
class Variant:
    """One colour scheme of a style."""

    name: str
    weight: float
    colours: dict[str, tuple[int, int, int] | None]
    """background, text (required); gradient, border, band, band_text, header, caption, silhouette, stripe."""


@dataclass
class PlateStyle:
    name: str
    region: str | None
    weight: float
    size_mm: tuple[float, float]
    corner_radius_mm: float
    patterns: list[Pattern]
    letters: str
    digits: str
    text: TextLayout
    fonts: list[str]
    variants: list[Variant]
    band: dict[str, Any] | None = None
    border: dict[str, Any] | None = None
    header: dict[str, Any] | None = None
    caption: dict[str, Any] | None = None
    emblem: str | None = None
    screws: dict[str, Any] | None = None
    stickers: dict[str, Any] | None = None
    stripes_mm: list[list[float]] = field(default_factory=list)
    """Rows [y1, y2] painted in the variant's stripe colour (when it has one)."""
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def lines(self) -> int:
        return max(p.n_lines for p in self.patterns)

    # -- text ------------------------------------------------------------------------------------
    def sample_text(
        self, rng: np.random.Generator, confusable_boost: float = 1.0, confusables: str = CONFUSABLE
    ) -> tuple[str, Pattern]:
        """A random plate text (characters to read only) and the pattern that lays it out; the
        characters of ``confusables`` are drawn ``confusable_boost`` times as often as the others."""
        pattern = self.patterns[weighted_index(rng, tuple(p.weight for p in self.patterns))]
        chars = []
        for t in pattern.tokens:
            if t.kind == "char":
                chars.append(_pick(t.choices, rng, confusable_boost, confusables))
        return "".join(chars), pattern

    def pattern_for(self, text: str) -> Pattern | None:
        """The pattern that fits ``text`` (its characters' kinds first, then only its length)."""
        fits = [p for p in self.patterns if p.accepts(text)] or [
            p for p in self.patterns if p.n_chars == len(text)
        ]
        return max(fits, key=lambda p: p.weight) if fits else None


@functools.lru_cache(maxsize=256)
def _weights_cdf(weights: tuple[float, ...]) -> list[float]:
    cdf = np.array(weights, np.float64) / sum(weights)
    cdf = cdf.cumsum()
    cdf /= cdf[-1]
    return cdf.tolist()


def weighted_index(rng: np.random.Generator, weights: tuple[float, ...]) -> int:
    """``rng.choice(len(weights), p=normalised weights)`` with the same draw and the same result, without
    the argument checks that make ``choice`` slow (the weights' CDF is computed once, searched with
    ``bisect``: NumPy's ``searchsorted`` costs more per call than the search itself)."""
    return bisect.bisect_right(_weights_cdf(weights), rng.random())


@functools.lru_cache(maxsize=256)
def _cdf(choices: str, boost: float, confusables: str) -> list[float]:
    w = np.array([boost if c in confusables else 1.0 for c in choices])
    return np.cumsum(w / w.sum()).tolist()


def _pick(choices: str, rng: np.random.Generator, boost: float, confusables: str = CONFUSABLE) -> str:
    if boost == 1.0 or not set(confusables).intersection(choices):
        return choices[int(rng.integers(len(choices)))]
    cdf = _cdf(choices, boost, confusables)
    return choices[min(len(choices) - 1, bisect.bisect_right(cdf, rng.random()))]


_KNOWN_KEYS = {
    "name",
    "region",
    "weight",
    "size_mm",
    "corner_radius_mm",
    "patterns",
    "letters",
    "digits",
    "text",
    "fonts",
    "variants",
    "band",
    "border",
    "header",
    "caption",
    "emblem",
    "screws",
    "stickers",
    "stripes_mm",
    "description",
}
# a tuple, not a set: a variant's colours are jittered in this order, and a set's order changes with
# the process' string hash seed (the same seed would then give other colours in another process)
_COLOUR_KEYS = (
    "background",
    "text",
    "gradient",
    "border",
    "band",
    "band_text",
    "header",
    "caption",
    "silhouette",
    "stripe",
)


def _as_list(v: Any) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def style_from_dict(d: dict[str, Any], source: str = "<dict>") -> PlateStyle:
    """Build and check a style; every problem raises ValueError naming the file and key."""
    if not isinstance(d, dict):
        raise DataError(f"{source}: a plate style must be a mapping")
    unknown = set(d) - _KNOWN_KEYS
    if unknown:
        raise DataError(f"{source}: unknown keys {sorted(unknown)} (known: {sorted(_KNOWN_KEYS)})")
    for key in ("name", "size_mm", "patterns", "text", "fonts", "variants"):
        if key not in d:
            raise DataError(f"{source}: missing key {key!r}")
    letters = str(d.get("letters", LETTERS))
    digits = str(d.get("digits", DIGITS))
    for key, s, allowed in (("letters", letters, LETTERS), ("digits", digits, DIGITS)):
        if not s or any(c not in allowed for c in s):
            raise DataError(f"{source}: {key} {s!r} must be a non-empty subset of {allowed}")
    patterns = []
    for i, p in enumerate(_as_list(d["patterns"])):
        src, weight = (p["pattern"], float(p.get("weight", 1.0))) if isinstance(p, dict) else (p, 1.0)
        patterns.append(
            Pattern(str(src), weight, parse_pattern(str(src), letters, digits, f"{source}: patterns[{i}]"))
        )
    t = d["text"]
    n_lines = max(p.n_lines for p in patterns)
    heights, ys = _as_list(t["height_mm"]), _as_list(t["y_mm"])
    if len(heights) == 1:
        heights = heights * n_lines
    if len(heights) < n_lines or len(ys) < n_lines:
        raise DataError(f"{source}: text.height_mm and text.y_mm need one value per line ({n_lines} lines)")
    text = TextLayout(
        height_mm=[float(h) for h in heights],
        y_mm=[float(y) for y in ys],
        spacing_mm=float(t.get("spacing_mm", 3)),
        gap_mm=float(t.get("gap_mm", 12)),
        margin_mm=float(t.get("margin_mm", 10)),
        monospace=bool(t.get("monospace", False)),
        emboss=bool(t.get("emboss", False)),
        **_same_glyph(t.get("same_glyph"), source),
    )
    variants = []
    for i, v in enumerate(_as_list(d["variants"])):
        where = f"{source}: variants[{i}]"
        if not isinstance(v, dict) or "background" not in v or "text" not in v:
            raise DataError(f"{where}: needs at least 'background' and 'text' colours")
        bad = set(v) - set(_COLOUR_KEYS) - {"name", "weight"}
        if bad:
            raise DataError(f"{where}: unknown keys {sorted(bad)} (colours: {sorted(_COLOUR_KEYS)})")
        colours = {
            k: (None if v[k] is None else parse_colour(v[k], f"{where}.{k}")) for k in _COLOUR_KEYS if k in v
        }
        variants.append(
            Variant(name=str(v.get("name", i)), weight=float(v.get("weight", 1.0)), colours=colours)
        )
    fonts = [str(f) for f in _as_list(d["fonts"])]
    from data.synth.fonts import parse_font

    for f in fonts:
        parse_font(f)
    size = tuple(float(v) for v in d["size_mm"])
    if len(size) != 2 or min(size) <= 0:
        raise DataError(f"{source}: size_mm must be [width, height] in mm")
    return PlateStyle(
        name=str(d["name"]),
        region=d.get("region"),
        weight=float(d.get("weight", 1.0)),
        size_mm=size,  # type: ignore[arg-type]
        corner_radius_mm=float(d.get("corner_radius_mm", 5)),
        patterns=patterns,
        letters=letters,
        digits=digits,
        text=text,
        fonts=fonts,
        variants=variants,
        band=d.get("band"),
        border=d.get("border"),
        header=d.get("header"),
        caption=d.get("caption"),
        emblem=d.get("emblem"),
        screws=d.get("screws"),
        stickers=d.get("stickers"),
        stripes_mm=[[float(a), float(b)] for a, b in d.get("stripes_mm") or []],
        source=source,
        raw=d,
    )


_cache: dict[tuple[str, str], PlateStyle] = {}


def style_names(style_dir: Path = STYLE_DIR) -> list[str]:
    return sorted(p.stem for p in Path(style_dir).glob("*.yaml"))


def load_style(name: str, style_dir: Path = STYLE_DIR) -> PlateStyle:
    """The style ``conf/plate_style/<name>.yaml`` (cached)."""
    key = (str(style_dir), name)
    if key not in _cache:
        path = Path(style_dir) / f"{name}.yaml"
        if not path.is_file():
            raise DataError(
                f"unknown plate style {name!r}: no {path} (known: {', '.join(style_names(style_dir))})"
            )
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise DataError(f"{path}: not valid YAML: {e}") from None
        style = style_from_dict(data, str(path))
        if style.name != name:
            raise DataError(f"{path}: name {style.name!r} differs from the file name {name!r}")
        _cache[key] = style
    return _cache[key]


def load_styles(names: list[str] | None = None, style_dir: Path = STYLE_DIR) -> list[PlateStyle]:
    names = list(names) if names else style_names(style_dir)
    if not names:
        raise DataError(f"no plate styles in {style_dir}")
    return [load_style(n, style_dir) for n in names]
