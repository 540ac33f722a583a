"""Region rules on hand-made character records: priors, free-form plates, drop and insert
candidates, umbrellas, the plate record's raw_text / region_match, and malformed region files."""

from __future__ import annotations

import json

import pytest

from runtime.reading import read_chars, weak_insertions
from runtime.records import NO_REGION_MATCH, Char, Plate
from runtime.rules import PlateFormat, RegionMemory, RegionRules, RulesError, choose, load_rules
from runtime.tracking import TrackReading, vote


def line(
    text: str, scores: dict[int, float] | None = None, alts: dict[int, list] | None = None
) -> list[Char]:
    """One line of characters 10 px apart; score 0.9 unless ``scores`` says otherwise."""
    scores, alts = scores or {}, alts or {}
    return [
        Char(ch, (12.0 * i, 0.0, 12.0 * i + 10, 20.0), score=scores.get(i, 0.9), alternatives=alts.get(i, []))
        for i, ch in enumerate(text)
    ]


def test_a_fitting_reading_is_kept_and_names_its_region():
    c = choose(line("ABC1234"), load_rules("br"))
    assert c.text == "ABC1234" and c.region == "br" and c.edit is None
    assert c.chars == line("ABC1234")


def test_priors_send_an_ambiguous_reading_to_the_likelier_format():
    chars = line("812", alts={0: [("B", 0.8)]})
    digits_first = RegionRules("x", formats=[PlateFormat("###", prior=9), PlateFormat("@##", prior=1)])
    letter_first = RegionRules("x", formats=[PlateFormat("###", prior=1), PlateFormat("@##", prior=9)])
    assert choose(chars, digits_first).text == "812"
    assert choose(chars, letter_first).text == "B12"


def test_drop_removes_a_weak_extra_character_and_keeps_the_raw_reading():
    # Arizona 123ABC read with the state emblem as a leading 4.
    chars = line("4176NWN", scores={0: 0.39})
    c = choose(chars, load_rules("us-az"))
    assert (c.text, c.edit, c.region) == ("176NWN", "drop", "us-az")
    assert c.kept == (1, 2, 3, 4, 5, 6) and c.chars == chars[1:]
    assert c.score == pytest.approx(0.9**6 * (1 - 0.39))
    confident = choose(line("4176NWN", scores={0: 0.95}), load_rules("us-az"))
    assert confident.text == "4176NWN" and confident.region is None  # drop_max_score: never a sure one


def test_insert_adds_a_weak_character_where_one_is_missing():
    chars = line("BC1234")
    weak = Char("A", (-12.0, 0.0, -2.0, 20.0), score=0.15, line=0)
    reading = read_chars(chars)
    spots = weak_insertions(reading.chars, [weak])
    assert [at for at, _ in spots] == [0]
    c = choose(reading.chars, load_rules("br"), weak=spots)
    assert (c.text, c.edit, c.kept[0]) == ("ABC1234", "insert", None)
    assert c.chars[0].char == "A" and c.chars[0].score == pytest.approx(0.15)
    # Without weak characters nothing fits, and the model's reading stands.
    assert choose(reading.chars, load_rules("br")).text == "BC1234"


def test_weak_characters_off_the_line_or_on_a_read_one_are_not_offered():
    reading = read_chars(line("BC1234"))
    below = Char("A", (-12.0, 40.0, -2.0, 60.0), score=0.15)
    tiny = Char("A", (-12.0, 8.0, -8.0, 12.0), score=0.15)
    covering = Char("A", (1.0, 0.0, 11.0, 20.0), score=0.15)
    assert weak_insertions(reading.chars, [below, tiny, covering]) == []


