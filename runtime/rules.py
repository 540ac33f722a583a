"""Region rules: plate formats and look-alike characters pick the best of several readings.

OpenALPR's approach: each character offers alternatives (the OCR model's other classes, plus
look-alike swaps such as O/0), candidate texts are built from them with scores (products of the
character scores), and candidates that match one of the region's patterns win over those that do
not. Patterns use OpenALPR's syntax: ``@`` a letter, ``#`` a digit, ``?`` any character,
``[ABC]`` / ``[A-C]`` a class, anything else itself.

A region file (YAML; ``runtime/regions/<name>.yaml`` ships some)::

    name: br
    patterns: ["@@@####", "@@@#@##"]
    lookalikes: [[O, "0"], [I, "1"], [B, "8"], [S, "5"], [Z, "2"], [G, "6"]]   # optional
    lookalike_score: 0.5    # optional: a swap scores this fraction of the character it replaces

All functions here are pure: characters in, candidates out.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """An OpenALPR-style pattern as a regular expression matching a whole text."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "@":
            out.append("[A-Z]")
        elif ch == "#":
            out.append("[0-9]")
        elif ch == "?":
            out.append("[A-Z0-9]")
        elif ch == "[":
            end = pattern.find("]", i)
            if end < 0:
                raise RulesError(f"pattern {pattern!r}: '[' without ']'")
            body = pattern[i + 1 : end]
            if not body or not re.fullmatch(r"[A-Z0-9\-]+", body):
                raise RulesError(f"pattern {pattern!r}: bad class [{body}]")
            out.append(f"[{body}]")
            i = end
        elif ch in ALPHABET:
            out.append(ch)
        else:
            raise RulesError(f"pattern {pattern!r}: {ch!r} is neither @ # ? [..] nor a plate character")
        i += 1
    return re.compile("".join(out))


@dataclass
class RegionRules:
    name: str
    patterns: list[str] = field(default_factory=list)
    lookalikes: list[tuple[str, str]] = field(default_factory=lambda: list(DEFAULT_LOOKALIKES))
    lookalike_score: float = 0.5

    def __post_init__(self) -> None:
        self._compiled = [compile_pattern(p) for p in self.patterns]
        for pair in self.lookalikes:
            if len(pair) != 2 or any(len(c) != 1 or c not in ALPHABET for c in pair):
                raise RulesError(
                    f"rules {self.name!r}: look-alike {pair!r} is not a pair of plate characters"
                )
        if not 0.0 < self.lookalike_score <= 1.0:
            raise RulesError(f"rules {self.name!r}: lookalike_score {self.lookalike_score} is not in (0, 1]")
        self._partners: dict[str, set[str]] = {}
        for a, b in self.lookalikes:
            self._partners.setdefault(a, set()).add(b)
            self._partners.setdefault(b, set()).add(a)

    def matches(self, text: str) -> bool:
        return any(p.fullmatch(text) for p in self._compiled)

    def partners(self, char: str) -> set[str]:
        return self._partners.get(char, set())

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "rules") -> RegionRules:
        if not isinstance(d, dict):
            raise RulesError(
                f"{source}: expected a mapping with 'name' and 'patterns', got {type(d).__name__}"
            )
        unknown = sorted(set(d) - {"name", "patterns", "lookalikes", "lookalike_score", "description"})
        if unknown:
            raise RulesError(f"{source}: unknown keys {unknown}")
        patterns = d.get("patterns") or []
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise RulesError(f"{source}: patterns must be a list of strings")
        lookalikes = d.get("lookalikes", DEFAULT_LOOKALIKES)
        try:
            pairs = [(str(a), str(b)) for a, b in lookalikes]
        except (TypeError, ValueError):
            raise RulesError(f"{source}: lookalikes must be a list of pairs, got {lookalikes!r}") from None
        try:
            return cls(
                name=str(d.get("name") or Path(source).stem),
                patterns=patterns,
                lookalikes=pairs,
                lookalike_score=float(d.get("lookalike_score", 0.5)),
            )
        except RulesError as e:
            raise RulesError(f"{source}: {e}") from None


def available_regions() -> list[str]:
    return sorted(p.stem for p in REGIONS_DIR.glob("*.yaml"))


def load_rules(name_or_path: str | Path) -> RegionRules:
    """Rules from a YAML file, or by region name from ``runtime/regions/``."""
    p = Path(name_or_path)
    if not p.suffix:
        p = REGIONS_DIR / f"{name_or_path}.yaml"
        if not p.is_file():
            raise RulesError(
                f"no region rules named {name_or_path!r} (known: {available_regions()}; or give a YAML file)"
            )
    if not p.is_file():
        raise RulesError(f"{p}: no such region rules file")
    import yaml  # local: only needed when rules are used

    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise RulesError(f"{p}: not valid YAML ({e})") from None
    return RegionRules.from_dict(data, source=str(p))


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


def _best_for_pattern(options: list[dict[str, float]], pattern: re.Pattern[str]) -> tuple[str, float] | None:
    """The best text a pattern allows (positions are independent, so best per position)."""
    # A compiled pattern is a sequence of one-character atoms; split it back to test each position.
    atoms = re.findall(r"\[[^\]]+\]|.", pattern.pattern)
    if len(atoms) != len(options):
        return None
    text, score = "", 1.0
    for atom, opts in zip(atoms, options, strict=False):
        allowed = [(ch, s) for ch, s in opts.items() if re.fullmatch(atom, ch)]
        if not allowed:
            return None
        ch, s = max(allowed, key=lambda kv: kv[1])
        text += ch
        score *= s
    return text, score


def candidates(chars: list[Char], rules: RegionRules | None, top_n: int = 5) -> list[tuple[str, float]]:
    """Candidate texts for characters in reading order, best first.

    Without rules: the model's own alternatives only, by score. With rules: look-alikes join the
    alternatives, and texts matching a pattern rank above all others.
    """
    if not chars or top_n < 1:
        return []
    options = [_options(c, rules) for c in chars]
    found: dict[str, float] = {}
    for text, score in _top_combinations(options, max(top_n, 1) * 4):
        found[text] = max(found.get(text, 0.0), score)
    if rules is not None:
        for pattern in rules._compiled:
            best = _best_for_pattern(options, pattern)
            if best is not None:
                found[best[0]] = max(found.get(best[0], 0.0), best[1])
    matches = (lambda t: rules.matches(t)) if rules is not None and rules.patterns else (lambda t: False)
    ranked = sorted(found.items(), key=lambda kv: (not matches(kv[0]), -kv[1], kv[0]))
    return ranked[:top_n]


def apply_text(chars: list[Char], text: str, rules: RegionRules | None = None) -> list[Char]:
    """Characters rewritten to spell ``text`` (one of their candidates): a replaced character takes
    the score its option had, and its old class becomes an alternative."""
    if len(text) != len(chars):
        raise InputError(f"text {text!r} has {len(text)} characters for {len(chars)} boxes")
    out = []
    for c, t in zip(chars, text, strict=False):
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
