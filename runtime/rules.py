"""Region rules: plate formats and look-alike characters pick the best of several readings.

OpenALPR's approach: each character offers alternatives (the OCR model's other classes, plus
look-alike swaps such as O/0), candidate texts are built from them with scores (products of the
character scores), and candidates that fit one of the region's formats win over those that do
not. Patterns use OpenALPR's syntax: ``@`` a letter, ``#`` a digit, ``?`` any character,
``[ABC]`` / ``[A-C]`` a class, anything else itself; and one of ours, ``~``: an emblem, sticker or
seal between the groups that the model may read as a character (any class) and that is not part of
the plate's text - a Swedish ``@@@~###`` reads ABC8123 as ABC123, paying ``1 - score`` of the
character read there.

**Layout.** A ``-`` in a pattern is a gap between groups (a dash, a space): not a character, but
visible in the character boxes. A format with gaps, or one marked ``even: true`` (evenly spaced,
no gap), is weighted by how well the boxes show that layout (:func:`spacing`): Brazil's old
``@@@-####`` and its Mercosur ``@@@#@##`` both take JPQ9B70 as letters go, but the gap after the
third character says the old one, so the B is an 8. Formats with neither (most) ignore spacing.

A region file (YAML; ``runtime/regions/<name>.yaml`` ships one per region, docs/regions.md)::

    name: us-ca
    description: California - standard passenger plates
    formats:
      - {pattern: "#@@@###", prior: 9, examples: [7ABC123]}   # prior: how common (relative)
      - {pattern: "@@@###", prior: 1, examples: [ABC123]}
    lookalikes: [[O, "0"], [I, "1"], [B, "8"], [S, "5"], [Z, "2"], [G, "6"]]   # optional
    lookalike_score: 0.5    # optional: a swap scores this fraction of the character it replaces

``patterns: [...]`` is the short form of ``formats`` (every prior 1). An umbrella region lists
``members`` (region names, or ``"*"`` for every region file) instead of formats and picks, per
plate, the best reading that fits any member's format, reporting the member (``Choice.region``).

When no reading at the model's length fits, two edits are tried: **drop** one character (an
emblem or a sticker read as a character: only characters scoring at most ``drop_max_score``; the
candidate pays ``1 - score`` of the dropped one) and **insert** one weak character (a detection
the OCR model scored below its threshold, offered by the caller with its position; the candidate
pays its score). An edit is kept only when it makes the reading fit.

All functions here are pure: characters in, candidates out.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import InputError, RulesError
from runtime.records import ALPHABET, Char

REGIONS_DIR = Path(__file__).resolve().parent / "regions"
DEFAULT_LOOKALIKES: tuple[tuple[str, str], ...] = (
    ("O", "0"),
    ("I", "1"),
    ("B", "8"),
    ("S", "5"),
    ("Z", "2"),
    ("G", "6"),
)
ALL_MEMBERS = "*"
"""``members: "*"``: every region file of ``runtime/regions/`` that is not itself an umbrella."""

EMBLEM = "~"
"""Pattern slot: an emblem the model may read as any character; it is left out of the text."""
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_KEYS = {
    "name",
    "description",
    "patterns",
    "formats",
    "members",
    "lookalikes",
    "lookalike_score",
    "drop_max_score",
    "emblem_read",
    "free_form",
    "gap_height",
    "layout_miss",
}
_QUOTE_HINT = " (quote region names: YAML reads no, yes, on and off as true/false)"
_FORMAT_KEYS = {"pattern", "prior", "examples", "note", "even"}
GAP = "-"
"""Pattern mark: a gap between groups (a dash or a space on the plate), not a character."""


def _atoms(pattern: str) -> list[frozenset[str]]:
    """A pattern as one set of allowed characters per position."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "@":
            out.append(_LETTERS)
        elif ch == "#":
            out.append(_DIGITS)
        elif ch == "?" or ch == EMBLEM:
            out.append(_LETTERS | _DIGITS)
        elif ch == "[":
            end = pattern.find("]", i)
            if end < 0:
                raise RulesError(f"pattern {pattern!r}: '[' without ']'")
            body = pattern[i + 1 : end]
            if not body or not re.fullmatch(r"[A-Z0-9\-]+", body) or body[0] == "-" or body[-1] == "-":
                raise RulesError(f"pattern {pattern!r}: bad class [{body}]")
            allowed: set[str] = set()
            for lo, hi, single in re.findall(r"(.)-(.)|(.)", body):
                if single:
                    allowed.add(single)
                elif ALPHABET.index(lo) > ALPHABET.index(hi):
                    raise RulesError(f"pattern {pattern!r}: range {lo}-{hi} runs backwards")
                else:
                    allowed.update(ALPHABET[ALPHABET.index(lo) : ALPHABET.index(hi) + 1])
            out.append(frozenset(allowed))
            i = end
        elif ch in ALPHABET:
            out.append(frozenset(ch))
        elif ch == GAP:
            if not out or i + 1 == len(pattern) or pattern[i + 1] == GAP:
                raise RulesError(f"pattern {pattern!r}: a gap ({GAP}) stands between two characters")
        else:
            raise RulesError(f"pattern {pattern!r}: {ch!r} is neither @ # ? [..] - nor a plate character")
        i += 1
    if not out:
        raise RulesError("empty pattern")
    return out


