"""DeGirum's licence-plate guide, as its users write it, on our model zoo.

Users who follow DeGirum's guide do not run our pipeline: they load the two models with
``dg.load_model``, run the detector, cut each ``results[i]["bbox"]`` out of the image, run the OCR
model on every crop and join the characters sorted by their left x. This module is that code,
kept here so it is tested on real photos against ``python -m runtime`` (tests/runtime/
test_degirum_guide.py, ``python -m evaluate.guide_bench``), with the two things the guide leaves
to its reader done as our documentation tells them:

* the letterbox fill: DeGirum pads with black unless told (PySDK 1.5 has no JSON key for it, only
  ``model.input_letterbox_fill_color``); our models were trained on grey 114, which the entry's
  ``"LPR"`` object names;
* two-line plates: a plain x-sort interleaves the lines; :func:`runtime.reading.in_reading_order`
  reads top line first, each line left to right (one line: exactly the x-sort).

    import degirum as dg
    from runtime.degirum_guide import load_guide_models, read_plates
    det, ocr = load_guide_models("runtime/zoo")                  # @local, ONNX/CPU
    for plate in read_plates(det, ocr, cv2.imread("car.jpg")):
        print(plate.text, plate.box)

Everything the post-processing does (suppression across classes, thresholds) comes from the zoo
JSON: that is what the export stage tunes for DeGirum's post-processor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.model_zoo import DEFAULT_ZOO, ZooError, find_models
from runtime.reading import in_reading_order
from runtime.records import Char, to_box


@dataclass
class GuidePlate:
    """One plate as the guide's code reads it."""

    text: str
    box: tuple[float, float, float, float]
    """The detector's box, clipped to the image (original pixels)."""
    score: float
    chars: list[Char]
    """In reading order."""


def load_guide_models(
    zoo: str | Path | None = None,
    host: str = "@local",
    token: str = "",
    precision: str | None = None,
    fill: int | None = None,
) -> tuple[Any, Any]:
    """The detector and OCR model of ``zoo`` loaded with ``dg.load_model`` as the guide does.

    ``zoo``: a zoo folder (default: the shipped one); locally it is DeGirum's own zoo URL, on an
    AI server (``host="127.0.0.1:8778"``) the server's zoo holds the same names. ``fill``: the
    letterbox fill (default: the one the models were trained with, from their metadata); None
    in the metadata and here leaves DeGirum's black.
    """
    import degirum as dg

    det, ocr = find_models(zoo, precision=precision)
    # Locally the zoo folder is DeGirum's zoo URL - absolute, since PySDK takes a relative path
    # for the name of a cloud zoo; an AI server serves its own zoo (the URL stays empty).
    zoo_url = str(Path(zoo if zoo is not None else DEFAULT_ZOO).resolve()) if host == "@local" else ""
    models = []
    for entry in (det, ocr):
        try:
            model = dg.load_model(entry.name, host, zoo_url, token)
        except Exception as e:  # PySDK raises DegirumException and others
            raise ZooError(
                f"{entry.json_path}: DeGirum cannot load {entry.name} on {host} ({str(e).strip()[:300]})"
            ) from None
        value = entry.meta.letterbox_fill if fill is None else fill
        model.input_letterbox_fill_color = (int(value),) * 3
        models.append(model)
    return models[0], models[1]


def crop_box(bbox: list[float], width: int, height: int) -> tuple[int, int, int, int] | None:
    """``results[i]["bbox"]`` as integer pixel bounds clipped to the image; None when nothing is
    left inside it (a crop of no pixels would make DeGirum raise)."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    left, top = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
    right, bottom = min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2)))
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom


def chars_of(result: Any) -> list[Char]:
    """The OCR model's detections in a crop as characters (crop pixels)."""
    return [
        Char(char=str(r["label"]), box=to_box(r["bbox"]), score=float(r["score"]))
        for r in result.results
        if "bbox" in r
    ]


def read_plates(det_model: Any, ocr_model: Any, image: np.ndarray) -> list[GuidePlate]:
    """The guide's loop on one BGR image: detect, crop each bbox (clipped), OCR each crop, order.

    A crop where the OCR model finds nothing gives a plate with empty text (the guide's compound
    model raises IndexError there), so every detected plate is reported.
    """
    height, width = image.shape[:2]
    plates = []
    for r in det_model(image).results:
        if "bbox" not in r:
            continue
        bounds = crop_box(r["bbox"], width, height)
        if bounds is None:
            continue
        left, top, right, bottom = bounds
        crop = np.ascontiguousarray(image[top:bottom, left:right])
        chars = in_reading_order(chars_of(ocr_model(crop)))
        plates.append(
            GuidePlate(
                text="".join(c.char for c in chars),
                box=(float(left), float(top), float(right), float(bottom)),
                score=float(r["score"]),
                chars=chars,
            )
        )
    return plates
