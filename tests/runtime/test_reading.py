"""Reading order and region rules: pure functions over hand-made character records."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from runtime.config import PipelineConfig
from runtime.pipeline import plate_from_reading
from runtime.reading import (
    drop_weak_edge,
    group_lines,
    overlap_of_smaller,
    read_chars,
    suppress_duplicates,
    weak_insertions,
)
from runtime.records import Char, Plate
from runtime.rules import (
    RegionRules,
    RulesError,
    apply_text,
    available_regions,
    candidates,
    compile_pattern,
    load_rules,
)


def row(
    text: str,
    x0: float,
    y0: float,
    w: float = 10,
    h: float = 20,
    gap: float = 2,
    slope: float = 0.0,
    score: float = 0.9,
) -> list[Char]:
    """Characters of one line laid out left to right; ``slope`` shifts each one down (a tilted plate)."""
    return [
        Char(
            char=ch,
            box=(x0 + i * (w + gap), y0 + i * slope, x0 + i * (w + gap) + w, y0 + i * slope + h),
            score=score,
        )
        for i, ch in enumerate(text)
    ]


def shuffled(chars: list[Char]) -> list[Char]:
    return [chars[i] for i in sorted(range(len(chars)), key=lambda i: (i * 7919) % len(chars))]


def test_one_line_reads_left_to_right_whatever_the_input_order():
    r = read_chars(shuffled(row("ABC1234", 5, 5)))
    assert (r.text, r.lines) == ("ABC1234", 1)
    assert [c.line for c in r.chars] == [0] * 7
    assert r.score == pytest.approx(0.9**7)


@pytest.mark.parametrize("slope", [2.5, -2.5, 6.0, -6.0])
def test_tilted_line_stays_one_line(slope):
    # slope 6: the line drifts by 36 px, almost twice its 20 px height, from end to end (about 27 deg)
    r = read_chars(shuffled(row("ABC1234", 0, 100, slope=slope)))
    assert (r.text, r.lines) == ("ABC1234", 1)


def test_tilted_two_line_plate():
    top = row("ABC", 20, 0, w=8, h=12, slope=2)
    bottom = row("12345", 8, 16, w=10, h=20, slope=2)
    r = read_chars(shuffled(top + bottom))
    assert (r.text, r.lines) == ("ABC12345", 2)


def test_two_line_plate_reads_top_line_first():
    # A square plate: small letters on top, digits below; left-to-right sorting would interleave them.
    top = row("AB", 22, 2, w=8, h=12)
    bottom = row("1234", 10, 18, w=10, h=20)
    r = read_chars(shuffled(top + bottom))
    assert (r.text, r.lines) == ("AB1234", 2)
    assert [c.line for c in r.chars] == [0, 0, 1, 1, 1, 1]
    naive = "".join(c.char for c in sorted(top + bottom, key=lambda c: c.center[0]))
    assert naive != r.text  # the bug this order fixes


def test_more_groups_than_max_lines_are_merged_into_the_nearest_line():
    top = row("AB", 0, 0)
    middle = row("CD", 0, 30)
    stray = [Char(char="X", box=(40, 33, 48, 50), score=0.5)]  # overlaps the middle line only partly
    bottom = row("12", 0, 80)
    groups = group_lines(top + middle + bottom, 0.5, max_lines=2)
    assert len(groups) == 2
    r = read_chars(top + middle + stray + bottom, PipelineConfig(max_lines=2))
    assert r.lines == 2 and sorted(r.text) == sorted("ABCDX12")


def test_overlapping_duplicates_are_merged_into_alternatives():
    chars = row("AB1", 0, 0)
    dup = Char(char="8", box=(12.5, 0.5, 22.5, 20.5), score=0.6)  # the same glyph as "B", another class
    same = Char(char="1", box=(24, 0, 34, 20), score=0.3)  # the same class twice
    r = read_chars(chars + [dup, same])
    assert r.text == "AB1"
    b = r.chars[1]
    assert b.char == "B" and b.alternatives == [("8", 0.6)]
    assert len(r.chars) == 3


def test_duplicate_suppression_keeps_the_better_score():
    a = Char(char="O", box=(0, 0, 10, 20), score=0.4)
    b = Char(char="0", box=(1, 0, 11, 20), score=0.8)
    kept = suppress_duplicates([a, b], 0.7)
    assert len(kept) == 1 and kept[0].char == "0" and kept[0].alternatives == [("O", 0.4)]
    assert a.alternatives == [] and b.alternatives == []  # inputs untouched


def test_overlap_of_smaller():
    assert overlap_of_smaller((0, 0, 10, 10), (2, 2, 5, 5)) == 1.0
    assert overlap_of_smaller((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
    assert overlap_of_smaller((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(0.5)


def test_no_characters_reads_empty_text():
    r = read_chars([])
    assert (r.text, r.lines, r.chars, r.score) == ("", 0, [], None)


def test_reading_survives_a_round_trip_through_the_plate_record():
    r = read_chars(row("AB", 22, 2, w=8, h=12) + row("1234", 10, 18))
    plate = Plate(box=(0, 0, 60, 40), text=r.text, score=r.score, chars=r.chars, lines=r.lines)
    again = Plate.from_dict(plate.to_dict())
    assert again.text == "AB1234" and again.lines == 2 and [c.line for c in again.chars] == [0, 0, 1, 1, 1, 1]


# -- region rules ------------------------------------------------------------------------------------


def test_compile_pattern():
    p = compile_pattern("@@@#[A-C]##")
    assert p.fullmatch("ABC1B23") and not p.fullmatch("ABC1D23") and not p.fullmatch("ABC1B2")
    assert compile_pattern("B##@@@").fullmatch("B12XYZ")
    assert compile_pattern("AB-12").fullmatch("AB12")  # '-' is a gap between groups, no character
    with pytest.raises(RulesError, match="neither"):
        compile_pattern("AB_12")
    with pytest.raises(RulesError, match="without"):
        compile_pattern("[AB")


def test_lookalike_swap_makes_the_text_fit_the_pattern():
    rules = RegionRules(name="br", patterns=["@@@####"])
    chars = row("ABC12O4", 0, 0)  # an O among the digits
    cands = candidates(chars, rules, top_n=5)
    assert cands[0][0] == "ABC1204"
    assert cands[0][1] == pytest.approx(0.9**7 * 0.5)  # the swap costs lookalike_score
    assert ("ABC12O4", pytest.approx(0.9**7)) in [
        (t, s) for t, s in cands
    ]  # the raw reading stays a candidate
    fixed = apply_text(chars, cands[0][0], rules)
    assert "".join(c.char for c in fixed) == "ABC1204"
    assert fixed[5].score == pytest.approx(0.45) and ("O", 0.9) in fixed[5].alternatives


def test_model_alternatives_beat_lookalikes_and_candidates_are_ranked():
    rules = RegionRules(name="x", patterns=["@@@#@##"])
    chars = row("ABC1D23", 0, 0)
    chars[4] = Char(char="0", box=chars[4].box, score=0.6, alternatives=[("D", 0.35), ("Q", 0.1)])
    cands = candidates(chars, rules, top_n=3)
    assert cands[0][0] == "ABC1D23"  # matches the pattern, via the model's alternative D (0.35 > O's 0.3)
    # Then the other pattern match (the O look-alike of 0), then the raw reading that matches nothing.
    assert [t for t, _ in cands] == ["ABC1D23", "ABC1O23", "ABC1023"]
    assert cands[1][1] < cands[2][1]


def test_without_rules_candidates_come_from_model_alternatives_only():
    chars = row("AB", 0, 0)
    chars[1] = Char(char="B", box=chars[1].box, score=0.7, alternatives=[("8", 0.2)])
    cands = candidates(chars, None, top_n=5)
    assert [t for t, _ in cands] == ["AB", "A8"]
    assert cands[0][1] == pytest.approx(0.9 * 0.7)
    assert candidates([], None) == []


def test_no_pattern_match_keeps_the_best_reading_first():
    rules = RegionRules(name="x", patterns=["####"])
    cands = candidates(row("ABCDEF", 0, 0), rules)
    assert cands[0][0] == "ABCDEF"


def test_shipped_region_files_load_and_match_real_formats():
    assert {"br", "es", "ro"} <= set(available_regions())
    assert load_rules("br").matches("ABC1234") and load_rules("br").matches("ABC1D23")
    assert load_rules("es").matches("1234BCD") and not load_rules("es").matches("1234ABC")  # no vowels
    assert load_rules("ro").matches("CJ12ABC") and load_rules("ro").matches("B123ABC")


def test_bad_rules_files_name_the_file(tmp_path):
    with pytest.raises(RulesError, match="no region rules named 'atlantis'"):
        load_rules("atlantis")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\npatterns: ['@@!#']\n")
    with pytest.raises(RulesError, match=f"{bad}.*'!'"):
        load_rules(bad)
    bad.write_text("name: bad\npaterns: ['@@##']\n")
    with pytest.raises(RulesError, match="unknown keys"):
        load_rules(bad)
    bad.write_text("patterns: [unclosed\n")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules(bad)
    good = tmp_path / "mine.yaml"
    good.write_text("patterns: ['##@@']\nlookalikes: [[D, '0']]\nlookalike_score: 0.25\n")
    rules = load_rules(good)
    assert rules.name == "mine" and rules.partners("D") == {"0"} and rules.lookalike_score == 0.25
    assert math.isclose(candidates(row("D1AB", 0, 0), rules)[0][1], 0.9**4 * 0.25)


EDGE = PipelineConfig(edge_char_score=0.6)  # off by default: the measured setting


def _edge(reading):
    return drop_weak_edge(reading, EDGE)


@pytest.mark.parametrize("end", ["first", "last"])
def test_a_weak_character_at_either_end_is_left_out_and_the_raw_text_kept(end):
    chars = row("4ABC123", 0, 0, w=20, h=40)  # a county number / sticker read beside the number
    i = 0 if end == "first" else len(chars) - 1
    chars[i] = Char(char=chars[i].char, box=chars[i].box, score=0.3)
    reading, dropped = _edge(read_chars(chars))
    assert dropped is not None and dropped.char == chars[i].char
    assert reading.text == ("ABC123" if end == "first" else "4ABC12")
    assert reading.raw_text == "".join(c.char for c in chars)
    assert reading.score == pytest.approx(0.9**6) and len(reading.chars) == 6 and reading.lines == 1
    plate = plate_from_reading((0, 0, 200, 50), 0.9, reading, [], EDGE)
    assert plate.text == reading.text and plate.raw_text == reading.raw_text  # nothing is lost


@pytest.mark.parametrize(
    "why,change",
    [
        ("in the middle", lambda c: c[:3] + [Char(char=c[3].char, box=c[3].box, score=0.3)] + c[4:]),
        (
            "every score low (a hard plate, not an extra character)",
            lambda c: [Char(char=x.char, box=x.box, score=0.4) for x in c],
        ),
        (
            "a plate too small for scores to mean much",
            lambda c: [
                Char(char="4", box=(0, 0, 5, 10), score=0.3),
                *row("ABC123", 7, 0, w=5, h=10),
            ],
        ),
        ("scoring well enough", lambda c: [Char(char="4", box=c[0].box, score=0.7), *c[1:]]),
    ],
)
def test_a_character_is_kept_when_it_is_not_a_weak_end(why, change):
    chars = change(row("4ABC123", 0, 0, w=20, h=40))
    reading, dropped = _edge(read_chars(chars))
    assert dropped is None and reading.raw_text is None, why
    assert len(reading.text) == 7


def test_edge_rule_off_and_short_readings_keep_every_character():
    chars = row("4ABC123", 0, 0, w=20, h=40)
    chars[0] = Char(char="4", box=chars[0].box, score=0.1)
    assert drop_weak_edge(read_chars(chars), PipelineConfig(edge_char_score=0.0))[1] is None  # off
    short = row("4AB", 0, 0, w=20, h=40)
    short[0] = Char(char="4", box=short[0].box, score=0.1)
    assert _edge(read_chars(short))[1] is None  # three characters stay three


def test_two_line_plate_loses_only_its_weak_end_and_keeps_its_lines():
    chars = row("AB", 0, 0, w=20, h=40) + row("12345", 0, 50, w=20, h=40)
    chars[-1] = Char(char="5", box=chars[-1].box, score=0.2)
    reading, dropped = _edge(read_chars(chars))
    assert reading.text == "AB1234" and reading.lines == 2 and dropped is not None
    assert [c.line for c in reading.chars] == [0, 0, 1, 1, 1, 1]


def test_region_rules_put_back_a_left_out_character_a_format_needs():
    rules = RegionRules(name="br", patterns=["@@@####"])
    chars = row("ABC1234", 0, 0, w=20, h=40)
    chars[0] = Char(char="A", box=chars[0].box, score=0.35)  # a real letter, read weakly
    reading, dropped = _edge(read_chars(chars))
    assert reading.text == "BC1234" and dropped is not None
    weak = weak_insertions(reading.chars, [dropped])
    plate = plate_from_reading((0, 0, 200, 50), 0.9, reading, weak, EDGE, rules)
    assert plate.text == "ABC1234" and plate.raw_text == "ABC1234" and plate.region_match == "br"
    # Without a format to say otherwise the plate reads without it, and says what the model read.
    bare = plate_from_reading((0, 0, 200, 50), 0.9, reading, weak, EDGE)
    assert bare.text == "BC1234" and bare.raw_text == "ABC1234"


@pytest.mark.parametrize("slope", [4.0, -4.0, 8.0, -8.0])
def test_tilted_line_stays_one_line_across_a_gap(slope):
    # A Spanish 1234 BCD at an angle: the letters start a whole character height above (or below)
    # the last digit, so the neighbour alone would start a second line and read BCD1234.
    digits = row("1234", 0, 100, slope=slope)
    letters = row("BCD", 4 * 12 + 30, 100 + (4 * 12 + 30) / 12 * slope, slope=slope)
    assert abs(letters[0].box[1] - digits[-1].box[1]) > 0.5 * 20  # the gap breaks the neighbour overlap
    r = read_chars(shuffled(digits + letters))
    assert (r.text, r.lines) == ("1234BCD", 1)


def test_a_lone_character_before_a_gap_joins_the_line_it_lies_on():
    # 9 [masked] 59SZ, tilted: the 9 alone shows no slope; it lies beside the line, on its straight line.
    lone = row("9", 0, 100, slope=-6)
    rest = row("59SZ", 36, 100 - 18, slope=-6)  # one character width of gap: the line rose 18 px
    r = read_chars(shuffled(lone + rest))
    assert (r.text, r.lines) == ("959SZ", 1)


def test_real_plates_read_in_their_labelled_order(shared_datasets):
    """Every uc3m_lp_crops plate, from its labelled character boxes (tilted crops, two masked
    characters making gaps, 31 two-line plates), reads in the label's order with its line count."""
    from data.manifest import read_manifest

    manifest = read_manifest(shared_datasets / "uc3m_lp_crops" / "labels.jsonl")
    wrong, lines = [], {1: 0, 2: 0}
    for item, plate in manifest.plates:
        label = "".join(c.char for c in plate.chars)
        reading = read_chars([replace(c, score=0.9) for c in plate.chars])
        lines[reading.lines] += 1
        if reading.text != label:
            wrong.append(f"{item.image}: {label} read as {reading.text}")
    assert len(manifest) > 2000
    assert wrong == [], f"{len(wrong)} of {len(manifest)} in the wrong order: {wrong[:5]}"
    # The two-row plates (uc3m's plate_type B) are the ones read as two lines.
    two_row = sum(1 for _, plate in manifest.plates if plate.extra.get("plate_type") == "B")
    assert two_row > 0 and lines == {1: len(manifest) - two_row, 2: two_row}
