"""DeGirum PySDK backend: ONNX on CPU, HEF on Hailo (HAILORT), DeGirum's cloud or an AI server.

Pre-processing is DeGirum's own (resize and pad on the host), set to letterbox with the model's
fill (DeGirum pads with black unless told; Ultralytics trained with 114). Its letterbox places
the image exactly as ``runtime.geometry.letterbox`` does (same rounding, centred, bilinear).

Post-processing:
* models whose output is our ``yolov8_xywh_scores`` tensor (ONNX runtime agent) run with DeGirum's
  post-processing off and are decoded by the same numpy code as the onnx backend, so both backends
  give identical plates;
* other models (a HEF with Hailo's on-chip NMS) use DeGirum's post-processor with our thresholds;
  their boxes carry one class each, and the pipeline's duplicate suppression turns overlapping
  boxes of different classes into alternatives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.backends.base import Backend, BackendError, check_output_layout, decode_chars, decode_plates
from runtime.config import PipelineConfig
from runtime.geometry import Letterbox
from runtime.metadata import ModelMetadata
from runtime.model_zoo import ZooModel
from runtime.postprocess import Detections, clip_boxes


def _letterbox_params(height: int, width: int, meta: ModelMetadata) -> Letterbox:
    """The letterbox DeGirum (and runtime.geometry.letterbox) applies to an image of this size."""
    scale = min(meta.input_height / height, meta.input_width / width)
    new_w, new_h = int(round(width * scale)), int(round(height * scale))
    return Letterbox(
        scale=scale,
        pad_x=float((meta.input_width - new_w) // 2),
        pad_y=float((meta.input_height - new_h) // 2),
    )


def detections_from_results(result: Any, width: int, height: int) -> Detections:
    """DeGirum's detection results (bbox in original pixels) as Detections, clipped to the image,
    best first."""
    items = [r for r in result.results if "bbox" in r]
    if not items:
        return Detections.empty()
    items.sort(key=lambda r: -float(r["score"]))
    boxes = clip_boxes(np.array([r["bbox"] for r in items], np.float32), width, height)
    return Detections(
        boxes=boxes,
        scores=np.array([r["score"] for r in items], np.float32),
        classes=np.array([r["category_id"] for r in items], np.int64),
    )


class DegirumBackend(Backend):
    name = "degirum"
    max_concurrent_detect = 1  # one PySDK model object is not shared between threads

    def __init__(
        self,
        det: ZooModel,
        ocr: ZooModel,
        config: PipelineConfig,
        host: str = "@local",
        zoo_url: str | None = None,
        token: str | None = None,
        postprocess: str = "auto",
    ) -> None:
        """``postprocess``: "auto" (ours where the model gives the raw tensor, else DeGirum's),
        "runtime" (always ours) or "degirum" (always DeGirum's post-processor)."""
        super().__init__(det, ocr, config)
        if postprocess not in ("auto", "runtime", "degirum"):
            raise BackendError(f"postprocess must be auto, runtime or degirum, got {postprocess!r}")
        self.postprocess = postprocess
        try:
            import degirum  # noqa: F401
        except ImportError:
            raise BackendError(
                "the degirum backend needs DeGirum PySDK: pip install 'lpr-runtime[degirum]'"
            ) from None
        self.host = host
        self.det_model, self.det_raw = self._load(
            det, zoo_url, token, config.det_conf, config.det_iou, config.max_plates
        )
        self.ocr_model, self.ocr_raw = self._load(
            ocr, zoo_url, token, config.ocr_decode_conf, config.ocr_iou, config.max_chars
        )

    def _load(
        self, model: ZooModel, zoo_url: str | None, token: str | None, conf: float, iou: float, max_det: int
    ) -> tuple[Any, bool]:
        import degirum as dg

        # Locally the entry's own JSON is the zoo (so equal names elsewhere cannot clash); an AI
        # server or the cloud take models from their zoo (zoo_url) by the same name.
        local = str(model.json_path.resolve())  # absolute: PySDK reads a relative path as a cloud zoo
        url = zoo_url if zoo_url is not None else (local if self.host == "@local" else "")
        try:
            m = dg.load_model(model.name, self.host, url, token or "")
        except Exception as e:  # PySDK raises DegirumException and others
            raise BackendError(
                f"{model.json_path}: DeGirum cannot load {model.name} on {self.host} ({str(e).strip()[:400]})"
            ) from None
        fill = model.meta.letterbox_fill
        m.input_pad_method = "letterbox"
        m.input_resize_method = "bilinear"
        m.input_letterbox_fill_color = (fill, fill, fill)
        m.input_numpy_colorspace = "BGR"
        raw = {"runtime": True, "degirum": False}.get(
            self.postprocess, model.runtime == "ONNX" and model.meta.output_layout == "yolov8_xywh_scores"
        )
        if raw:
            m.output_postprocess_type = "None"
        else:
            m.output_confidence_threshold = conf
            m.output_nms_threshold = iou
            m.output_max_detections = max_det
        return m, raw

    def _raw_tensor(self, result: Any, model: ZooModel) -> np.ndarray:
        data = np.asarray(result.results[0]["data"], np.float32)
        out = data.reshape(1, 4 + model.meta.num_classes, -1)
        check_output_layout(model, list(out.shape))
        return out

    def raw_detect_image(self, image: np.ndarray) -> np.ndarray:
        """The detector's raw output tensor for a BGR image (parity checks; raw mode only)."""
        if not self.det_raw:
            raise BackendError(f"{self.det.json_path}: raw outputs are only available from ONNX models")
        return self._raw_tensor(self.det_model.predict(image), self.det)

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        result = self.det_model.predict(image)
        if not self.det_raw:
            return detections_from_results(result, w, h)
        lb = _letterbox_params(h, w, self.det.meta)
        return decode_plates(self._raw_tensor(result, self.det), self.det.meta, lb, w, h, self.config)

    def read(self, crops: list[np.ndarray]) -> list[Detections]:
        if not crops:
            return []
        out = []
        for crop, result in zip(crops, self.ocr_model.predict_batch(crops), strict=True):
            h, w = crop.shape[:2]
            if self.ocr_raw:
                lb = _letterbox_params(h, w, self.ocr.meta)
                out.append(
                    decode_chars(self._raw_tensor(result, self.ocr), self.ocr.meta, lb, w, h, self.config)
                )
            else:
                out.append(detections_from_results(result, w, h))
        return out

    def describe(self) -> dict:
        return {
            **super().describe(),
            "host": self.host,
            "postprocess": {
                "det": "runtime" if self.det_raw else "degirum",
                "ocr": "runtime" if self.ocr_raw else "degirum",
            },
        }

    def close(self) -> None:
        self.det_model = self.ocr_model = None
