"""Annotated pictures of what was read: plate boxes, texts and character boxes (OpenCV only)."""

from __future__ import annotations

import numpy as np

from runtime.records import Plate

PLATE_COLOUR = (0, 200, 0)
EMPTY_COLOUR = (0, 140, 255)
CHAR_COLOUR = (255, 160, 0)


def draw_plates(image: np.ndarray, plates: list[Plate]) -> np.ndarray:
    """A copy of ``image`` with every plate's box, text (or reason) and character boxes drawn."""
    import cv2

    out = image.copy()
    thick = max(1, round(max(out.shape[:2]) / 600))
    for plate in plates:
        x1, y1, x2, y2 = (int(round(v)) for v in plate.box)
        colour = PLATE_COLOUR if plate.text else EMPTY_COLOUR
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        for c in plate.chars:
            cx1, cy1, cx2, cy2 = (int(round(v)) for v in c.box)
            cv2.rectangle(out, (cx1, cy1), (cx2, cy2), CHAR_COLOUR, 1)
        label = plate.text or f"({plate.reason or 'no text'})"
        if plate.track_id is not None:
            label = f"#{plate.track_id} {label}"
        if plate.score is not None:
            label += f" {plate.score:.2f}"
        scale = 0.5 * thick
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y1 - 4 if y1 - th - 4 > 0 else y2 + th + 4
        # A plate at the right or bottom edge keeps its whole label inside the picture.
        tx = max(0, min(x1, out.shape[1] - tw - 1))
        ty = min(ty, out.shape[0] - base - 1)
        cv2.rectangle(out, (tx, ty - th - base), (tx + tw, ty + base), colour, -1)
        cv2.putText(out, label, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return out
