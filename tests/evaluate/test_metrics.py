"""Every metric of the evaluation against values computed by hand on small hand-made records."""

from __future__ import annotations

import pytest

from evaluate import metrics as M
from evaluate.text import Label, TextRules, align, edit_distance, is_exact, score_reading
from runtime.records import Char, Plate

US = TextRules(equivalences=("O0",))
PLAIN = TextRules()


def P(box, det=None, text=None, **kw) -> Plate:
    return Plate(box=tuple(float(v) for v in box), det_score=det, text=text, **kw)


# --------------------------------------------------------------------------------------------- text


def test_normalise_keeps_alphabet_uppercases_and_maps_equivalences():
    assert PLAIN.normalise("abc-12 3") == "ABC123"
    assert PLAIN.normalise("京PL3N67") == "PL3N67"  # a province glyph is outside 0-9A-Z
    assert PLAIN.normalise(None) == ""
    # O and 0 fold onto the group's first character
    assert US.normalise("o0O0") == "OOOO"
    assert US.normalise("AB*C", keep_mask=True) == "AB*C"


def test_equivalence_groups_are_checked():
    with pytest.raises(ValueError, match="not in the alphabet"):
        TextRules(equivalences=("O-",))
    with pytest.raises(ValueError, match="another group"):
        TextRules(equivalences=("O0", "0D"))
    with pytest.raises(ValueError, match="at least two"):
        TextRules(equivalences=("O",))


def test_labels_from_text_partial_text_or_none():
    assert PLAIN.label(P((0, 0, 1, 1), text="abc123")) == Label("ABC123")
    partial = PLAIN.label(Plate(box=(0, 0, 1, 1), extra={"partial_text": "074*C*V"}))
    assert partial == Label("074*C*V", partial=True) and partial.masked == 2 and partial.visible == 5
    assert PLAIN.label(P((0, 0, 1, 1))) is None
    assert PLAIN.label(Plate(box=(0, 0, 1, 1), extra={"partial_text": "***"})) is None


def test_o0_equivalence_makes_a_us_reading_exact():
    label = US.label(P((0, 0, 1, 1), text="OO0123"))
    assert US.is_read(label, "000123") and US.is_read(label, "OOO123")
    plain = PLAIN.label(P((0, 0, 1, 1), text="OO0123"))
    assert not PLAIN.is_read(plain, "000123")
    assert score_reading(PLAIN, plain, "000123").distance == 2  # two Os read as 0
    assert score_reading(US, label, "000123").distance == 0


def test_partial_label_scores_only_visible_characters():
    label = Label("074*C*V", partial=True)
    assert is_exact(label, "074XCYV")  # any character where masked
    assert not is_exact(label, "074CV")  # but the plate has 7 characters
    assert edit_distance(label, "074XCYV") == 0
    assert edit_distance(label, "074CV") == 2  # two characters lost (the masked ones)
    assert edit_distance(label, "O74XCYV") == 1
    # masked positions never enter the confusion pairs (their truth is unknown)
    assert align(label, "O74XCYV") == [("0", "O"), ("7", "7"), ("4", "4"), ("C", "C"), ("V", "V")]


def test_painted_over_characters_are_scored_as_absent():
    """uc3m_lp paints its masked characters over: with masked=visible the right reading is the
    visible characters alone, and reading something where the paint is counts as an error."""
    rules = TextRules(masked="visible")
    label = rules.label(Plate(box=(0, 0, 1, 1), extra={"partial_text": "074*C*V"}))
    assert label.text == "074CV" and label.partial
    assert rules.is_read(label, "074CV") and not rules.is_read(label, "074XCYV")
    assert score_reading(rules, label, "074XCYV").distance == 2
    with pytest.raises(ValueError):
        TextRules(masked="guess")


def test_partial_distance_is_the_exact_wildcard_minimum():
    # "A*" vs "BA": with '*' an ordinary symbol an optimal alignment may insert B and delete '*'
    # (2 edits); under the wildcard rule A->B and *=A costs 1, which is the minimum.
    assert edit_distance(Label("A*", partial=True), "BA") == 1
    assert edit_distance(Label("A*", partial=True), "") == 2
    assert edit_distance(Label("**1", partial=True), "981") == 0


def test_alignment_pairs_substitution_deletion_insertion():
    label = Label("ABC123")
    assert align(label, "A8C12") == [("A", "A"), ("B", "8"), ("C", "C"), ("1", "1"), ("2", "2"), ("3", "")]
    assert align(label, "ABC1234") == [(c, c) for c in "ABC123"] + [("", "4")]