def _emblems(pattern: str) -> tuple[int, ...]:
    """Positions of the pattern's ``~`` slots (emblems read as a character, not part of the text)."""
    return _marks(pattern)[0]


def _gaps(pattern: str) -> tuple[int, ...]:
    """Where the pattern's gaps (``-``) are: ``i`` for a gap between characters ``i`` and ``i + 1``."""
    return _marks(pattern)[1]


def _marks(pattern: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    emblems, gaps, pos, i = [], [], 0, 0
    while i < len(pattern):
        if pattern[i] == GAP:
            gaps.append(pos - 1)
            i += 1
            continue
        if pattern[i] == "[":
            i = pattern.find("]", i)
        elif pattern[i] == EMBLEM:
            emblems.append(pos)
        pos += 1
        i += 1
    return tuple(emblems), tuple(gaps)


def plate_pattern(pattern: str) -> str:
    """The pattern of the plate's text: ``pattern`` without its emblem slots (and their gaps)."""
    out = pattern.replace(EMBLEM, "")
    while GAP + GAP in out:
        out = out.replace(GAP + GAP, GAP)
    return out.strip(GAP)


def _regex(slots: Sequence[frozenset[str]]) -> str:
    return "".join("[" + "".join(sorted(a)) + "]" for a in slots)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """An OpenALPR-style pattern as a regular expression matching a whole text."""
    return re.compile(_regex(_atoms(pattern)))


@dataclass(frozen=True)
class PlateFormat:
    """One way a region writes its plates."""

    pattern: str
    prior: float = 1.0
    """How common the format is, relative to the region's other formats (any positive scale)."""
    examples: tuple[str, ...] = ()
    """Plates of this format from the region file's source (checked by the tests)."""
    note: str = ""
    region: str = ""
    """The region (file) the format belongs to; an umbrella reports it as the match."""
    even: bool = False
    """Evenly spaced characters, no gap between groups (a pattern with ``-`` has gaps instead)."""

    @property
    def layout(self) -> tuple[int, ...] | None:
        """Gap positions the character boxes should show: ``()`` for an even format, None when the
        format says nothing about spacing."""
        gaps = _gaps(self.pattern)
        return gaps if gaps else (() if self.even else None)


@dataclass(frozen=True)
class _Shape:
    """Formats of one pattern shape (several regions may share one), with their weights."""

    slots: tuple[frozenset[str], ...]
    regions: tuple[tuple[str, float], ...]
    """(region, weight) best first; weight = prior / the region's highest prior."""
    emblems: tuple[int, ...] = ()
    """Slots holding an emblem (``~``): read as a character, left out of the text."""
    layout: tuple[int, ...] | None = None
    """Gaps the character boxes should show (``()``: evenly spaced; None: spacing not checked)."""

    @property
    def weight(self) -> float:
        return self.regions[0][1]


_ShapeKey = tuple[tuple[frozenset[str], ...], tuple[int, ...], tuple[int, ...] | None]
"""(slots, emblem slots, layout): formats of one key are scored as one shape."""


def spacing(chars: Sequence[Char]) -> np.ndarray | None:
    """How much wider than the plate's usual spacing each gap between neighbouring characters is,
    in character heights (one value per pair, reading order); None where spacing says nothing
    (fewer than 4 characters, or more than one line).

    Each gap is measured twice, between the boxes' edges and between their centres, each less its
    median over the plate, and the smaller is kept: a narrow glyph (1 in a monospaced face) widens
    the edge gap but not the centre pitch, a wide one in a proportional face the reverse; only a
    real gap between groups widens both."""
    if len(chars) < 4 or len({c.line for c in chars}) > 1:
        return None
    boxes = np.array([c.box for c in chars], np.float64)
    height = float(np.median(boxes[:, 3] - boxes[:, 1]))
    if not height > 0:
        return None
    edge = (boxes[1:, 0] - boxes[:-1, 2]) / height
    centre = ((boxes[1:, 0] + boxes[1:, 2]) - (boxes[:-1, 0] + boxes[:-1, 2])) / (2 * height)
    out: np.ndarray = np.minimum(edge - np.median(edge), centre - np.median(centre))
    return out


@dataclass(frozen=True)
class Choice:
    """What the rules made of one reading."""

    text: str
    score: float
    """Product of the character scores of ``text`` (the format prior is not in it)."""
    chars: list[Char]
    """One character per character of ``text`` (replaced ones carry their new class and score)."""
    region: str | None
    """The region whose format ``text`` fits; None when no candidate fits (``text`` is the model's)."""
    candidates: list[tuple[str, float]]
    edit: str | None = None
    """``"drop"`` or ``"insert"`` when the text is the model's reading with one character dropped
    or one weak character inserted; ``"emblem"`` when a format's emblem slot took a character."""
    kept: tuple[int | None, ...] = ()
    """For each character of ``text``: the index of the input character it comes from (None for an
    inserted weak character)."""


@dataclass
class RegionRules:
    name: str
    patterns: list[str] = field(default_factory=list)
    """Short form of ``formats``: one format per pattern, every prior 1."""
    lookalikes: list[tuple[str, str]] = field(default_factory=lambda: list(DEFAULT_LOOKALIKES))
    lookalike_score: float = 0.5
    formats: list[PlateFormat] = field(default_factory=list)
    description: str = ""
    members: list[str] = field(default_factory=list)
    """For an umbrella: the member regions (their formats are in ``formats``)."""
    drop_max_score: float = 0.8
    """A character scoring more than this is never dropped to make a reading fit."""
    emblem_read: float = 0.5
    """Of plates whose format has an emblem slot (``~``), the share on which the model reads the
    emblem as a character: a reading that fits such a format pays it besides ``1 - score``, so a
    middling character is kept rather than taken for the emblem."""
    free_form: float = 0.0
    """How common plates that fit no format are (vanity plates), relative to the commonest format.
    The model's own reading keeps its text unless a fitting candidate scores more than this times
    its score: 0 (the default) lets any fitting candidate win; with 0.6 one look-alike swap the
    model did not offer (x ``lookalike_score`` = 0.5) no longer turns a vanity plate into a format."""
    gap_height: float = 0.06
    """A gap between groups: this many character heights wider than the plate's usual spacing
    (old Brazilian plates' dash: 0.22 median, 0.06 at the 1st percentile; evenly spaced plates: 0
    median, 0.05 at the 95th; :func:`spacing`)."""
    layout_miss: float = 0.4
    """Weight of a format whose layout the boxes contradict (a gap where it has none, or none where
    it has one); 1 where they agree, smoothly between. 0.4: spacing outweighs a look-alike swap
    (0.5) times a format prior of 2/3, never a character the model read itself."""

    def __post_init__(self) -> None:
        self.formats = [f if f.region else replace(f, region=self.name) for f in self.formats]
        self.formats += [PlateFormat(p, region=self.name) for p in self.patterns]
        self.patterns = [f.pattern for f in self.formats]
        for pair in self.lookalikes:
            if len(pair) != 2 or any(len(c) != 1 or c not in ALPHABET for c in pair):
                raise RulesError(
                    f"rules {self.name!r}: look-alike {pair!r} is not a pair of plate characters"
                )
        if not 0.0 < self.lookalike_score <= 1.0:
            raise RulesError(f"rules {self.name!r}: lookalike_score {self.lookalike_score} is not in (0, 1]")
        if not 0.0 <= self.free_form <= 1.0:
            raise RulesError(f"rules {self.name!r}: free_form {self.free_form} is not in [0, 1]")
        if not 0.0 < self.emblem_read <= 1.0:
            raise RulesError(f"rules {self.name!r}: emblem_read {self.emblem_read} is not in (0, 1]")
        if not 0.0 <= self.drop_max_score <= 1.0:
            raise RulesError(f"rules {self.name!r}: drop_max_score {self.drop_max_score} is not in [0, 1]")
        if not 0.0 < self.gap_height < 1.0:
            raise RulesError(f"rules {self.name!r}: gap_height {self.gap_height} is not in (0, 1)")
        if not 0.0 < self.layout_miss <= 1.0:
            raise RulesError(f"rules {self.name!r}: layout_miss {self.layout_miss} is not in (0, 1]")
        self._partners: dict[str, set[str]] = {}
        for a, b in self.lookalikes:
            self._partners.setdefault(a, set()).add(b)
            self._partners.setdefault(b, set()).add(a)
        top: dict[str, float] = {}
        for f in self.formats:
            if not (isinstance(f.prior, (int, float)) and f.prior > 0 and math.isfinite(f.prior)):
                raise RulesError(f"rules {self.name!r}: format {f.pattern!r}: prior {f.prior!r} is not > 0")
            if f.even and GAP in f.pattern:
                raise RulesError(f"rules {self.name!r}: format {f.pattern!r} has gaps ({GAP}) and even: true")
            top[f.region] = max(top.get(f.region, 0.0), float(f.prior))
        # Formats grouped by shape and by length: a reading is only compared with formats of its
        # length, and a shape shared by many regions (US states) is scored once.
        grouped: dict[_ShapeKey, dict[str, float]] = {}
        for f in self.formats:
            # A format with an emblem also writes its text without it: read that way when the model
            # saw the emblem for what it is.
            for pattern in dict.fromkeys((f.pattern, plate_pattern(f.pattern))):
                try:
                    slots = tuple(_atoms(pattern))
                except RulesError as e:
                    raise RulesError(f"rules {self.name!r} ({f.region}): {e}") from None
                emblems = _emblems(pattern)
                # Spacing is only checked on texts as read (an emblem's slot or an edit moves the gaps).
                layout = None if EMBLEM in f.pattern else replace(f, pattern=pattern).layout
                weights = grouped.setdefault((slots, emblems, layout), {})
                weights[f.region] = max(weights.get(f.region, 0.0), f.prior / top[f.region])
        order = {r: i for i, r in enumerate(dict.fromkeys(f.region for f in self.formats))}
        self._by_length: dict[int, list[_Shape]] = {}
        # Formats with an emblem slot are scored apart: their texts are a character shorter than the
        # reading, and matching a text against them (match, the edits) would keep the emblem in it.
        self._emblem_shapes: dict[int, list[_Shape]] = {}
        for (slots, emblems, layout), weights in grouped.items():
            regions = tuple(sorted(weights.items(), key=lambda kv: (-kv[1], order[kv[0]])))
            into = self._emblem_shapes if emblems else self._by_length
            into.setdefault(len(slots), []).append(_Shape(slots, regions, emblems, layout))
        # Lengths with a format whose spacing is checked: their texts are weighed shape by shape.
        self._laid_out = {
            n for n, shapes in self._by_length.items() if any(s.layout is not None for s in shapes)
        }
        # One regular expression per length, likeliest shape first: a text is matched in one call
        # (the engine tries the alternatives in order; the group that matched names the shape).
        self._matchers: dict[int, re.Pattern[str]] = {}
        for length, shapes in self._by_length.items():
            shapes.sort(key=lambda s: -s.weight)
            self._matchers[length] = re.compile("|".join("(" + _regex(s.slots) + ")" for s in shapes))

    # -- matching --------------------------------------------------------------------------------
    def match(self, text: str) -> tuple[str, float] | None:
        """(region, weight) of the likeliest format ``text`` fits, or None."""
        matcher = self._matchers.get(len(text))
        m = matcher.fullmatch(text) if matcher is not None else None
        return None if m is None else self._by_length[len(text)][(m.lastindex or 1) - 1].regions[0]

    def matches(self, text: str) -> bool:
        return self.match(text) is not None

    def match_spaced(self, text: str, gaps: np.ndarray | None) -> tuple[str, float] | None:
        """:meth:`match` with each format's weight times how well ``gaps`` (:func:`spacing`) show
        its layout."""
        if gaps is None or len(text) not in self._laid_out:
            return self.match(text)
        best: tuple[str, float] | None = None
        for shape in self._by_length[len(text)]:
            if not all(ch in slot for ch, slot in zip(text, shape.slots, strict=True)):
                continue
            weight = shape.weight * self.layout_weight(shape.layout, gaps)
            if best is None or weight > best[1]:
                best = (shape.regions[0][0], weight)
        return best

    def layout_weight(self, layout: tuple[int, ...] | None, gaps: np.ndarray | None) -> float:
        """How well the gaps between characters (:func:`spacing`) show ``layout``: 1 where they
        agree, ``layout_miss`` where they contradict it."""
        if layout is None or gaps is None or any(g >= len(gaps) for g in layout):
            return 1.0
        # A smooth step around gap_height: a gap a little narrower than typical still counts a little.
        step = 1.0 / (1.0 + np.exp(-(gaps - self.gap_height) / (self.gap_height / 5)))
        # A format with gaps needs them where it has them (a wide 1 elsewhere is no evidence
        # against it); an even one needs none anywhere.
        agree = float(np.prod(step[list(layout)]) if layout else np.prod(1.0 - step))
        return self.layout_miss + (1.0 - self.layout_miss) * agree

    def partners(self, char: str) -> set[str]:
        return self._partners.get(char, set())

    @property
    def regions(self) -> list[str]:
        """The regions whose formats these rules hold (one region, or an umbrella's members)."""
        return list(dict.fromkeys(f.region for f in self.formats))

    # -- files -----------------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, d: dict[str, Any], source: str = "rules", resolve: Any = None, _seen: tuple[str, ...] = ()
    ) -> RegionRules:
        """Rules from a parsed region file. ``resolve(name, seen)`` loads a member region (umbrellas)."""
        if not isinstance(d, dict):
            raise RulesError(
                f"{source}: expected a mapping with 'name' and 'formats', got {type(d).__name__}"
            )
        unknown = sorted(set(d) - _KEYS)
        if unknown:
            raise RulesError(f"{source}: unknown keys {unknown} (known: {sorted(_KEYS)})")
        name = d.get("name")
        name = Path(source).stem if name is None or name == "" else name
        if not isinstance(name, str):
            raise RulesError(f"{source}: name {name!r} is not a string{_QUOTE_HINT}")
        patterns = d.get("patterns") or []
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise RulesError(f"{source}: patterns must be a list of strings")
        formats = [
            _format_from(f, name, f"{source}: formats[{i}]") for i, f in enumerate(d.get("formats") or [])
        ]
        members = d.get("members") or []
        if members == ALL_MEMBERS:
            members = [r for r in available_regions() if not _is_umbrella(r) and r not in _seen]
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise RulesError(
                f"{source}: members must be a list of region names or {ALL_MEMBERS!r}{_QUOTE_HINT}"
            )
        free_forms = []
        if members:
            if resolve is None:
                raise RulesError(f"{source}: an umbrella region (members) must be loaded with load_rules")
            for m in members:
                if m in _seen or m == name:
                    raise RulesError(f"{source}: member {m!r} includes itself ({' -> '.join((*_seen, m))})")
                member = resolve(m, (*_seen, name))
                formats += member.formats
                free_forms.append(member.free_form)
        # An umbrella's plates fit no format as often as its members' do, on average (every member
        # equally likely), unless its file says otherwise.
        free_form = d.get("free_form", sum(free_forms) / len(free_forms) if free_forms else 0.0)
        if not formats and not patterns:
            raise RulesError(f"{source}: no formats (give 'formats', 'patterns' or 'members')")
        lookalikes = d.get("lookalikes", DEFAULT_LOOKALIKES)
        try:
            pairs = [(str(a), str(b)) for a, b in lookalikes]
        except (TypeError, ValueError):
            raise RulesError(f"{source}: lookalikes must be a list of pairs, got {lookalikes!r}") from None
        score = d.get("lookalike_score", 0.5)
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise RulesError(f"{source}: lookalike_score must be a number in (0, 1], got {score!r}")
        try:
            return cls(
                name=name,
                patterns=patterns,
                lookalikes=pairs,
                lookalike_score=float(score),
                formats=formats,
                description=str(d.get("description") or ""),
                members=list(members),
                drop_max_score=float(d.get("drop_max_score", 0.8)),
                emblem_read=float(d.get("emblem_read", 0.5)),
                free_form=float(free_form),
                gap_height=float(d.get("gap_height", 0.06)),
                layout_miss=float(d.get("layout_miss", 0.4)),
            )
        except (RulesError, TypeError, ValueError) as e:
            raise RulesError(f"{source}: {e}") from None


