"""The second look (runtime/second_look.py): hard plates re-read from other cuts and voted."""

from __future__ import annotations

import json

import pytest

from runtime.config import PipelineConfig
from runtime.frames import read_image
from runtime.pipeline import Predictor
from runtime.records import Char, Plate
from runtime.second_look import variant_boxes, vote


def _reading(text: str, scores: list[float]) -> Plate:
    chars = [
        Char(char=c, box=(10.0 * i, 0.0, 10.0 * i + 8, 16.0), score=s)
        for i, (c, s) in enumerate(zip(text, scores, strict=True))
    ]
    total = 1.0
    for s in scores:
        total *= s
    return Plate(box=(0.0, 0.0, 80.0, 16.0), text=text, score=total, chars=chars, det_score=0.8)


def test_each_place_takes_the_character_most_readings_agree_on():
    first = _reading("AB8123", [0.9, 0.9, 0.4, 0.9, 0.9, 0.9])
    others = [_reading("ABB123", [0.9, 0.9, 0.7, 0.9, 0.9, 0.9]), _reading("ABB123", [0.8] * 6)]
    voted = vote([first, *others])
    assert voted.text == "ABB123"
    assert voted.box == first.box and voted.det_score == first.det_score
    assert voted.extra["second_look"] == {"reads": 3, "agreeing": 3, "first": "AB8123"}
    assert [c.char for c in voted.chars] == list("ABB123")


def test_the_most_common_length_wins_and_a_lone_dissent_does_not_overrule():
    first = _reading("AB123", [0.5] * 5)
    assert vote([first, _reading("AB1234", [0.99] * 6)]).text == "AB123"
    longer = vote([first, _reading("AB1234", [0.6] * 6), _reading("AB1284", [0.6] * 6)])
    assert len(longer.text) == 6 and longer.text.startswith("AB12")
    assert vote([Plate(box=(0, 0, 1, 1), text="", reason="no characters found")]).text == ""


def test_variant_boxes_move_every_side_by_the_jitter():
    boxes = variant_boxes((100.0, 50.0, 200.0, 80.0), 3, 0.1)
    assert boxes[0] == pytest.approx((90.0, 47.0, 210.0, 83.0))  # grown
    assert boxes[1] == pytest.approx((105.0, 51.5, 195.0, 78.5))  # shrunk
    assert boxes[2] == pytest.approx((90.0, 50.0, 190.0, 80.0))  # shifted left


@pytest.mark.shared_data
def test_small_plates_of_real_scenes_get_a_second_look(shared_datasets):
    lines = [
        json.loads(line) for line in (shared_datasets / "uc3m_lp" / "labels.jsonl").read_text().splitlines()
    ]
    scenes = [r for r in lines if r.get("split") == "val"][:4]
    plain = Predictor(config=PipelineConfig(threads=1))
    looked = Predictor(config=PipelineConfig(threads=1, second_look=True, second_look_crops=2))
    checked = 0
    for rec in scenes:
        image = read_image(shared_datasets / "uc3m_lp" / rec["image"])
        dets = plain.detect(image)
        before, after = plain.read_plates(image, dets), looked.read_plates(image, dets)
        assert [p.box for p in before] == [p.box for p in after]
        for b, a in zip(before, after, strict=True):
            width = b.box[2] - b.box[0]
            hard = width < 64 or not b.text or (b.score is not None and b.score < 0.5)
            if hard:
                checked += 1
                assert a.extra["second_look"]["reads"] == 3 and a.extra["second_look"]["first"] == b.text
            else:
                assert a.text == b.text and "second_look" not in a.extra
    plain.close()
    looked.close()
    assert checked > 0  # uc3m_lp plates are about 28 px wide: every one is hard