def test_two_line_plate_read_in_the_wrong_order():
    # upper line AB12, lower line CD: reading the lines in the wrong order moves 2 characters
    label = Label("AB12CD")
    s = score_reading(PLAIN, label, "CDAB12")
    assert not s.exact and s.distance == 4 and s.length == 6  # delete CD at the end, insert it in front


# --------------------------------------------------------------------------------------------- OCR summary


def _label(rules: TextRules, text: str) -> Label:
    """A label as the evaluation builds it from a manifest plate ('*' = partial)."""
    plate = (
        Plate(box=(0, 0, 1, 1), extra={"partial_text": text}) if "*" in text else P((0, 0, 1, 1), text=text)
    )
    return rules.label(plate)


def test_ocr_summary_exact_cer_and_confusion_by_hand():
    cases = [  # (rules, label, reading): distance / label length
        (US, "ABC123", "ABC123"),  # 0 / 6, exact
        (US, "ABC123", "A8C12"),  # 2 / 6 (B->8, 3 lost)
        (US, "O0O123", "000123"),  # 0 / 6, exact with O=0
        (US, "AB12CD", "CDAB12"),  # 4 / 6 (two-line plate, lines swapped)
        (US, "074*C*V", "074XCYV"),  # 0 / 7, exact (masked positions accept anything)
        (US, "074*C*V", "074CV"),  # 2 / 7 (two characters lost)
        (PLAIN, "074*C*V", "O74XCYV"),  # 1 / 7 (0 read as O, no equivalence)
    ]
    scores = [score_reading(rules, _label(rules, label), reading) for rules, label, reading in cases]
    assert [s.distance for s in scores] == [0, 2, 0, 4, 0, 2, 1]
    assert [s.exact for s in scores] == [True, False, True, False, True, False, False]
    summary = M.ocr_summary(scores)
    assert summary["n"] == 7 and summary["exact_count"] == 3
    assert summary["exact"] == round(3 / 7, 4)
    assert summary["cer"] == round(9 / 45, 4)
    pairs = M.confusion_pairs(scores)
    assert pairs[("B", "8")] == 1 and pairs[("3", "")] == 1 and pairs[("0", "O")] == 1
    # under O=0 every O and 0 is the class O: O0O of the US plate + the leading 0 of two partial labels
    assert pairs[("O", "O")] == 5 and ("0", "0") not in pairs
    assert not any("*" in pair for pair in pairs)


def test_ocr_summary_empty_is_none_not_zero():
    assert M.ocr_summary([]) == {"exact": None, "cer": None, "n": 0, "chars": 0, "exact_count": 0}


# --------------------------------------------------------------------------------------------- detection


def test_detection_ap50_against_a_hand_computed_curve():
    # 3 labels; predictions by confidence: TP, FP, TP. Recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3.
    # Precision envelope: 1 up to recall 1/3, 2/3 up to recall 2/3, 0 beyond. Ultralytics samples it
    # at 101 recall points (0, 0.01, .., 1) and integrates with the trapezoid rule:
    #   0.33 (x 0..0.33 at 1) + (1 + 2/3)/2 * 0.01 (0.33->0.34) + 0.32 * 2/3 (0.34..0.66)
    #   + (2/3 + 0)/2 * 0.01 (0.66->0.67) = 0.555
    labels = [P((0, 0, 10, 10)), P((100, 0, 110, 10)), P((200, 0, 210, 10))]
    preds = [P((0, 0, 10, 10), 0.9), P((50, 0, 60, 10), 0.8), P((100, 0, 110, 10), 0.7)]
    hand = 0.33 + (1 + 2 / 3) / 2 * 0.01 + 0.32 * 2 / 3 + (2 / 3) / 2 * 0.01
    r = M.detection_metrics([(labels, preds)])
    assert r.ap50 == pytest.approx(hand, abs=1e-9) and hand == pytest.approx(0.555)
    assert r.ap50_95 == pytest.approx(hand, abs=1e-9)  # exact boxes: a TP at every IoU threshold
    assert (r.tp, r.fp, r.fn) == (2, 1, 1)
    assert (
        r.precision == pytest.approx(2 / 3)
        and r.recall == pytest.approx(2 / 3)
        and r.f1 == pytest.approx(2 / 3)
    )
    assert r.fp_per_image == 1.0


