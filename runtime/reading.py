"""Reading order: characters found on a plate -> lines -> text. Pure functions over records.

Plain left-to-right sorting reads a two-line plate as one interleaved line (the most reported bug
of plate readers), so characters are first grouped into lines by vertical overlap with their
left neighbour, lines are read top to bottom and each line left to right. Two detections of one
character (the same glyph seen as two classes, or a box split in two) are merged before, keeping
the better one and offering the other as an alternative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from runtime.config import PipelineConfig
from runtime.records import Box, Char

DEFAULTS = PipelineConfig()
"""The reading-order settings used when a caller gives none (the runtime's defaults)."""


@dataclass
class Reading:
    """What a plate says, from its characters."""

    text: str
    chars: list[Char]
    """In reading order, each with its ``line`` index."""
    lines: int
    score: float | None
    """Product of the character scores (None without scores; 0 lines -> None)."""
    raw_text: str | None = None
    """The model's text when a character was left out of ``text`` (:func:`drop_weak_edge`)."""


def overlap_of_smaller(a: Box, b: Box) -> float:
    """Intersection area over the smaller box's area (1.0 when one box lies inside the other)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return (iw * ih) / smaller if smaller > 0 else 0.0


def _score(c: Char) -> float:
    return 0.0 if c.score is None else c.score


def _with_alternative(kept: Char, other: Char) -> Char:
    """``kept`` offering ``other``'s class as an alternative (best score per class, best first)."""
    if other.char == kept.char:
        return kept
    alts = dict(kept.alternatives)
    for ch, score in [(other.char, _score(other)), *other.alternatives]:
        if ch != kept.char and score > alts.get(ch, -1.0):
            alts[ch] = score
    return replace(kept, alternatives=sorted(alts.items(), key=lambda kv: -kv[1]))


def suppress_duplicates(chars: list[Char], min_overlap: float) -> list[Char]:
    """Merge characters overlapping by ``min_overlap`` of the smaller box: the best-scored one stays
    and the others' classes become its alternatives. Returns new records, best score first."""
    kept: list[Char] = []
    for c in sorted(chars, key=lambda c: -_score(c)):
        for i, k in enumerate(kept):
            if overlap_of_smaller(c.box, k.box) >= min_overlap:
                kept[i] = _with_alternative(k, c)
                break
        else:
            kept.append(replace(c, alternatives=list(c.alternatives)))
    return kept


def _vertical_overlap(y1: float, y2: float, ly1: float, ly2: float) -> float:
    """Vertical overlap over the shorter of the two heights."""
    shorter = min(y2 - y1, ly2 - ly1)
    if shorter <= 0:
        return 1.0 if (ly1 <= y1 <= ly2) else 0.0
    return max(0.0, min(y2, ly2) - max(y1, ly1)) / shorter


def _line_fit(line: list[Char], max_slope: float) -> tuple[float, float, float]:
    """(slope, centre x, centre y) of the straight line through a text line's character centres,
    least squares, the slope clamped to ``max_slope``; one character: flat through it."""
    xs = [c.center[0] for c in line]
    ys = [c.center[1] for c in line]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx > 0 else 0.0
    return max(-max_slope, min(max_slope, slope)), mx, my


def _beside(line: list[Char], other: list[Char], min_overlap: float, max_slope: float) -> bool:
    """Whether ``other`` lies wholly left or right of ``line`` and on its straight line: each of
    its characters overlaps, by ``min_overlap``, a box of ``line``'s median height centred where
    the line runs at that character's x."""
    if len(line) < 2:
        return False
    left, right = min(c.box[0] for c in line), max(c.box[2] for c in line)
    if not (max(c.box[2] for c in other) <= left or min(c.box[0] for c in other) >= right):
        return False
    slope, mx, my = _line_fit(line, max_slope)
    heights = sorted(c.box[3] - c.box[1] for c in line)
    half = heights[len(heights) // 2] / 2
    for c in other:
        cy = my + slope * (c.center[0] - mx)
        if _vertical_overlap(c.box[1], c.box[3], cy - half, cy + half) < min_overlap:
            return False
    return True


def group_lines(
    chars: list[Char], min_overlap: float, max_lines: int = 2, max_slope: float = 1.0
) -> list[list[Char]]:
    """Characters grouped into text lines, top line first, each line left to right.

    Characters are taken left to right; each joins the line it overlaps most vertically (by at
    least ``min_overlap`` of the shorter height), otherwise it starts a new line. A line is where
    its rightmost character is, or where the straight line through its characters' centres
    (slope at most ``max_slope``) puts a character of that height at the newcomer's x, whichever
    overlaps more. The neighbour keeps a tilted plate on one line (each character overlaps the
    previous one although the line drifts by more than its height); the straight line carries it
    across a gap, where a tilted plate's next group starts higher or lower than the last character
    (a Spanish 1234 BCD seen at an angle, a masked or missing character). More than ``max_lines``
    groups are merged pairwise, closest centres first.
    """
    lines: list[list[Char]] = []
    for c in sorted(chars, key=lambda c: (c.center[0], c.center[1])):
        best, best_overlap = None, min_overlap
        for line in lines:
            last = line[-1]
            ov = _vertical_overlap(c.box[1], c.box[3], last.box[1], last.box[3])
            if len(line) > 1:
                slope, mx, my = _line_fit(line, max_slope)
                cy = my + slope * (c.center[0] - mx)
                half = (last.box[3] - last.box[1]) / 2
                ov = max(ov, _vertical_overlap(c.box[1], c.box[3], cy - half, cy + half))
            if ov >= best_overlap:
                best, best_overlap = line, ov
        if best is None:
            lines.append([c])
        else:
            best.append(c)

    # A group cut off by a gap before the line could show its slope (one character, then a
    # masked or missing one) lies beside the line, not above or below it: it joins the line when
    # their extents do not overlap and the line's straight line runs through its characters.
    merged = True
    while merged and len(lines) > 1:
        merged = False
        for a in sorted(lines, key=len, reverse=True):
            for b in lines:
                if b is a or len(b) > len(a) or not _beside(a, b, min_overlap, max_slope):
                    continue
                a.extend(b)
                a.sort(key=lambda m: m.center[0])
                lines.remove(b)
                merged = True
                break
            if merged:
                break

    def centre_y(line: list[Char]) -> float:
        return sum(m.center[1] for m in line) / len(line)

    lines.sort(key=centre_y)
    while len(lines) > max(1, max_lines):
        gaps = [centre_y(lines[i + 1]) - centre_y(lines[i]) for i in range(len(lines) - 1)]
        i = gaps.index(min(gaps))
        lines[i : i + 2] = [lines[i] + lines[i + 1]]
    return [sorted(line, key=lambda c: c.center[0]) for line in lines]


def in_reading_order(chars: list[Char], config: PipelineConfig = DEFAULTS) -> list[Char]:
    """The characters (none merged) top line first, each line left to right, each with its ``line``.

    ``config`` gives the line settings (``line_overlap``, ``max_lines``, ``line_max_slope``)."""
    lines = group_lines(list(chars), config.line_overlap, config.max_lines, config.line_max_slope)
    return [replace(c, line=i) for i, line in enumerate(lines) for c in line]


def read_chars(chars: list[Char], config: PipelineConfig = DEFAULTS) -> Reading:
    """Duplicates merged (``config.dup_overlap``), lines grouped, text read top to bottom, left to right."""
    if not chars:
        return Reading(text="", chars=[], lines=0, score=None)
    ordered = in_reading_order(suppress_duplicates(chars, config.dup_overlap), config)
    scores = [c.score for c in ordered]
    known = [s for s in scores if s is not None]
    score = math.prod(known) if len(known) == len(scores) else None
    lines = 1 + max(c.line or 0 for c in ordered)  # every character has its line once ordered
    return Reading(text="".join(c.char for c in ordered), chars=ordered, lines=lines, score=score)


def drop_weak_edge(reading: Reading, config: PipelineConfig = DEFAULTS) -> tuple[Reading, Char | None]:
    """The reading without its weaker end character when that one is not part of the plate's
    number: it scores below ``config.edge_char_score`` (0: the rule is off) and below
    ``edge_char_ratio`` times the median score of the others, and those others are at least
    ``edge_char_min_height`` image pixels tall (on a smaller plate every score is low and one weak
    character says little). Returns the reading (``raw_text`` set when one was
    left out) and the character left out, or None.

    Why: a sticker, tab, county number or frame text beside the plate's number is read as an extra
    character at one end, and the OCR model scores it clearly below the characters it knows
    (measured on the training crops: docs/runtime.md, "Weak end characters")."""
    chars = reading.chars
    max_score, ratio, min_height = config.edge_char_score, config.edge_char_ratio, config.edge_char_min_height
    if max_score <= 0 or len(chars) < 4 or any(c.score is None for c in chars):
        return reading, None
    scores = [float(c.score) for c in chars]  # type: ignore[arg-type]
    i = 0 if scores[0] <= scores[-1] else len(chars) - 1
    others = [j for j in range(len(chars)) if j != i]
    median_score = sorted(scores[j] for j in others)[len(others) // 2]
    median_height = sorted(chars[j].box[3] - chars[j].box[1] for j in others)[len(others) // 2]
    if scores[i] >= max_score or scores[i] >= ratio * median_score or median_height < min_height:
        return reading, None
    kept = chars[:i] + chars[i + 1 :]
    renumber = {old: new for new, old in enumerate(sorted({c.line or 0 for c in kept}))}
    kept = [replace(c, line=renumber[c.line or 0]) for c in kept]
    return (
        Reading(
            text="".join(c.char for c in kept),
            chars=kept,
            lines=len(renumber),
            score=math.prod(scores[j] for j in others),
            raw_text=reading.text,
        ),
        chars[i],
    )


def weak_insertions(
    ordered: list[Char], weak: list[Char], min_height: float = 0.6, max_overlap: float = 0.3
) -> list[tuple[int, Char]]:
    """Where weak characters (detections below the OCR threshold) would go in ``ordered`` (the
    read characters, in reading order with ``line``): (index to insert before, character) pairs.

    A weak character counts only when it sits on a line (its centre within half that line's height
    of the line's centre), is about as tall as the line's characters (``min_height`` of their
    median height: a screw or a sticker's edge is not a character) and does not cover a read
    character (``max_overlap`` of the smaller box)."""
    if not ordered or not weak:
        return []
    lines: dict[int, list[int]] = {}
    for i, c in enumerate(ordered):
        lines.setdefault(c.line or 0, []).append(i)
    out = []
    for w in weak:
        if any(overlap_of_smaller(w.box, c.box) > max_overlap for c in ordered):
            continue
        wy, wh = (w.box[1] + w.box[3]) / 2, w.box[3] - w.box[1]
        for line, idx in lines.items():
            heights = sorted(ordered[i].box[3] - ordered[i].box[1] for i in idx)
            height = heights[len(heights) // 2]
            cy = sum((ordered[i].box[1] + ordered[i].box[3]) / 2 for i in idx) / len(idx)
            if abs(wy - cy) <= height / 2 and wh >= min_height * height:
                wx = (w.box[0] + w.box[2]) / 2
                at = next((i for i in idx if (ordered[i].box[0] + ordered[i].box[2]) / 2 > wx), idx[-1] + 1)
                out.append((at, replace(w, line=line)))
                break
    return out
