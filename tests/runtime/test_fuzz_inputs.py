"""Fuzzing (Hypothesis) of what users feed the runtime: region rule files, reading order,
the YOLOv8 decoder on tensors of right and wrong shapes, and --set / --track values. Only the
documented errors (the LprError family) may come out, and every call returns (each example runs
under a time limit). Kept to modest example counts: the whole file runs in a few seconds."""

from __future__ import annotations

import math

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from runtime.cli.args import parse_settings
from runtime.config import PipelineConfig, TrackConfig
from runtime.errors import LprError
from runtime.postprocess import decode_yolov8
from runtime.reading import read_chars
from runtime.records import ALPHABET, Char
from runtime.rules import RegionRules, candidates, load_rules

FUZZ = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | finite | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
pattern_text = st.text(alphabet="@#?[]-AB01Z_ a", max_size=10)


@FUZZ
@given(
    st.one_of(
        yaml_values,
        st.fixed_dictionaries(
            {"name": st.text(max_size=6), "patterns": st.lists(pattern_text, max_size=4)},
            optional={
                "lookalikes": st.lists(st.lists(st.text(max_size=2), max_size=3), max_size=3),
                "lookalike_score": st.one_of(finite, st.text(max_size=3)),
            },
        ),
    )
)
def test_region_rules_from_any_yaml_value(tmp_path_factory, value):
    path = tmp_path_factory.mktemp("rules") / "r.yaml"
    path.write_text(yaml.safe_dump(value))
    try:
        rules = load_rules(path)
    except LprError as e:
        assert str(path) in str(e) or "pattern" in str(e)
        return
    assert isinstance(rules, RegionRules)
    assert all(rules.matches(p) in (True, False) for p in ("ABC1234", ""))


@FUZZ
@given(st.binary(max_size=200))
def test_region_rules_from_any_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("rules") / "r.yaml"
    path.write_bytes(data)
    try:
        load_rules(path)
    except LprError as e:
        assert str(path) in str(e)


boxes = st.tuples(finite, finite, st.floats(0, 500), st.floats(0, 500)).map(
    lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3])
)
chars = st.lists(
    st.builds(
        Char,
        char=st.sampled_from(ALPHABET),
        box=boxes,
        score=st.none() | st.floats(0, 1),
        alternatives=st.lists(st.tuples(st.sampled_from(ALPHABET), st.floats(0, 1)), max_size=2),
    ),
    max_size=14,
)


@FUZZ
@given(chars, st.floats(0, 1), st.floats(0, 1), st.integers(1, 3))
def test_reading_order_of_any_characters(cs, dup, line, max_lines):
    reading = read_chars(cs, PipelineConfig(dup_overlap=dup, line_overlap=line, max_lines=max_lines))
    assert len(reading.text) == len(reading.chars) <= len(cs)
    assert 0 <= reading.lines <= max_lines
    assert all(c.line is not None and 0 <= c.line < max(reading.lines, 1) for c in reading.chars)
    if reading.score is not None:
        assert 0 <= reading.score <= 1
    rules = RegionRules(name="x", patterns=["@@@####", "@@@#@##"])
    for text, score in candidates(reading.chars, rules, 3):
        assert len(text) == len(reading.chars) and math.isfinite(score)


@FUZZ
@given(
    st.integers(1, 40),
    arrays(np.float32, st.tuples(st.integers(0, 3), st.integers(0, 45), st.integers(0, 60)), elements=finite),
    st.floats(0, 1),
    st.floats(0, 1),
    st.integers(1, 50),
)
def test_yolov8_decoder_on_right_and_wrong_shapes(nc, raw, conf, iou, max_det):
    for tensor in (raw, raw.reshape(raw.shape[1:]) if raw.shape[0] == 1 else raw):
        right = tensor.shape[-2] == 4 + nc and (tensor.ndim == 2 or tensor.shape[0] == 1)
        try:
            dets = decode_yolov8(tensor, nc, conf, iou, max_det)
        except LprError as e:
            assert not right, e
            continue
        assert right
        assert len(dets) <= max_det and dets.boxes.shape == (len(dets), 4)
        assert np.all(dets.scores > conf) and np.all((dets.classes >= 0) & (dets.classes < nc))


keys = st.sampled_from(
    [f.name for f in PipelineConfig.__dataclass_fields__.values()]
    + [f.name for f in TrackConfig.__dataclass_fields__.values()]
    + ["", "unknown", "det_conf=", "=1"]
)
raw_values = st.one_of(
    st.text(max_size=8),
    finite.map(str),
    st.integers(-10, 10**6).map(str),
    st.sampled_from(["nan", "inf", "-0"]),
)


@FUZZ
@given(st.lists(st.tuples(keys, st.sampled_from(["=", ":", ""]), raw_values), max_size=4))
def test_set_and_track_values(items):
    strings = [f"{k}{sep}{v}" for k, sep, v in items]
    for cls, flag in ((PipelineConfig, "--set"), (TrackConfig, "--track")):
        try:
            config = cls.from_dict(parse_settings(strings, cls, flag))
        except LprError as e:
            assert flag in str(e) or "config" in str(e)
            continue
        assert isinstance(config, cls)