def _format_from(d: Any, region: str, where: str) -> PlateFormat:
    if isinstance(d, str):
        return PlateFormat(d, region=region)
    if not isinstance(d, dict) or "pattern" not in d:
        raise RulesError(f"{where}: expected a pattern string or a mapping with 'pattern', got {d!r}")
    unknown = sorted(set(d) - _FORMAT_KEYS)
    if unknown:
        raise RulesError(f"{where}: unknown keys {unknown} (known: {sorted(_FORMAT_KEYS)})")
    examples = d.get("examples") or []
    if not isinstance(examples, list):
        raise RulesError(f"{where}: examples must be a list of plate texts")
    try:
        prior = float(d.get("prior", 1.0))
    except (TypeError, ValueError):
        raise RulesError(f"{where}: prior {d.get('prior')!r} is not a number") from None
    even = d.get("even", False)
    if not isinstance(even, bool):
        raise RulesError(f"{where}: even must be true or false, got {even!r}")
    return PlateFormat(
        pattern=str(d["pattern"]),
        prior=prior,
        examples=tuple(str(e) for e in examples),
        note=str(d.get("note") or ""),
        region=region,
        even=even,
    )


def available_regions() -> list[str]:
    return sorted(p.stem for p in REGIONS_DIR.glob("*.yaml"))


