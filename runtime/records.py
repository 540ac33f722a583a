"""The one record every stage passes along: a plate, its characters, and what was read.

Lives in the lean runtime (standard library only) so that the toolchain stages and the deployed
package share it. The JSON form is the plate object of the manifest (``data/``) and of the
runtime's ``--json`` output; keys a stage does not know are kept in ``extra`` so a round trip
through any stage loses nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import InputError

Box = tuple[float, float, float, float]
"""[x1, y1, x2, y2] in pixels of the image the record belongs to."""

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Characters a plate text may hold (the OCR model's classes, in class order)."""


NO_REGION_MATCH = "none"
"""``Plate.region_match`` when region rules ran and no format fits the reading."""


def to_box(values: Any) -> Box:
    """Four numbers (a numpy row, a tuple) as a box of floats, unchecked: for boxes a model made."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2)


def as_box(value: Any) -> Box:
    """Check and convert a 4-number sequence to a box; raises ValueError with what is wrong."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise InputError(f"box must be [x1, y1, x2, y2], got {value!r}")
    try:
        x1, y1, x2, y2 = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"box must hold 4 numbers, got {value!r}") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise InputError(f"box holds a non-finite number: {value!r}")
    if x2 < x1 or y2 < y1:
        raise InputError(f"box has x2 < x1 or y2 < y1: {value!r}")
    return (x1, y1, x2, y2)


def _round_box(box: Box, ndigits: int = 2) -> list[float]:
    return [round(v, ndigits) for v in box]


@dataclass
class Char:
    """One character: what it is, where it is, how sure the model was."""

    char: str
    box: Box
    score: float | None = None
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    """Other classes the OCR model gave this box, best first (for region rules)."""
    line: int | None = None
    """Index of the text line (0 = top) once reading order has been applied."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"char": self.char, "box": _round_box(self.box)}
        if self.score is not None:
            out["score"] = round(self.score, 4)
        if self.alternatives:
            out["alternatives"] = [[c, round(s, 4)] for c, s in self.alternatives]
        if self.line is not None:
            out["line"] = self.line
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Char:
        char = d.get("char")
        if not isinstance(char, str) or len(char) != 1:
            raise InputError(f"char must be a single character, got {char!r}")
        score = d.get("score")
        return cls(
            char=char,
            box=as_box(d.get("box")),
            score=None if score is None else float(score),
            alternatives=[(str(c), float(s)) for c, s in d.get("alternatives", [])],
            line=d.get("line"),
        )

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


@dataclass
class Plate:
    """A licence plate: where it is and, when known, what it says.

    Ground truth (a manifest) fills ``box``, ``text``, ``chars`` and ``lines``; a prediction
    also fills the scores, ``candidates`` and, when no text could be read, ``reason``.
    """

    box: Box
    text: str | None = None
    score: float | None = None
    """Confidence of the text (product of character scores, or the track's vote)."""
    det_score: float | None = None
    """Confidence of the plate detector."""
    chars: list[Char] = field(default_factory=list)
    lines: int | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)
    reason: str | None = None
    """Why ``text`` is empty (e.g. 'no characters found'); None when a text was read."""
    track_id: int | None = None
    raw_text: str | None = None
    """The text before it was corrected: with region rules, the model's own reading (in a dataset
    manifest: the upstream label before normalisation)."""
    region_match: str | None = None
    """With region rules: the region whose format ``text`` fits (``us-ca``, ``sk``), or
    :data:`NO_REGION_MATCH` when no format fits and ``text`` is the model's reading; None without rules."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys of the source record this code does not interpret (kept on write)."""

    _KNOWN = (
        "box",
        "text",
        "score",
        "det_score",
        "chars",
        "lines",
        "candidates",
        "reason",
        "track_id",
        "raw_text",
        "region_match",
    )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"box": _round_box(self.box), "text": self.text}
        if self.score is not None:
            out["score"] = round(self.score, 4)
        if self.det_score is not None:
            out["det_score"] = round(self.det_score, 4)
        if self.chars:
            out["chars"] = [c.to_dict() for c in self.chars]
        if self.lines is not None:
            out["lines"] = self.lines
        if self.candidates:
            out["candidates"] = [[t, round(s, 4)] for t, s in self.candidates]
        if self.reason is not None:
            out["reason"] = self.reason
        if self.track_id is not None:
            out["track_id"] = self.track_id
        if self.raw_text is not None:
            out["raw_text"] = self.raw_text
        if self.region_match is not None:
            out["region_match"] = self.region_match
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plate:
        if not isinstance(d, dict):
            raise InputError(f"a plate must be an object, got {type(d).__name__}")
        text = d.get("text")
        if text is not None and not isinstance(text, str):
            raise InputError(f"text must be a string or null, got {text!r}")
        chars = d.get("chars") or []
        if not isinstance(chars, list):
            raise InputError(f"chars must be a list, got {type(chars).__name__}")
        lines = d.get("lines")
        if lines is not None and lines not in (1, 2):
            raise InputError(f"lines must be 1 or 2, got {lines!r}")
        for key in ("raw_text", "region_match"):
            if d.get(key) is not None and not isinstance(d[key], str):
                raise InputError(f"{key} must be a string or null, got {d[key]!r}")
        score, det_score = d.get("score"), d.get("det_score")
        return cls(
            box=as_box(d.get("box")),
            text=text,
            score=None if score is None else float(score),
            det_score=None if det_score is None else float(det_score),
            chars=[Char.from_dict(c) for c in chars],
            lines=lines,
            candidates=[(str(t), float(s)) for t, s in d.get("candidates", [])],
            reason=d.get("reason"),
            track_id=d.get("track_id"),
            raw_text=d.get("raw_text"),
            region_match=d.get("region_match"),
            extra={k: v for k, v in d.items() if k not in cls._KNOWN},
        )

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]
