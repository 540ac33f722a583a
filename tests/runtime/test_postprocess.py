"""Decoding, NMS and plate assembly with hand-made model outputs and detections."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.backends.base import decode_chars, decode_plates
from runtime.backends.degirum import _letterbox_params
from runtime.config import PipelineConfig
from runtime.geometry import letterbox, plate_crop_box
from runtime.metadata import ModelMetadata
from runtime.pipeline import REASON_EMPTY_CROP, REASON_NO_CHARS, assemble_plate, chars_from_detections
from runtime.postprocess import Detections, decode_yolov8, nms, suppress_contained
from runtime.records import ALPHABET, Plate

NAMES = list(ALPHABET)


def raw_output(
    boxes_xywh: list[tuple[float, float, float, float]], scores: list[list[float]], anchors: int = 50
) -> np.ndarray:
    """A [1, 4 + nc, anchors] yolov8 output holding the given boxes (cx, cy, w, h) and class scores;
    the remaining anchors score 0."""
    nc = len(scores[0])
    out = np.zeros((1, 4 + nc, anchors), np.float32)
    for i, (b, s) in enumerate(zip(boxes_xywh, scores, strict=True)):
        out[0, :4, i] = b
        out[0, 4:, i] = s
    return out


def one_hot(k: int, score: float, nc: int = len(NAMES), rest: dict[int, float] | None = None) -> list[float]:
    row = [0.0] * nc
    row[k] = score
    for j, s in (rest or {}).items():
        row[j] = s
    return row


def test_decode_converts_boxes_thresholds_and_sorts():
    out = raw_output([(50, 40, 20, 10), (200, 100, 40, 20), (300, 300, 10, 10)], [[0.9], [0.95], [0.1]])
    d = decode_yolov8(out, 1, conf_threshold=0.25, iou_threshold=0.7, max_det=10)
    assert len(d) == 2
    np.testing.assert_allclose(d.boxes, [[180, 90, 220, 110], [40, 35, 60, 45]])
    np.testing.assert_allclose(d.scores, [0.95, 0.9])
    assert d.classes.tolist() == [0, 0]


def test_decode_agnostic_nms_keeps_one_box_per_place_with_all_class_scores():
    o, zero = NAMES.index("O"), NAMES.index("0")
    out = raw_output(
        [(20, 20, 10, 20), (21, 20, 10, 20), (60, 20, 10, 20)],
        [one_hot(o, 0.7, rest={zero: 0.4}), one_hot(zero, 0.6), one_hot(NAMES.index("A"), 0.8)],
    )
    d = decode_yolov8(out, len(NAMES), 0.25, 0.5, 10, agnostic=True)
    assert [NAMES[c] for c in d.classes] == ["A", "O"]
    assert d.class_scores.shape == (2, 36) and d.class_scores[1, zero] == pytest.approx(0.4)
    per_class = decode_yolov8(out, len(NAMES), 0.25, 0.5, 10, agnostic=False)
    assert sorted(NAMES[c] for c in per_class.classes) == ["0", "A", "O"]


def test_decode_nothing_above_threshold_and_bad_shapes():
    empty = decode_yolov8(raw_output([(5, 5, 2, 2)], [[0.1]]), 1, 0.25, 0.7, 10)
    assert len(empty) == 0 and empty.boxes.shape == (0, 4)
    with pytest.raises(ValueError, match=r"\[4 \+ 2, N\]"):
        decode_yolov8(np.zeros((1, 5, 10), np.float32), 2, 0.25, 0.7, 10)
    with pytest.raises(ValueError, match="batch"):
        decode_yolov8(np.zeros((2, 5, 10), np.float32), 1, 0.25, 0.7, 10)


def test_nms_and_max_det():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [40, 40, 50, 50]], np.float32)
    scores = np.array([0.5, 0.9, 0.8, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2, 3]
    assert nms(boxes, scores, 0.5, max_keep=2).tolist() == [1, 2]
    assert nms(boxes, scores, 0.9).tolist() == [1, 2, 3, 0]  # best score first


def test_a_plate_inside_a_more_confident_plate_is_suppressed():
    plate = [100, 100, 300, 160]
    half = [110, 105, 200, 155]  # inside the plate: IoU 0.34, so NMS at 0.7 keeps it
    badge = [260, 140, 320, 170]  # 44% of it inside the plate
    elsewhere = [400, 100, 500, 130]
    dets = Detections(
        boxes=np.array([plate, half, badge, elsewhere], np.float32),
        scores=np.array([0.9, 0.6, 0.5, 0.4], np.float32),
        classes=np.zeros(4, np.int64),
    )
    assert nms(dets.boxes, dets.scores, 0.7).tolist() == [0, 1, 2, 3]
    kept = suppress_contained(dets, 0.8)
    assert kept.boxes.tolist() == [plate, badge, elsewhere]
    assert kept.scores.tolist() == pytest.approx([0.9, 0.5, 0.4])
    assert suppress_contained(dets, 0.3).boxes.tolist() == [plate, elsewhere]
    assert suppress_contained(dets, 0.0) is dets  # off


def test_only_a_more_confident_box_suppresses_the_one_inside_it():
    # The small box scores higher: the large, less sure box around it is no reason to drop it.
    dets = Detections(
        boxes=np.array([[110, 105, 200, 155], [100, 100, 300, 160]], np.float32),
        scores=np.array([0.8, 0.3], np.float32),
        classes=np.zeros(2, np.int64),
    )
    assert len(suppress_contained(dets, 0.8)) == 2
    # unsorted input (a backend's own order) comes back best first
    flipped = dets.select(np.array([1, 0]))
    assert suppress_contained(flipped, 0.8).scores.tolist() == pytest.approx([0.8, 0.3])


def test_the_detector_decode_applies_the_contained_setting():
    meta = ModelMetadata(task="plate_det", names=["plate"], input_height=640, input_width=640)
    _, lb = letterbox(np.zeros((640, 640, 3), np.uint8), 640, 640)
    raw = raw_output([(300, 300, 200, 60), (260, 300, 80, 50)], [[0.9], [0.5]])
    assert len(decode_plates(raw, meta, lb, 640, 640, PipelineConfig(det_contained=0.0))) == 2
    assert len(decode_plates(raw, meta, lb, 640, 640, PipelineConfig())) == 1  # on by default
    with pytest.raises(ValueError, match="det_contained"):
        PipelineConfig(det_contained=1.5)


def test_decoded_boxes_map_back_to_the_image_and_are_clipped():
    meta = ModelMetadata(task="plate_det", names=["plate"], input_height=640, input_width=640)
    image = np.zeros((360, 1280, 3), np.uint8)  # scale 0.5, 230 px bands above and below
    _, lb = letterbox(image, 640, 640)
    inside = (300, 320, 100, 40)  # model pixels
    sticking_out = (630, 150, 40, 20)
    d = decode_plates(
        raw_output([inside, sticking_out], [[0.9], [0.8]]), meta, lb, 1280, 360, PipelineConfig()
    )
    np.testing.assert_allclose(d.boxes[0], [500, 140, 700, 220])
    assert d.boxes[1][2] == 1280  # clipped at the right edge


def test_degirum_letterbox_matches_ours_for_many_sizes():
    meta = ModelMetadata(
        task="plate_ocr", names=NAMES, input_height=128, input_width=256, crop_pad_x=0.1, crop_pad_y=0.1
    )
    for h, w in [(17, 93), (40, 160), (129, 255), (128, 256), (301, 77), (24, 94), (3, 500)]:
        _, ours = letterbox(np.zeros((h, w, 3), np.uint8), 128, 256)
        assert _letterbox_params(h, w, meta) == ours, (h, w)


def test_chars_map_from_crop_to_image_with_alternatives():
    cfg = PipelineConfig(alt_min_score=0.05, max_alternatives=2)
    scores = np.zeros((1, 36), np.float32)
    scores[0, NAMES.index("B")], scores[0, NAMES.index("8")], scores[0, NAMES.index("E")] = 0.8, 0.3, 0.01
    dets = Detections(
        boxes=np.array([[2, 3, 12, 23]], np.float32),
        scores=np.array([0.8], np.float32),
        classes=np.array([NAMES.index("B")]),
        class_scores=scores,
    )
    (c,) = chars_from_detections(dets, NAMES, (100, 50), cfg)
    assert c.char == "B" and c.box == (102, 53, 112, 73)
    assert [a for a, _ in c.alternatives] == ["8"]  # E is under alt_min_score


def text_dets(text: str, x0: float = 5, y0: float = 5, w: float = 10, h: float = 20) -> Detections:
    boxes = np.array([[x0 + i * 12, y0, x0 + i * 12 + w, y0 + h] for i in range(len(text))], np.float32)
    return Detections(
        boxes=boxes,
        scores=np.full(len(text), 0.9, np.float32),
        classes=np.array([NAMES.index(ch) for ch in text]),
    )


def test_assemble_plate_reads_text_and_handles_empty_cases():
    cfg = PipelineConfig()
    box = (10.0, 20.0, 110.0, 50.0)
    plate = assemble_plate(box, 0.8, (4, 16, 116, 54), text_dets("ABC123"), NAMES, cfg)
    assert (plate.text, plate.lines, plate.reason) == ("ABC123", 1, None)
    assert plate.chars[0].box[0] == 4 + 5 and plate.candidates[0][0] == "ABC123"
    Plate.from_dict(plate.to_dict())  # valid record

    no_chars = assemble_plate(box, 0.8, (4, 16, 116, 54), Detections.empty(36), NAMES, cfg)
    assert (no_chars.text, no_chars.reason, no_chars.chars) == ("", REASON_NO_CHARS, [])
    no_crop = assemble_plate(box, 0.8, None, None, NAMES, cfg)
    assert (no_crop.text, no_crop.reason) == ("", REASON_EMPTY_CROP)
    assert no_crop.to_dict()["reason"] == REASON_EMPTY_CROP


def test_assemble_plate_applies_region_rules():
    from runtime.rules import RegionRules

    plate = assemble_plate(
        (0, 0, 100, 30),
        0.9,
        (0, 0, 100, 30),
        text_dets("ABCO234"),
        NAMES,
        PipelineConfig(),
        RegionRules(name="br", patterns=["@@@####"]),
    )
    assert plate.text == "ABC0234" and plate.chars[3].char == "0"
    assert plate.candidates[0] == ("ABC0234", pytest.approx(plate.score))


def test_crop_regions_at_the_border_and_of_zero_size():
    assert plate_crop_box((0, 0, 50, 20), 640, 480, 0.1, 0.1) == (0, 0, 55, 22)  # clipped at the top-left
    assert plate_crop_box((600, 470, 640, 480), 640, 480, 0.1, 0.1) == (596, 469, 640, 480)
    assert plate_crop_box((100, 100, 100, 100), 640, 480, 0.1, 0.1) is None  # zero size
    assert plate_crop_box((700, 500, 800, 600), 640, 480, 0.1, 0.1) is None  # outside


def test_decode_chars_gives_crop_pixels():
    meta = ModelMetadata(
        task="plate_ocr", names=NAMES, input_height=128, input_width=256, crop_pad_x=0.1, crop_pad_y=0.1
    )
    crop = np.zeros((40, 160, 3), np.uint8)  # scale 1.6: 256 x 64, 32 px bands
    _, lb = letterbox(crop, 128, 256)
    d = decode_chars(
        raw_output([(128, 64, 16, 32)], [one_hot(NAMES.index("7"), 0.9)]), meta, lb, 160, 40, PipelineConfig()
    )
    np.testing.assert_allclose(d.boxes[0], [75, 10, 85, 30])
