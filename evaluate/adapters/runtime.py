"""The shipped runtime predictor as an evaluation Pipeline: what is measured is what deploys.

TODO(lead): finish wiring once runtime/ (issue 10) has landed. The runtime is imported lazily so the
rest of the evaluation works (and is tested) without it. Four calls need the runtime's real names:
  1. constructing the predictor from the config's models / backend / precision / threads,
  2. the pipeline on one image,
  3. OCR of given plate boxes in an image, cut exactly as detections are cut,
  4. per-stage timings since the last call (ms lists keyed pre / det / ocr / post).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.records import Box, Plate


class RuntimeAdapter:
    def __init__(self, det_model: str | None = None, ocr_model: str | None = None, zoo: str | None = None,
                 backend: str = "onnx", precision: str = "fp32", threads: int | None = None, **options: Any):
        try:
            from runtime.predictor import Predictor  # TODO(lead): the facade's module and name
        except ImportError as e:
            raise RuntimeError("the runtime predictor is not available yet (runtime/, issue 10); "
                               "evaluate a recorded run with adapter=replay replay=PATH/predictions.jsonl") from e
        self.options = dict(det_model=det_model, ocr_model=ocr_model, zoo=zoo, backend=backend,
                            precision=precision, threads=threads, **options)
        self.predictor = Predictor(**{k: v for k, v in self.options.items() if v is not None})  # TODO(lead)

    def detect_and_read(self, image: np.ndarray, key: str) -> list[Plate]:
        return self.predictor.run([image])[0]  # TODO(lead)

    def read_plates(self, image: np.ndarray, boxes: Sequence[Box], key: str) -> list[Plate]:
        return self.predictor.read_boxes(image, list(boxes))  # TODO(lead): the runtime's OCR of given boxes

    def timings(self) -> dict[str, list[float]]:
        return self.predictor.pop_timings()  # TODO(lead)

    def describe(self) -> dict[str, Any]:
        return self.predictor.describe()  # TODO(lead): name, backend, precision, threads, models{role:{name,path,sha256}}
