"""Every shipped region file: it loads, names its source, its formats accept their examples and
reject what differs, and the umbrellas (us, eu, auto) hold every member and report the right one.
Real labels of the shared datasets fit their country's formats."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runtime.rules import REGIONS_DIR, _atoms, available_regions, compile_pattern, load_rules, plate_pattern

REGIONS = available_regions()
UMBRELLAS = ["us", "eu", "auto"]
LEAVES = [r for r in REGIONS if r not in UMBRELLAS]
EXAMPLES = {r: [(f.pattern, e) for f in load_rules(r).formats for e in f.examples] for r in LEAVES}


def test_the_issue_s_coverage_50_states_dc_and_25_european_countries():
    states = [r for r in LEAVES if r.startswith("us-")]
    assert len(states) == 51 and "us-dc" in states
    assert len(load_rules("eu").members) >= 25
    assert set(load_rules("us").members) == set(states)
    assert set(load_rules("auto").regions) == set(LEAVES)  # every region, not an umbrella twice


def test_every_region_file_names_its_source_and_has_examples():
    for name in LEAVES:
        _names_source_and_examples(name)


def _names_source_and_examples(name: str) -> None:
    text = (REGIONS_DIR / f"{name}.yaml").read_text()
    assert re.search(r"^# .*(Source|Wikipedia)", text, re.M), f"{name}.yaml names no source"
    rules = load_rules(name)
    assert rules.name == name and rules.description
    for f in rules.formats:
        assert f.examples, f"{name}: format {f.pattern} has no example"
        assert f.prior > 0


def test_each_pattern_accepts_its_examples_and_rejects_a_changed_character_class():
    for name in LEAVES:
        _accepts_examples(name)


def _accepts_examples(name: str) -> None:
    for f in load_rules(name).formats:
        # Examples are plate texts: a format's emblem slot (~) is not part of them.
        pattern = compile_pattern(plate_pattern(f.pattern))
        for example in f.examples:
            assert pattern.fullmatch(example), f"{name}: {f.pattern} rejects its example {example}"
            # A letter where the format wants a digit (or the reverse) is rejected.
            for i, slot in enumerate(_atoms(plate_pattern(f.pattern))):
                other = "7" if example[i].isalpha() else "K"
                if other not in slot:
                    changed = example[:i] + other + example[i + 1 :]
                    assert not pattern.fullmatch(changed), f"{name}: {f.pattern} accepts {changed}"
            assert not pattern.fullmatch(example + "7") and not pattern.fullmatch(example[1:])


def test_regions_reject_the_other_regions_examples_where_the_formats_differ():
    for name in LEAVES:
        _rejects_others(name)


def _rejects_others(name: str) -> None:
    rules = load_rules(name)
    shapes = [_atoms(plate_pattern(f.pattern)) for f in rules.formats]
    rejected = 0
    for other, examples in EXAMPLES.items():
        if other == name:
            continue
        for _, example in examples:
            fits = any(
                len(s) == len(example) and all(ch in slot for ch, slot in zip(example, s, strict=True))
                for s in shapes
            )
            assert rules.matches(example) == fits, f"{name} on {other}'s {example}"
            rejected += not fits
    assert rejected > 0, f"{name} accepts every other region's examples"


@pytest.mark.parametrize("umbrella", UMBRELLAS)
def test_the_umbrella_picks_the_likeliest_member_that_fits(umbrella):
    rules = load_rules(umbrella)
    members = {m: load_rules(m) for m in rules.regions}
    unique = 0
    for name in members:
        for _, example in EXAMPLES[name]:
            region, weight = rules.match(example)
            fitting = {m: r.match(example) for m, r in members.items() if r.matches(example)}
            assert region in fitting, f"{umbrella}: {example} of {name} -> {region}, which rejects it"
            assert weight == pytest.approx(max(w for _, w in fitting.values()))
            assert fitting[region][1] == pytest.approx(weight)
            if list(fitting) == [name]:  # only its own region writes it so: that region it is
                assert region == name
                unique += 1
    assert unique > 0


def test_umbrella_matches_name_the_member():
    # Shapes only one state writes: Missouri AB1C2D, New Jersey A12BCD, California 1ABC234.
    us = load_rules("us")
    assert us.match("DE8Y2A")[0] == "us-mo"
    assert us.match("R34AAF")[0] == "us-nj"
    assert us.match("5EKR790")[0] == "us-ca"
    assert not us.matches("ZG9757HG")
    assert load_rules("eu").match("ZG9757HG")[0] in {"hr", "rs"}  # both write AA1234AA


def _labels(folder: Path) -> list[tuple[str, dict]]:
    out = []
    for line in (folder / "labels.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out += [(p["text"], rec) for p in rec["plates"] if p.get("text")]
    return out


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "dataset,region,share",
    [
        ("se_crops", "se", 0.9),
        ("pl_parking", "pl", 0.9),
        ("hr_zagreb", "hr", 1.0),
        ("openalpr_br_crops", "br", 1.0),
    ],
)
def test_real_labels_fit_their_country(shared_datasets, dataset, region, share):
    labels = _labels(shared_datasets / dataset)
    rules, europe = load_rules(region), load_rules("auto")
    fit = [t for t, _ in labels if rules.matches(t)]
    assert len(fit) >= share * len(labels), [t for t, _ in labels if not rules.matches(t)]
    assert all(europe.matches(t) for t in fit)


@pytest.mark.shared_data
def test_real_us_labels_fit_their_state_unless_free_form(shared_datasets):
    """openalpr_us_crops names each plate's state; vanity plates (free-form) fit no format, so only
    a share is asked of each state with several plates, and of the umbrella."""
    labels = _labels(shared_datasets / "openalpr_us_crops")
    us = load_rules("us")
    by_state: dict[str, list[str]] = {}
    for text, rec in labels:
        by_state.setdefault(rec["us_state"], []).append(text)
    assert sum(us.matches(t) for t, _ in labels) >= 0.7 * len(labels)
    own = {
        s: sum(load_rules(f"us-{s}").matches(t) for t in texts) / len(texts) for s, texts in by_state.items()
    }
    assert sum(own[s] * len(t) for s, t in by_state.items()) >= 0.6 * len(labels)
    assert sum(v >= 0.5 for v in own.values()) >= 0.8 * len(own), own