def test_detection_operating_threshold_only_moves_p_r_not_ap():
    labels = [P((0, 0, 10, 10)), P((100, 0, 110, 10)), P((200, 0, 210, 10))]
    preds = [P((0, 0, 10, 10), 0.9), P((50, 0, 60, 10), 0.8), P((100, 0, 110, 10), 0.7)]
    r = M.detection_metrics([(labels, preds)], operating_conf=0.75)
    assert (r.tp, r.fp, r.fn, r.predictions) == (1, 1, 2, 2)
    assert r.precision == 0.5 and r.recall == pytest.approx(1 / 3) and r.f1 == pytest.approx(0.4)
    assert r.ap50 == pytest.approx(0.555)


def test_detection_ap50_95_counts_the_iou_thresholds_a_box_passes():
    # IoU 0.78 passes 0.50, 0.55, .., 0.75 (6 of 10 thresholds); one label, one prediction:
    # AP is Ultralytics' 0.995 (the 101-point curve drops to 0 at recall 1) where it passes, 0 elsewhere.
    r = M.detection_metrics([([P((0, 0, 100, 100))], [P((0, 0, 100, 78), 0.5)])])
    assert r.ap50 == pytest.approx(0.995)
    assert r.ap50_95 == pytest.approx(0.995 * 6 / 10)


def test_detection_is_one_to_one_and_fp_per_image_spans_images():
    label = [P((0, 0, 100, 40))]
    twice = [P((0, 0, 100, 40), 0.9), P((2, 0, 100, 40), 0.8)]  # a duplicate of the same plate
    r = M.detection_metrics([(label, twice), ([], [P((5, 5, 50, 20), 0.6)]), ([], [])])
    assert (r.tp, r.fp, r.fn) == (1, 2, 0)
    assert r.fp_per_image == pytest.approx(2 / 3)


def test_false_positives_are_the_detections_fp_per_image_counts():
    label = [P((0, 0, 100, 40))]
    preds = [
        P((2, 0, 100, 40), 0.8),  # the duplicate: the plate is claimed by the more confident box
        P((0, 0, 100, 40), 0.9),
        P((300, 0, 400, 40), 0.6),  # a plate of another car the labels miss
        P((500, 0, 600, 40), 0.1),  # below the operating threshold: not counted
    ]
    images = [(label, preds), ([], [P((5, 5, 50, 20), 0.3)]), ([], [])]
    found = [M.false_positives(lab, pr, 0.25, 0.5) for lab, pr in images]
    assert found == [[0, 2], [0], []]  # most confident first
    assert sum(map(len, found)) == M.detection_metrics(images, 0.25).fp


def test_detection_iou_threshold_is_inclusive_and_misses_below():
    # IoU of [0,0,100,10] and [50,0,150,10] is 50/150 = 1/3: not the same plate at 0.5
    r = M.detection_metrics([([P((0, 0, 100, 10))], [P((50, 0, 150, 10), 0.9)])])
    assert (r.tp, r.fp, r.fn) == (0, 1, 1) and r.ap50 == 0.0
    r = M.detection_metrics([([P((0, 0, 100, 10))], [P((50, 0, 150, 10), 0.9)])], iou_threshold=1 / 3 - 1e-6)
    assert r.tp == 1


def test_detection_without_labels_or_predictions():
    assert M.detection_metrics([([], [P((0, 0, 1, 1), 0.5)])]).ap50 is None  # AP undefined without labels
    r = M.detection_metrics([([P((0, 0, 10, 10))], [])])
    assert r.recall == 0.0 and r.precision is None and r.ap50 == 0.0


# --------------------------------------------------------------------------------------------- end to end