def test_free_form_keeps_a_vanity_plate_that_only_a_blind_swap_would_fit():
    # CUSTOM read as CUST0M: S -> 5 (a look-alike the model did not offer) would fit Missouri-like
    # shapes; US plates are often vanity, so the reading stays as read.
    rules = RegionRules("x", formats=[PlateFormat("@@#@#@")], free_form=0.7)
    kept = choose(line("CUST0M"), rules)
    assert kept.text == "CUST0M" and kept.region is None
    strict = RegionRules("x", formats=[PlateFormat("@@#@#@")], free_form=0.0)
    assert choose(line("CUST0M"), strict).text == "CU5T0M"
    # The model's own alternative is evidence enough.
    offered = choose(line("CUST0M", alts={2: [("5", 0.85)]}), rules)
    assert offered.text == "CU5T0M" and offered.region == "x"


def test_umbrella_takes_the_best_reading_of_any_member_and_reports_it():
    us = load_rules("us")
    # Missouri AB1C2D with the 2 read as Z: only Missouri's format fits, after the swap.
    c = choose(line("DE8YZA", alts={4: [("2", 0.8)]}), us)
    assert (c.text, c.region) == ("DE8Y2A", "us-mo")
    assert us.free_form == pytest.approx(0.7)  # the members' average
    auto = load_rules("auto")
    assert 0 < auto.free_form < 0.7 and set(us.regions) < set(auto.regions)


def test_a_reading_that_fits_nothing_keeps_the_model_text_and_says_so():
    c = choose(line("HELLOWORLD"), load_rules("auto"))
    assert c.text == "HELLOWORLD" and c.region is None and c.edit is None


def test_plate_record_serialises_raw_text_and_region_match():
    plate = Plate(box=(0, 0, 10, 5), text="176NWN", raw_text="4176NWN", region_match="us-az")
    d = json.loads(json.dumps(plate.to_dict()))
    assert d["raw_text"] == "4176NWN" and d["region_match"] == "us-az"
    back = Plate.from_dict(d)
    assert (back.raw_text, back.region_match, back.extra) == ("4176NWN", "us-az", {})
    none = Plate(box=(0, 0, 10, 5), text="HELLO", raw_text="HELLO", region_match=NO_REGION_MATCH)
    assert none.to_dict()["region_match"] == "none"
    assert "region_match" not in Plate(box=(0, 0, 1, 1), text="A").to_dict()
    with pytest.raises(ValueError, match="region_match"):
        Plate.from_dict({"box": [0, 0, 1, 1], "region_match": 3})


def test_video_vote_uses_the_umbrella_and_reports_the_member():
    us = load_rules("us")

    def reading(chars: list[Char]) -> TrackReading:
        # As the video pipeline makes them: each frame's plate already went through the rules.
        c = choose(chars, us)
        return TrackReading(frame=0, text=c.text, score=c.score, chars=c.chars, box=(0, 0, 100, 20))

    v = vote([reading(line("4176NWN", {0: 0.39})) for _ in range(3)], us)
    assert v.text == "176NWN" and v.region == "us-ar"  # ###ABC: a state writing it most, first listed
    # Readings that split between Z and 2 where Missouri wants a digit: the vote's share decides.
    split = [reading(line("DE8YZA")), reading(line("DE8Y2A")), reading(line("DE8Y2A"))]
    v = vote(split, us)
    assert (v.text, v.region) == ("DE8Y2A", "us-mo")


def _write(tmp_path, text: str, name: str = "mine.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text,message",
    [
        ("formats: [{pattern: '@@#', prior: 0}]", "prior"),
        ("formats: [{pattern: '@@#', prior: many}]", "prior"),
        ("formats: [{pattern: '@@#', weight: 2}]", "unknown keys"),
        ("formats: [{prior: 2}]", "pattern"),
        ("formats: ['@[Z-A]#']", "backwards"),
        ("name: no\nformats: ['@#']", "quote"),
        ("members: [mine]", "includes itself"),
        ("members: [atlantis]", "atlantis"),
        ("free_form: 2\nformats: ['@#']", "free_form"),
        ("description: nothing", "no formats"),
    ],
)
def test_malformed_region_files_name_the_file_and_the_problem(tmp_path, text, message):
    p = _write(tmp_path, text)
    with pytest.raises(RulesError, match=message) as e:
        load_rules(p)
    assert "mine.yaml" in str(e.value) or "atlantis" in str(e.value)


