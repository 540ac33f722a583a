"""Layout in region formats: a ``-`` gap between groups, ``even: true`` for evenly spaced plates.

The gaps are read off the character boxes the shipped OCR model draws: on real old Brazilian crops
(LLL-DDDD, a dash between the groups) and on Mercosur crops our synthesiser draws (LLLDLDD, evenly
spaced; no real Mercosur plate is in the shared data). The decisive case is the one
openalpr_br_endtoend showed: an old plate's 8 read as B fits Mercosur as read; the gap says it is
the old format, so the B is an 8.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import yaml

from data.manifest import read_manifest
from data.split import assign_splits
from data.synth import generate
from evaluate.region_changes import read_plates, select
from evaluate.text import TextRules
from runtime.config import PipelineConfig
from runtime.errors import RulesError
from runtime.pipeline import Predictor
from runtime.records import Char
from runtime.rules import RegionRules, choose, load_rules, spacing

OLD, MERCOSUR = re.compile(r"[A-Z]{3}[0-9]{4}"), re.compile(r"[A-Z]{3}[0-9][A-Z][0-9]{2}")


@pytest.fixture(scope="module")
def predictor():
    with Predictor(config=PipelineConfig(threads=1, workers=1)) as p:
        yield p


def _exact_readings(predictor, manifest, items, fmt):
    """Character lists the model read exactly, of plates whose label fits ``fmt``."""
    out = []
    for r in read_plates(predictor, manifest, items, TextRules()):
        if r.reading is not None and r.reading.text == r.label.text and fmt.fullmatch(r.label.text):
            out.append(r.reading.chars)
    return out


@pytest.fixture(scope="module")
def old_plates(shared_datasets, predictor):
    manifest = read_manifest(shared_datasets / "openalpr_br_crops" / "labels.jsonl")
    assign_splits(manifest.images, {"train": 0.8, "val": 0.1, "test": 0.1}, key="text", seed=0)
    chars = _exact_readings(predictor, manifest, select(manifest, ["train"])[:200], OLD)
    assert len(chars) >= 150, f"only {len(chars)} of 200 real old plates read exactly"
    return chars


@pytest.fixture(scope="module")
def mercosur_plates(tmp_path_factory, predictor):
    out = tmp_path_factory.mktemp("mercosur")
    path = generate("crops", 160, 11, out, styles=["mercosur"], background_manifests=[], progress=False)
    manifest = read_manifest(path)
    chars = _exact_readings(predictor, manifest, manifest.images, MERCOSUR)
    assert len(chars) >= 60, f"only {len(chars)} synthetic Mercosur plates read exactly"
    return chars


def _weights(rules: RegionRules, plates):
    old = np.array([rules.layout_weight((2,), spacing(c)) for c in plates])
    even = np.array([rules.layout_weight((), spacing(c)) for c in plates])
    return old, even


@pytest.mark.shared_data
def test_real_old_plates_show_their_dash_and_mercosur_plates_none(old_plates, mercosur_plates):
    rules = load_rules("br")
    old, even = _weights(rules, old_plates)
    print(
        f"\nold plates ({len(old_plates)}): the gap after 3 agrees (weight > 0.9) "
        f"on {np.mean(old > 0.9):.1%}; "
        f"the old layout outweighs even spacing on {np.mean(old > even):.1%}"
    )
    assert np.mean(old > 0.9) >= 0.95 and np.mean(old > even) >= 0.97
    old, even = _weights(rules, mercosur_plates)
    print(
        f"Mercosur plates ({len(mercosur_plates)}): even spacing agrees on {np.mean(even > 0.9):.1%}; "
        f"it outweighs the old layout on {np.mean(even > old):.1%}"
    )
    assert np.mean(old > 0.9) <= 0.03 and np.mean(even > old) >= 0.95


def _with_b(chars: list[Char]) -> list[Char]:
    """The plate's fifth character (a digit: the truth is 8 now) read as B, 8 the model's second choice."""
    out = list(chars)
    out[4] = replace(out[4], char="B", score=0.6, alternatives=[("8", 0.3)])
    return out


def _evenly(chars: list[Char]) -> list[Char]:
    """The same characters, boxes re-laid at the plate's mean pitch (no gap anywhere)."""
    x0, x1 = chars[0].box[0], chars[-1].box[2]
    width = float(np.median([c.box[2] - c.box[0] for c in chars]))
    pitch = (x1 - x0 - width) / (len(chars) - 1)
    return [
        replace(c, box=(x0 + i * pitch, c.box[1], x0 + i * pitch + width, c.box[3]))
        for i, c in enumerate(chars)
    ]


@pytest.mark.shared_data
def test_the_gap_turns_an_old_plates_b_back_into_8(old_plates):
    rules, fixed, kept = load_rules("br"), 0, 0
    candidates = [c for c in old_plates if c[4].char in "0123456789"]
    for chars in candidates:
        text = "".join(c.char for c in chars)
        misread = _with_b(chars)
        # On the real boxes the dash after the third character wins the 8 back (the old format).
        choice = choose(misread, rules)
        fixed += choice.text == text[:4] + "8" + text[5:] and choice.region == "br"
        # Evenly spaced, the same reading is a Mercosur plate: as read.
        kept += choose(_evenly(misread), rules).text == text[:4] + "B" + text[5:]
    n = len(candidates)
    print(
        f"\n{n} real old plates with the fifth character read as B: {fixed} back to 8 on their own "
        f"boxes, {kept} kept as Mercosur when re-laid evenly"
    )
    assert fixed >= 0.95 * n and kept >= 0.95 * n


@pytest.mark.shared_data
def test_even_boxes_never_override_a_character_the_model_read(old_plates):
    """A reading the model made exactly stays when its boxes say nothing of a dash: spacing outweighs
    a look-alike swap, not the model's own reading."""
    rules = load_rules("br")
    changed = [c for c in old_plates if choose(_evenly(c), rules).text != "".join(x.char for x in c)]
    assert not changed, [("".join(x.char for x in c), choose(_evenly(c), rules).text) for c in changed[:5]]


def test_spacing_says_nothing_of_short_or_two_line_readings():
    chars = [Char(ch, (12.0 * i, 0.0, 12.0 * i + 10, 20.0), score=0.9) for i, ch in enumerate("ABC123")]
    assert spacing(chars[:3]) is None
    two_lines = [replace(c, line=i // 3) for i, c in enumerate(chars)]
    assert spacing(two_lines) is None
    assert np.allclose(spacing(chars), 0.0)


@pytest.mark.parametrize(
    "fmt, problem",
    [
        ({"pattern": "-@@@####"}, "stands between two characters"),
        ({"pattern": "@@@--####"}, "stands between two characters"),
        ({"pattern": "@@@####-"}, "stands between two characters"),
        ({"pattern": "@@@-####", "even": True}, "has gaps"),
        ({"pattern": "@@@####", "even": "yes"}, "even must be true or false"),
    ],
)
def test_bad_layouts_are_refused_with_the_file(tmp_path, fmt, problem):
    f = tmp_path / "xx.yaml"
    f.write_text(yaml.safe_dump({"name": "xx", "formats": [fmt]}))
    with pytest.raises(RulesError, match=re.escape(str(f)) + ".*" + problem):
        load_rules(f)
