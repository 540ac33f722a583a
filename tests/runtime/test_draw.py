"""Annotated pictures: a plate's label stays whole inside the picture, wherever the plate is."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from runtime.draw import PLATE_COLOUR, draw_plates
from runtime.records import Plate


@pytest.mark.parametrize(
    "box",
    [(560.0, 200.0, 639.0, 230.0), (0.0, 0.0, 90.0, 30.0), (500.0, 440.0, 639.0, 479.0)],
    ids=["right edge", "top left", "bottom right"],
)
def test_label_is_drawn_whole_inside_the_image(box):
    image = np.zeros((480, 640, 3), np.uint8)  # a black frame, as between cars on a video
    plate = Plate(box=box, text="ABC1D23", score=0.91)
    out = draw_plates(image, [plate])
    label = "ABC1D23 0.91"
    thick = max(1, round(640 / 600))
    (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, thick)
    filled = np.all(out == PLATE_COLOUR, axis=2)
    widest_row = int(filled.sum(axis=1).max())
    assert widest_row >= tw, f"the label's background is {widest_row} px wide, the text {tw} px"
    assert not np.array_equal(out, image)