def test_a_user_umbrella_over_shipped_regions(tmp_path):
    p = _write(tmp_path, "name: iberia\nmembers: [es, pt]\nfree_form: 0.2\n")
    rules = load_rules(p)
    assert rules.regions == ["es", "pt"] and rules.free_form == 0.2
    assert rules.match("1234BCD")[0] == "es" and rules.match("AA00AA")[0] == "pt"


def test_auto_learns_the_camera_s_region_and_then_reads_its_plates():
    auto = load_rules("auto")
    memory = RegionMemory(auto, after=10, share=0.8)
    # 8RA1234 (B read as 8, no alternative offered) fits a Czech format: static auto keeps it.
    misread = line("8RA1234")
    assert choose(misread, auto).text == "8RA1234"
    # Ten Brazilian plates, old and Mercosur, read right: Brazil explains them best.
    for text in ["ABC1234", "QKS5567", "BRA2E19", "RIO2A18", "AVA4416"] * 2:
        assert memory.choose(line(text)).text == text
    assert memory.leader == "br" and memory.plates == 10
    assert memory.choose(misread).text == "BRA1234"
    # A plate no Brazilian format writes still goes to every region.
    foreign = memory.choose(line("ZG9757HG"))
    assert foreign.region in {"hr", "rs"}


def test_auto_learns_us_when_no_single_state_explains_the_plates():
    memory = RegionMemory(load_rules("auto"), after=8, share=0.8)
    for text in ["5EKR790", "DE8Y2A", "CHT9032", "470MYF", "R34AAF", "GZG347", "DP7160", "KLX41C"]:
        memory.choose(line(text))
    assert memory.leader == "us"
    # With us leading, a vanity plate stays as read (us has free-form plates).
    assert memory.choose(line("CUST0M")).text == "CUST0M"


def test_region_memory_needs_an_umbrella():
    with pytest.raises(RulesError, match="umbrella"):
        RegionMemory(load_rules("br"))


def test_an_emblem_read_as_a_character_is_left_out_where_the_format_has_one():
    """A Swedish plate's inspection sticker read as an 8 between the groups: Sweden's ``~`` slot
    leaves it out. The eu umbrella does so only when the 8 is very weak, since a Slovenian format
    fits all 7 characters; read with confidence, the character stays there (the emblem slot pays
    ``emblem_read`` as well as 1 - its score). Sweden alone writes no 7 characters: it drops it."""
    c = choose(line("PGD8099", scores={3: 0.3}), load_rules("se"))
    assert (c.text, c.region, c.edit) == ("PGD099", "se", "emblem")
    assert [ch.char for ch in c.chars] == list("PGD099") and c.kept == (0, 1, 2, 4, 5, 6)
    weak = choose(line("PGD8099", scores={3: 0.1}), load_rules("eu"))
    assert (weak.text, weak.region, weak.edit) == ("PGD099", "se", "emblem")
    confident = choose(line("PGD8099", scores={3: 0.8}), load_rules("eu"))
    assert confident.text == "PGD8099" and confident.edit != "emblem"
    # The plate read without its sticker fits as it is; only the emblem-free text is a plate.
    assert choose(line("PGD099"), load_rules("se")).text == "PGD099"
    assert load_rules("se").matches("PGD099") and not load_rules("se").matches("PGD8099")


def test_a_learnt_region_reads_its_emblems():
    """Once a camera's Swedish plates taught auto its region, a sticker read as a character goes."""
    memory = RegionMemory(load_rules("auto"), after=10, share=0.8)
    for text in [
        "KWF560",
        "TNJ563",
        "XCE533",
        "NAP921",
        "DTB216",
        "ABC12D",
        "KRD688",
        "LWN667",
        "MTY20E",
        "NXK174",
    ]:
        memory.choose(line(text))
    assert memory.leader == "se"
    assert memory.choose(line("TMO8994", scores={3: 0.45})).text == "TMO994"