def test_end_to_end_reads_misreads_misses_and_wrong_reads():
    labels = [
        P((0, 0, 100, 40), text="ABC123"),
        P((200, 0, 300, 40), text="XYZ789"),
        P((0, 100, 100, 140)),
        P((200, 100, 300, 140), text="LMN456"),
    ]
    texts = [US.label(p) for p in labels]
    preds = [
        P((0, 0, 100, 40), 0.9, "abc123"),  # read (normalised)
        P((0, 2, 100, 40), 0.5, "ABC123"),  # duplicate of the first: unmatched, a wrong read
        P((200, 0, 300, 40), 0.8, "XYZ780"),  # misread: a wrong read
        P((0, 100, 100, 140), 0.7, "QQQ111"),  # a plate whose text is unknown: neither right nor wrong
        P((400, 0, 450, 20), 0.6, "FOO1"),  # a false positive with a text: wrong
        P((400, 100, 450, 120), 0.6, None),  # a false positive without text: no read, not wrong
        P((200, 100, 300, 140), 0.3, None),  # detected, nothing read
    ]
    e = M.end_to_end_image(labels, texts, preds, US)
    assert [o and o[0] for o in e.outcomes] == [M.READ, M.MISREAD, None, M.NO_TEXT]
    assert e.wrong_reads == 3
    s = M.end_to_end_summary([o[0] for o in e.outcomes if o], e.wrong_reads, images=2)
    assert s["exact"] == round(1 / 3, 4) and s["n"] == 3 and s["wrong_per_image"] == 1.5
    # at an operating threshold of 0.55 the duplicate and the faint detection are gone
    e = M.end_to_end_image(labels, texts, preds, US, operating_conf=0.55)
    assert [o and o[0] for o in e.outcomes] == [M.READ, M.MISREAD, None, M.MISSED]
    assert e.wrong_reads == 2


def test_end_to_end_with_partial_label_and_equivalence():
    labels = [P((0, 0, 100, 40), extra={"partial_text": "12*4AB*"}), P((0, 50, 100, 90), text="O0O123")]
    texts = [US.label(p) for p in labels]
    preds = [P((0, 0, 100, 40), 0.9, "1234AB5"), P((0, 50, 100, 90), 0.9, "000123")]
    e = M.end_to_end_image(labels, texts, preds, US)
    assert [o[0] for o in e.outcomes] == [M.READ, M.READ] and e.wrong_reads == 0


def test_two_line_plate_end_to_end_uses_the_lines_read():
    upper = [Char("A", (10, 5, 20, 20), line=0), Char("B", (20, 5, 30, 20), line=0)]
    lower = [Char("1", (10, 25, 20, 40), line=1), Char("2", (20, 25, 30, 40), line=1)]
    label = Plate(box=(0, 0, 40, 45), text="AB12", lines=2, chars=upper + lower)
    right = Plate(box=(0, 0, 40, 45), det_score=0.9, text="AB12", lines=2)
    wrong = Plate(box=(0, 0, 40, 45), det_score=0.9, text="12AB", lines=2)
    assert M.end_to_end_image([label], [PLAIN.label(label)], [right], PLAIN).outcomes[0][0] == M.READ
    assert M.end_to_end_image([label], [PLAIN.label(label)], [wrong], PLAIN).outcomes[0][0] == M.MISREAD


def test_line_count_from_label_or_character_boxes():
    from evaluate.report import plate_lines

    def chars(centres, h=10.0):
        return [Char(str(i), (x - 3, y - h / 2, x + 3, y + h / 2)) for i, (x, y) in enumerate(centres)]

    slanted = Plate(box=(0, 0, 80, 40), chars=chars([(5, 30), (15, 27), (25, 24), (35, 21), (45, 18)]))
    two_rows = Plate(box=(0, 0, 60, 40), chars=chars([(10, 10), (20, 10), (30, 10), (15, 25), (25, 25)]))
    assert plate_lines(slanted) == "1"  # a steep but straight line of characters
    assert plate_lines(two_rows) == "2"  # 695 over BD: centres 15 px apart, 10 px high characters
    assert plate_lines(Plate(box=(0, 0, 1, 1), lines=2)) == "2"
    assert plate_lines(Plate(box=(0, 0, 1, 1))) == "unknown"


# --------------------------------------------------------------------------------------------- speed, buckets


def test_speed_summary_percentiles_and_fps():
    s = M.speed_summary(
        {"det": [40.0, 50.0], "ocr": [4.0, 6.0, 5.0]},
        [60.0, 80.0],
        {"backend": "onnx", "precision": "int8", "threads": 2},
        321.04,
    )
    assert s["det_ms_p50"] == 45.0 and s["det_ms_p90"] == 49.0 and s["ocr_ms_p50"] == 5.0
    assert s["pre_ms_p50"] is None and s["ocr_calls"] == 3
    assert s["pipeline_fps"] == round(1000 / 70, 2)
    assert (s["backend"], s["precision"], s["threads"], s["peak_rss_mb"]) == ("onnx", "int8", 2, 321.0)


def test_width_buckets():
    edges = [0, 32, 64, 100000]
    assert M.bucket_labels(edges) == ["0-32", "32-64", ">=64"]
    assert [M.width_bucket(w, edges) for w in (0, 31.9, 32, 500)] == ["0-32", "0-32", "32-64", ">=64"]