_RAW_CACHE: dict[Path, tuple[float, Any]] = {}


def _read_yaml(p: Path) -> Any:
    import yaml  # local: only needed when rules are used

    mtime = p.stat().st_mtime
    cached = _RAW_CACHE.get(p)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        data = yaml.safe_load(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RulesError(
            f"{p}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
        ) from None
    except yaml.YAMLError as e:
        raise RulesError(f"{p}: not valid YAML ({e})") from None
    _RAW_CACHE[p] = (mtime, data)
    return data


def _is_umbrella(name: str) -> bool:
    data = _read_yaml(REGIONS_DIR / f"{name}.yaml")
    return isinstance(data, dict) and bool(data.get("members"))


def region_summary(name: str) -> str:
    """One line about a shipped region: its description, or its members for an umbrella."""
    data = _read_yaml(REGIONS_DIR / f"{name}.yaml")
    if not isinstance(data, dict):
        return "(not a region file)"
    text = str(data.get("description") or "")
    members = data.get("members")
    if members == ALL_MEMBERS:
        text += " (umbrella: every region)"
    elif isinstance(members, list):
        text += f" (umbrella: {len(members)} regions)"
    else:
        n = len(data.get("formats") or []) + len(data.get("patterns") or [])
        text += f" ({n} format{'s' if n != 1 else ''})"
    return text.strip()


def region_lines() -> list[str]:
    """``NAME  description (formats or members)`` for every shipped region, umbrellas first."""
    names = available_regions()
    names.sort(key=lambda n: (not _is_umbrella(n), n))
    width = max(map(len, names), default=0)
    return [f"{n:<{width}}  {region_summary(n)}" for n in names]


def _resolve_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if not p.suffix:
        p = REGIONS_DIR / f"{name_or_path}.yaml"
        if not p.is_file():
            raise RulesError(
                f"no region rules named {name_or_path!r} (known: {available_regions()}; or give a YAML file)"
            )
    if not p.is_file():
        raise RulesError(f"{p}: no such region rules file")
    return p


def load_rules(name_or_path: str | Path, _seen: tuple[str, ...] = ()) -> RegionRules:
    """Rules from a YAML file, or by region name from ``runtime/regions/`` (umbrellas load their members)."""
    p = _resolve_path(name_or_path)
    data = _read_yaml(p)
    return RegionRules.from_dict(data, source=str(p), resolve=load_rules, _seen=_seen)


# -- candidates ------------------------------------------------------------------------------------
def _options(c: Char, rules: RegionRules | None) -> dict[str, float]:
    """What one character could be, with scores: itself, the model's alternatives, look-alikes."""
    own = 1.0 if c.score is None else c.score
    opts = {c.char: own}
    for ch, s in c.alternatives:
        opts[ch] = max(opts.get(ch, 0.0), s)
    if rules is not None:
        for ch, s in list(opts.items()):
            for partner in rules.partners(ch):
                opts[partner] = max(opts.get(partner, 0.0), s * rules.lookalike_score)
    return opts


def _top_combinations(options: list[dict[str, float]], k: int) -> list[tuple[str, float]]:
    """The k best texts (product of option scores) by beam search over positions."""
    beam: list[tuple[float, str]] = [(0.0, "")]  # (log score, text)
    for opts in options:
        ranked = sorted(opts.items(), key=lambda kv: -kv[1])[:k]
        grown = [(lp + math.log(max(s, 1e-12)), text + ch) for lp, text in beam for ch, s in ranked]
        beam = heapq.nlargest(k, grown)
    return [(text, math.exp(lp)) for lp, text in beam]


class _Best:
    """Best option of each position for each slot set, computed once per call (slot sets are few)."""

    def __init__(self, options: list[dict[str, float]]) -> None:
        self.ranked = [sorted(o.items(), key=lambda kv: (-kv[1], kv[0])) for o in options]
        self.cache: dict[tuple[int, int], tuple[str, float] | None] = {}

    def __call__(self, pos: int, slot: frozenset[str]) -> tuple[str, float] | None:
        key = (pos, id(slot))
        if key not in self.cache:
            self.cache[key] = next(((ch, s) for ch, s in self.ranked[pos] if ch in slot), None)
        return self.cache[key]


def _fit(best: _Best, positions: Sequence[int], shape: _Shape) -> tuple[str, float] | None:
    """The best text ``shape`` allows from the options at ``positions`` (positions are independent)."""
    text, score = [], 1.0
    for pos, slot in zip(positions, shape.slots, strict=True):
        hit = best(pos, slot)
        if hit is None:
            return None
        text.append(hit[0])
        score *= hit[1]
    return "".join(text), score


@dataclass
class _Found:
    score: float
    rank: float
    region: str | None
    kept: tuple[int | Char, ...]
    """Where each character of the text comes from: an input index, or the inserted weak Char."""
    edit: str | None = None


def choose(
    chars: list[Char],
    rules: RegionRules | None,
    top_n: int = 5,
    weak: Sequence[tuple[int, Char]] = (),
    edits: bool = True,
) -> Choice | None:
    """The rules' reading of characters in reading order (None without characters).

    Without rules: the model's own reading, its alternatives as candidates. With rules: look-alikes
    join the alternatives; texts fitting a format rank above all others, by score x the format's
    prior. ``weak``: (index, character) pairs the caller found below the OCR threshold, to be
    inserted before ``chars[index]`` if that alone makes the reading fit.
    """
    if not chars:
        return None
    raw = "".join(c.char for c in chars)
    options = [_options(c, rules) for c in chars]
    identity = tuple(range(len(chars)))
    found: dict[str, _Found] = {}
    raw_score = math.prod(options[i][c.char] for i, c in enumerate(chars))
    # The model's reading as a free-form plate (fits no format): fitting candidates must beat it.
    free = raw_score * rules.free_form if rules is not None else 0.0
    bar = [free]
    """What a fitting candidate must beat to win: the free-form reading, or the best one so far
    (formats are visited likeliest first, and those that cannot beat it are skipped)."""

    def offer(text: str, score: float, weight: float, region: str | None, kept, edit=None) -> None:
        old = found.get(text)
        if old is None or score * weight > old.rank:
            found[text] = _Found(score, score * weight, region, kept, edit)
            if region is not None and score * weight > bar[0]:
                bar[0] = score * weight

    gaps = spacing(chars) if rules is not None and len(chars) in rules._laid_out else None
    # With rules, the best text of every format is found directly below; the beam only fills the
    # candidate list (and finds the best texts without rules).
    for text, score in _top_combinations(options, max(top_n, 1) * (2 if rules is not None else 4)):
        m = rules.match_spaced(text, gaps) if rules is not None else None
        offer(text, score, m[1] if m else 0.0, m[0] if m else None, identity)
    if rules is not None:
        best = _Best(options)
        tops = [max(o.values()) for o in options]
        bound = math.prod(tops)  # no text of these characters scores more
        for shape in rules._by_length.get(len(chars), ()):
            if shape.weight * bound <= bar[0]:
                break  # shapes come likeliest first, and the layout weight is at most 1
            hit = _fit(best, identity, shape)
            if hit is not None:
                weight = shape.weight * rules.layout_weight(shape.layout, gaps)
                offer(hit[0], hit[1], weight, shape.regions[0][0], identity)
        for shape in rules._emblem_shapes.get(len(chars), ()):
            hit = _fit(best, identity, shape)
            if hit is not None:
                # The emblem's slot pays 1 - the score of what was read there instead of that score.
                score = hit[1] * rules.emblem_read
                for p in shape.emblems:
                    read = chars[p].score
                    top = best(p, shape.slots[p])  # the emblem slot takes any class: never None
                    top_score = top[1] if top is not None else 1.0
                    score = score / max(top_score, 1e-12) * (1.0 - (1.0 if read is None else read))
                kept = tuple(i for i in identity if i not in shape.emblems)
                text = "".join(hit[0][i] for i in kept)
                offer(text, score, shape.weight, shape.regions[0][0], kept, "emblem")
        if edits and bar[0] <= free:  # nothing convincing at the model's length
            _edited(chars, options, best, rules, weak, offer, tops, bar)
    matched = [(t, f) for t, f in found.items() if f.region]
    ranked = sorted(matched, key=lambda kv: (-kv[1].rank, kv[0]))
    ranked += sorted(((t, f) for t, f in found.items() if not f.region), key=lambda kv: (-kv[1].score, kv[0]))
    cands = [(t, f.score) for t, f in ranked[:top_n]]
    if ranked and ranked[0][1].region and ranked[0][1].rank > free:
        text, f = ranked[0]
    else:  # nothing fits (or nothing beats a free-form plate): the model's own reading stands
        text, f = raw, _Found(raw_score, 0.0, None, identity)
    return Choice(
        text=text,
        score=f.score,
        chars=_spell(chars, f.kept, text, rules),
        region=f.region,
        candidates=cands,
        edit=f.edit,
        kept=tuple(k if isinstance(k, int) else None for k in f.kept),
    )


def _edited(chars, options, best: _Best, rules: RegionRules, weak, offer, tops, bar) -> None:
    """Drop and insert candidates (see the module docstring): only formats one shorter or longer.
    ``tops``: each position's best option score; ``bar[0]``: the rank a candidate must beat."""
    n = len(chars)
    scores = [1.0 if c.score is None else c.score for c in chars]
    droppable = [j for j in range(n) if scores[j] <= rules.drop_max_score]
    bound = math.prod(tops)
    if droppable and n > 1:
        drop_bound = max(bound / max(tops[j], 1e-12) * (1.0 - scores[j]) for j in droppable)
        for shape in rules._by_length.get(n - 1, ()):
            if shape.weight * drop_bound <= bar[0]:
                break
            # Position i fills slot i before the dropped one and slot i - 1 after it: with prefix
            # products of the first and suffix products of the second, each drop costs O(1).
            before = [best(i, shape.slots[i]) for i in range(n - 1)]
            after = [None, *(best(i, shape.slots[i - 1]) for i in range(1, n))]
            prefix = [1.0]
            for hit in before:
                prefix.append(prefix[-1] * hit[1] if hit is not None and prefix[-1] > 0 else 0.0)
            suffix = [1.0] * (n + 1)
            for i in range(n - 1, 0, -1):
                hit = after[i]
                suffix[i] = suffix[i + 1] * hit[1] if hit is not None and suffix[i + 1] > 0 else 0.0
            for j in droppable:
                score = prefix[j] * suffix[j + 1]
                if score <= 0.0:
                    continue
                # score > 0: every position before and after the dropped one has its option
                text = "".join(h[0] for h in (*before[:j], *after[j + 1 :]) if h is not None)
                kept = (*range(j), *range(j + 1, n))
                offer(text, score * (1.0 - scores[j]), shape.weight, shape.regions[0][0], kept, "drop")
    if weak:
        shapes = rules._by_length.get(n + 1, ())
        for at, w in weak:
            if not 0 <= at <= n:
                continue
            ext = _Best([*options[:at], _options(w, rules), *options[at:]])
            kept = (*range(at), w, *range(at, n))
            # The reading without it assumed the weak detection is no character (1 - its score).
            odds = 1.0 / max(1e-6, 1.0 - (w.score or 0.0))
            insert_bound = bound * max(ext.ranked[at][0][1], 0.0) * odds
            for shape in shapes:
                if shape.weight * insert_bound <= bar[0]:
                    break
                hit = _fit(ext, range(n + 1), shape)
                if hit is not None:
                    offer(hit[0], hit[1], shape.weight * odds, shape.regions[0][0], kept, "insert")


def _spell(
    chars: list[Char], kept: tuple[int | Char, ...], text: str, rules: RegionRules | None
) -> list[Char]:
    """The characters behind ``text``: kept ones (rewritten where the text swaps them) and the
    inserted weak one."""
    return apply_text([chars[k] if isinstance(k, int) else k for k in kept], text, rules)


OUTSIDE_LIKELIHOOD = 1e-13
"""Likelihood of a plate text under a region none of whose formats it fits: a foreign car or a
misread, say 1% of plates, spread over the 36^7 (8e10) texts of 7 characters."""


class RegionMemory:
    """What an umbrella region has read so far on one camera, to prefer the region it keeps seeing.

    A camera mostly sees its own country's plates, and ``auto`` cannot know which country that is:
    a Brazilian 8RA1234 (B read as 8) fits a Czech format and stays wrong. Each plate that fits a
    format adds, for every candidate region, the log-likelihood of its text there: the format
    priors over the number of texts each format can write (so a tight format that fits says more
    than Germany's many loose ones), ``OUTSIDE_LIKELIHOOD`` where no format fits. Once ``after``
    plates were read, the likeliest candidate, if its formats fit at least ``share`` of them, is
    tried first with its own settings; a plate fitting none of its formats goes to the whole
    umbrella as before (unless the leader has free-form plates: a US vanity plate stays as read).
    Candidates are the members and the shipped umbrellas inside this one (an umbrella's
    likelihood is its members' mean), so ``auto`` on a US road learns ``us`` when no single state
    explains the plates.

    Not thread-safe: one per reader thread (the Predictor reads on one)."""

    def __init__(self, umbrella: RegionRules, after: int = 20, share: float = 0.8) -> None:
        if not umbrella.members:
            raise RulesError(f"rules {umbrella.name!r}: only an umbrella region (members) learns a member")
        self.umbrella, self.after, self.share = umbrella, after, share
        # Each candidate with its own settings (a Brazilian camera wants Brazil's strictness, not the
        # umbrella's average free-form prior).
        self._candidates = {m: load_rules(m) for m in umbrella.members}
        inside = set(umbrella.regions)
        for name in available_regions():
            if name != umbrella.name and name not in self._candidates and _is_umbrella(name):
                group = load_rules(name)
                if set(group.regions) <= inside:
                    self._candidates[name] = group
        # Per text length: (leaf region, compiled pattern, prior share / texts it can write).
        self._formats: dict[int, list[tuple[str, re.Pattern[str], float]]] = {}
        leaves = list(dict.fromkeys(f.region for r in self._candidates.values() for f in r.formats))
        for region in leaves:
            formats = [f for r in self._candidates.values() for f in r.formats if f.region == region]
            unique = {f.pattern: f for f in formats}.values()
            # Free-form plates (vanity) take their share of the region's plates too.
            own = load_rules(region) if region in self._candidates else None
            free = own.free_form if own is not None else 0.0
            total = sum(f.prior for f in unique) + free * max(f.prior for f in unique)
            for f in unique:
                slots = _atoms(f.pattern)
                size = math.prod(len(s) for s in slots)
                self._formats.setdefault(len(slots), []).append(
                    (region, compile_pattern(f.pattern), f.prior / total / size)
                )
        # Candidate x leaf: 1 / the candidate's member count where the leaf is a member (its mean).
        self._names = list(self._candidates)
        self._leaf_index = {leaf: i for i, leaf in enumerate(leaves)}
        self._mean = np.zeros((len(self._names), len(leaves)))
        for c, name in enumerate(self._names):
            members = self._candidates[name].regions
            for m in members:
                self._mean[c, self._leaf_index[m]] = 1.0 / len(members)
        self._log_likelihood = np.zeros(len(self._names))
        self._fits = np.zeros(len(self._names), dtype=np.int64)
        self.plates = 0
        self._leader: RegionRules | None = None

    @property
    def leader(self) -> str | None:
        """The region tried first, once one has been learnt."""
        return None if self._leader is None else self._leader.name

    @property
    def fits(self) -> dict[str, int]:
        """Plates learnt from that each candidate's formats fit."""
        return {n: int(f) for n, f in zip(self._names, self._fits, strict=True)}

    @property
    def log_likelihood(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self._names, self._log_likelihood, strict=True)}

    def _learn(self, text: str) -> None:
        self.plates += 1
        leaf = np.zeros(self._mean.shape[1])
        for region, pattern, p in self._formats.get(len(text), ()):
            if pattern.fullmatch(text):
                leaf[self._leaf_index[region]] += p
        likelihood = self._mean @ leaf
        self._fits += likelihood > 0
        self._log_likelihood += np.log(np.maximum(likelihood, OUTSIDE_LIKELIHOOD))
        if self.plates >= self.after:
            best = int(np.argmax(self._log_likelihood))  # the first on a tie: member order
            leads = self._fits[best] >= self.share * self.plates
            self._leader = self._candidates[self._names[best]] if leads else None

    def choose(
        self, chars: list[Char], top_n: int = 5, weak: Sequence[tuple[int, Char]] = ()
    ) -> Choice | None:
        """:func:`choose` with the learnt region first, then the whole umbrella."""
        choice, lead = None, self._leader
        if lead is not None:
            choice = choose(chars, lead, top_n, weak)
        # Nothing of the leader's fits: a foreign plate, unless the leader has free-form plates of
        # its own (a US vanity plate stays as read rather than take a European format).
        if choice is None or (choice.region is None and (lead is None or lead.free_form == 0)):
            choice = choose(chars, self.umbrella, top_n, weak)
        if choice is not None and choice.region is not None:
            # An emblem read as a character is evidence for the formats that have one there.
            self._learn("".join(c.char for c in chars) if choice.edit == "emblem" else choice.text)
        return choice


def candidates(chars: list[Char], rules: RegionRules | None, top_n: int = 5) -> list[tuple[str, float]]:
    """Candidate texts for characters in reading order, best first (see :func:`choose`)."""
    if top_n < 1:
        return []
    choice = choose(chars, rules, top_n, edits=False)
    return [] if choice is None else choice.candidates


def apply_text(chars: list[Char], text: str, rules: RegionRules | None = None) -> list[Char]:
    """Characters rewritten to spell ``text`` (one of their candidates): a replaced character takes
    the score its option had, and its old class becomes an alternative."""
    if len(text) != len(chars):
        raise InputError(f"text {text!r} has {len(text)} characters for {len(chars)} boxes")
    out = []
    for c, t in zip(chars, text, strict=True):
        if t == c.char:
            out.append(c)
            continue
        options = _options(c, rules)
        if t not in options:
            raise InputError(f"{t!r} is not an option for the character {c.char!r} at {c.box}")
        alts = {
            ch: s for ch, s in options.items() if ch != t and (ch == c.char or ch in dict(c.alternatives))
        }
        out.append(
            replace(c, char=t, score=options[t], alternatives=sorted(alts.items(), key=lambda kv: -kv[1]))
        )
    return out
