"""Text spotting scored as plate reading: a general OCR engine (PaddleOCR, EasyOCR) run on the whole
image finds every text line it can see (the plate, a dealer's sticker, a city name, a shop sign); a
licence plate reader must answer with one text per plate. Two numbers come out of one spotting run:

* **any line** (upper bound): a labelled plate counts as read when *any* line the engine found in
  the image equals its label. No real system can pick that line without knowing the answer.
* **one line** (the honest pick): the engine must choose one line per plate - a line whose box
  overlaps the labelled plate, else its most plate-like line (see :func:`plate_like_rank`) - and
  that line alone is scored against the label, as our end-to-end reading is.

The pick uses the labelled box (as our end-to-end match uses IoU with the label); ``how`` records
whether a line was chosen by overlap or by plate-likeness alone, so a report shows how often the
label's position had to help. Pure functions: no engine, no image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluate.text import Label, TextRules, is_exact
from runtime.records import Box, Plate

OVERLAP, FALLBACK, NO_LINES = "overlap", "plate_like", "no_lines"
"""How a line was picked for a plate: it overlaps the labelled plate; none did, so the image's most
plate-like line was taken; the engine found no text line at all in the image."""


@dataclass(frozen=True)
class PickRules:
    """How the one line is picked (conf/evaluate.yaml ``spotting``)."""

    min_overlap: float = 0.5
    """A line is on the plate when this much of the smaller of the two boxes lies in both."""
    min_chars: int = 4
    max_chars: int = 8
    """A plate-like line holds this many characters after normalising."""


@dataclass(frozen=True)
class LinePick:
    line: Plate | None
    how: str


def quad_to_box(points: Sequence[Sequence[float]]) -> Box:
    """The axis-aligned box (x1, y1, x2, y2) around a text line's polygon (4 corner points)."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))


def overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area: 1.0 when one box lies inside the other. A text line
    on a plate lies inside the plate's box (or the box, drawn tight, inside a line box a little
    larger), which IoU would under-rate when their sizes differ."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(iw * ih / smaller) if smaller > 0 else 0.0


def plate_like_rank(
    text: str | None, score: float | None, rules: TextRules, min_chars: int = 4, max_chars: int = 8
) -> tuple:
    """Sort key, larger = more plate-like: a normalised length within [min_chars, max_chars] first,
    then a mix of letters and digits (almost every plate format has both; a city name or a phone
    number has one kind), then closeness to that length range, then the engine's confidence."""
    norm = rules.normalise(text)
    n = len(norm)
    in_range = min_chars <= n <= max_chars
    mixed = any(c.isdigit() for c in norm) and any(c.isalpha() for c in norm)
    outside = 0 if in_range else (min_chars - n if n < min_chars else n - max_chars)
    return (in_range, mixed, -outside, score or 0.0)


def _best(lines: Sequence[Plate], rules: TextRules, min_chars: int, max_chars: int) -> Plate:
    return max(lines, key=lambda p: plate_like_rank(p.text, p.score, rules, min_chars, max_chars))


def pick_line(
    lines: Sequence[Plate], plate_box: Box | None, rules: TextRules, pick: PickRules | None = None
) -> LinePick:
    """The one line the engine answers with for the plate at ``plate_box``: the most plate-like of
    the lines overlapping it by at least ``pick.min_overlap`` (see :func:`overlap`), else the most
    plate-like line of the whole image. ``plate_box=None`` picks by plate-likeness alone."""
    pick = pick or PickRules()
    texts = [p for p in lines if rules.normalise(p.text)]
    if not texts:
        return LinePick(None, NO_LINES)
    if plate_box is not None:
        on_plate = [p for p in texts if overlap(p.box, plate_box) >= pick.min_overlap]
        if on_plate:
            return LinePick(_best(on_plate, rules, pick.min_chars, pick.max_chars), OVERLAP)
    return LinePick(_best(texts, rules, pick.min_chars, pick.max_chars), FALLBACK)


def any_line_reads(lines: Sequence[Plate], label: Label, rules: TextRules) -> bool:
    """Some line found in the image equals the label (the upper bound: see the module docstring)."""
    return any(is_exact(label, rules.normalise(p.text)) for p in lines)
