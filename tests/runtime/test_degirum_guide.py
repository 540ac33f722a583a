"""DeGirum's licence-plate guide code on our shipped zoo (runtime/degirum_guide.py): `dg.load_model`
on the zoo (local ONNX/CPU), detector on real photos, crops cut from results[i]["bbox"] clipped,
OCR per crop, characters sorted by x (two-line plates through runtime.reading). On the real car
photos it reads at least 95% as many plates exactly as `python -m runtime` does."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.degirum_agent import degirum_unavailable


@pytest.fixture(scope="module")
def guide_models():
    why = degirum_unavailable()
    if why:
        pytest.skip(why)
    from runtime.degirum_guide import load_guide_models

    return load_guide_models()


def test_crop_boxes_are_clipped_to_the_image():
    from runtime.degirum_guide import crop_box

    assert crop_box([-5.2, 3.7, 50.1, 20.0], 40, 30) == (0, 3, 40, 20)
    assert crop_box([10.0, 10.0, 10.4, 12.0], 40, 30) == (10, 10, 11, 12)
    assert crop_box([45.0, 5.0, 60.0, 9.0], 40, 30) is None  # wholly outside: nothing to read


def test_guide_models_are_loaded_with_the_training_fill(guide_models):
    from runtime.model_zoo import find_models

    det, ocr = guide_models
    det_entry, ocr_entry = find_models()
    assert det.input_letterbox_fill_color == (det_entry.meta.letterbox_fill,) * 3
    assert ocr.input_letterbox_fill_color == (ocr_entry.meta.letterbox_fill,) * 3
    # What the zoo JSON tells DeGirum's post-processor: one suppression over all classes for OCR.
    assert ocr.output_use_regular_nms is False and ocr.output_max_classes_per_detection == 1


def test_two_line_plate_is_read_top_line_first(guide_models):
    """A two-line plate (drawn with cv2 into a real photo's frame size): the guide's plain x-sort
    would interleave the lines; the documented helper reads the top line, then the bottom one."""
    import cv2

    from runtime.degirum_guide import chars_of
    from runtime.reading import in_reading_order

    _, ocr = guide_models
    plate = np.full((140, 200, 3), 235, np.uint8)
    cv2.putText(plate, "ABC", (40, 58), cv2.FONT_HERSHEY_SIMPLEX, 1.7, (10, 10, 10), 4)
    cv2.putText(plate, "1234", (22, 122), cv2.FONT_HERSHEY_SIMPLEX, 1.7, (10, 10, 10), 4)
    chars = chars_of(ocr(plate))
    ordered = in_reading_order(chars)
    lines = [c.line for c in ordered]
    assert len(chars) >= 5 and lines == sorted(lines) and set(lines) == {0, 1}
    top = [c for c in ordered if c.line == 0]
    assert max(c.box[3] for c in top) <= min(c.box[3] for c in ordered if c.line == 1)
    assert [c.box[0] for c in top] == sorted(c.box[0] for c in top)


@pytest.mark.shared_data
def test_guide_code_reads_95_percent_of_what_the_runtime_reads(guide_models, shared_datasets):
    from evaluate.degirum_guide_bench import compare

    r = compare(shared_datasets / "openalpr_br_endtoend" / "labels.jsonl", black_fill=False)
    print(r.line())
    assert r.images == 114 and not r.errors
    assert r.runtime_exact > r.labelled // 2  # the runtime reads most of these photos
    assert r.guide_exact >= 0.95 * r.runtime_exact, r.line()
