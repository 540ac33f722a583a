"""Plate texts as the evaluation compares them: normalisation, look-alike equivalences, partial labels.

* Normalisation: uppercase, keep only the alphabet (0-9A-Z); anything else (spaces, dashes, a
  Chinese province glyph) is dropped from both the label and the reading before comparing.
* Equivalences: groups of characters that compare equal, e.g. ``"O0"`` for US plates, where O and
  0 share one glyph. Every character of a group is mapped to the group's first character, so the
  confusion matrix shows the pair as one class (``O`` stands for O/0).
* Partial labels (uc3m_lp): ``partial_text`` holds ``*`` where a character was masked in the
  source. A masked position accepts any one character; it still counts as a character of the
  plate (a reading that drops it is one character short). See :func:`edit_distance`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import Levenshtein

from evaluate.errors import EvaluateError
from runtime.records import ALPHABET, Plate

MASK = "*"
"""Marks a masked (unknown) character in a partial label."""

MAX_MASKED = 4
"""Labels with more masked characters than this are not scored (the exact wildcard distance
enumerates fillings of the masked positions; beyond a few masks a label says too little)."""


@dataclass(frozen=True)
class Label:
    """A ground-truth text ready to compare: normalised, ``MASK`` at masked positions."""

    text: str
    partial: bool = False

    @property
    def visible(self) -> int:
        return sum(1 for c in self.text if c != MASK)

    @property
    def masked(self) -> int:
        return len(self.text) - self.visible


@dataclass(frozen=True)
class TextRules:
    """How two plate texts are compared (see the module docstring)."""

    equivalences: tuple[str, ...] = ()
    alphabet: str = ALPHABET
    partial_key: str = "partial_text"
    """The plate key holding a partial label when ``text`` is null."""
    masked: str = "wildcard"
    """How masked characters of a partial label are scored: ``wildcard`` - the character is in the
    image but unknown, any one character read there is right; ``visible`` - the character is painted
    over in the image (as in uc3m_lp), so a right reading holds only the visible characters."""
    _canon: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.masked not in ("wildcard", "visible"):
            raise EvaluateError(f"masked must be 'wildcard' or 'visible', got {self.masked!r}")
        canon: dict[str, str] = {}
        for group in self.equivalences:
            group = str(group).upper()
            if len(group) < 2:
                raise EvaluateError(f"an equivalence group needs at least two characters, got {group!r}")
            for c in group:
                if c not in self.alphabet:
                    raise EvaluateError(f"equivalence {group!r}: {c!r} is not in the alphabet")
                if c in canon and canon[c] != group[0]:
                    raise EvaluateError(f"equivalence {group!r}: {c!r} is already in another group")
                canon[c] = group[0]
        object.__setattr__(self, "_canon", canon)

    def normalise(self, text: str | None, keep_mask: bool = False) -> str:
        """Uppercase, alphabet only, equivalent characters mapped to their group's first one."""
        if not text:
            return ""
        out = []
        for c in text.upper():
            if c in self.alphabet:
                out.append(self._canon.get(c, c))
            elif keep_mask and c == MASK:
                out.append(MASK)
        return "".join(out)

    def label(self, plate: Plate) -> Label | None:
        """The plate's label; None when its text is unknown (or nothing of it survives normalising)."""
        if plate.text:
            text = self.normalise(plate.text)
            return Label(text) if text else None
        partial = plate.extra.get(self.partial_key)
        if isinstance(partial, str) and partial:
            text = self.normalise(partial, keep_mask=True)
            if not text or text.count(MASK) == len(text):
                return None
            if self.masked == "visible":
                return Label(text.replace(MASK, ""), partial=True)
            return Label(text, partial=MASK in text)
        return None

    def is_read(self, label: Label, reading: str | None) -> bool:
        """The reading equals the label (masked positions accept any character)."""
        return is_exact(label, self.normalise(reading))


def is_exact(label: Label, reading: str) -> bool:
    """``reading`` (already normalised) has the label's length and its characters where visible."""
    return len(reading) == len(label.text) and all(
        t == MASK or t == r for t, r in zip(label.text, reading, strict=False)
    )


def _fillings(label: Label, reading: str) -> list[str]:
    """Every way to fill the masked positions that can matter: with a character of the reading
    (aligned to it) or with the mask itself (never in a reading: the masked character is lost)."""
    if not label.partial:
        return [label.text]
    slots = [i for i, c in enumerate(label.text) if c == MASK]
    if len(slots) > MAX_MASKED:
        raise EvaluateError(
            f"label {label.text!r} has {len(slots)} masked characters (at most {MAX_MASKED} are scored)"
        )
    choices = sorted(set(reading)) + [MASK]
    out = []
    for fill in itertools.product(choices, repeat=len(slots)):
        chars = list(label.text)
        for i, c in zip(slots, fill, strict=False):
            chars[i] = c
        out.append("".join(chars))
    return out


def _best_filling(label: Label, reading: str) -> tuple[str, int]:
    best, best_d = label.text, None
    for filled in _fillings(label, reading):
        d = Levenshtein.distance(filled, reading)
        if best_d is None or d < best_d:
            best, best_d = filled, d
    return best, int(best_d)


def edit_distance(label: Label, reading: str) -> int:
    """Levenshtein distance (rapidfuzz) from the label to a normalised reading.

    For a partial label a masked position matches any character at no cost; deleting it costs 1.
    That is the minimum, over every filling of the masked positions, of the ordinary distance
    (a masked position aligned to a read character is filled with that character), which is
    computed exactly by trying the fillings that can matter.
    """
    return _best_filling(label, reading)[1]


def align(label: Label, reading: str) -> list[tuple[str, str]]:
    """(truth, read) character pairs of the minimum-edit alignment: ``""`` as truth is an extra
    character read, ``""`` as read a character missed. Masked label positions are left out (their
    truth is unknown)."""
    filled, _ = _best_filling(label, reading)
    pairs: list[tuple[str, str]] = []
    for op in Levenshtein.opcodes(filled, reading):
        src = list(range(op.src_start, op.src_end))
        dst = list(range(op.dest_start, op.dest_end))
        if op.tag in ("equal", "replace"):
            pairs += [(label.text[i], reading[j]) for i, j in zip(src, dst, strict=False)]
            # opcodes pair replace blocks one to one; any unequal tail is a deletion or insertion
            pairs += [(label.text[i], "") for i in src[len(dst) :]]
            pairs += [("", reading[j]) for j in dst[len(src) :]]
        elif op.tag == "delete":
            pairs += [(label.text[i], "") for i in src]
        elif op.tag == "insert":
            pairs += [("", reading[j]) for j in dst]
    return [(t, r) for t, r in pairs if t != MASK]


@dataclass(frozen=True)
class OcrScore:
    """One plate's reading scored against its label."""

    exact: bool
    distance: int
    length: int
    """Characters in the label (masked ones included: they are characters on the plate)."""
    pairs: tuple[tuple[str, str], ...]


def score_reading(rules: TextRules, label: Label, reading: str | None) -> OcrScore:
    read = rules.normalise(reading)
    return OcrScore(
        exact=is_exact(label, read),
        distance=edit_distance(label, read),
        length=len(label.text),
        pairs=tuple(align(label, read)),
    )


def equivalences_from(value: Sequence[str] | str | None) -> tuple[str, ...]:
    """Accept ``[O0, I1]``, ``"O0"`` or ``None`` from a config."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)
