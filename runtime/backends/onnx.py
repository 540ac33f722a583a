"""ONNX Runtime backend: our own letterbox, decode and NMS in numpy; fp32 or int8 (QDQ) models."""

from __future__ import annotations

import numpy as np

from runtime.backends.base import (
    Backend,
    BackendError,
    check_output_layout,
    decode_chars,
    decode_plates,
    preprocess,
)
from runtime.config import PipelineConfig
from runtime.model_zoo import ZooModel
from runtime.postprocess import Detections


def make_session(path, threads: int):
    """One CPU session. Without spinning, idle pool threads do not steal the other stages' cores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime raises its own types for corrupt files
        raise BackendError(f"{path}: ONNX Runtime cannot load it ({str(e).strip()[:300]})") from None


class OnnxBackend(Backend):
    name = "onnx"

    def __init__(self, det: ZooModel, ocr: ZooModel, config: PipelineConfig) -> None:
        super().__init__(det, ocr, config)
        for m in (det, ocr):
            if not m.is_onnx:
                raise BackendError(
                    f"{m.model_path}: the onnx backend runs .onnx models (use --backend degirum)"
                )
        self.det_session = make_session(det.model_path, config.threads)
        self.ocr_session = make_session(ocr.model_path, config.threads)
        self._det_input = self._check(self.det_session, det)
        self._ocr_input = self._check(self.ocr_session, ocr)
        batch = self.ocr_session.get_inputs()[0].shape[0]
        # Ultralytics exports a static batch of 1; a dynamic batch dimension lets a frame's crops go
        # in one call.
        self.ocr_batched = not isinstance(batch, int)
        # A session may be run from several threads at once; each call uses `threads` cores.
        self.max_concurrent_detect = config.detect_workers

    @staticmethod
    def _check(session, model: ZooModel) -> str:
        inp = session.get_inputs()[0]
        _, c, h, w = inp.shape
        meta = model.meta
        if (
            (isinstance(h, int) and h != meta.input_height)
            or (isinstance(w, int) and w != meta.input_width)
            or c != 3
        ):
            raise BackendError(
                f"{model.model_path}: input shape {inp.shape} does not match its metadata "
                f"({meta.input_height}x{meta.input_width}x3)"
            )
        check_output_layout(model, session.get_outputs()[0].shape)
        return inp.name

    def raw_detect(self, tensor: np.ndarray) -> np.ndarray:
        """The detector's raw output for a preprocessed input (for parity checks)."""
        return self.det_session.run(None, {self._det_input: tensor})[0]

    def detect(self, image: np.ndarray) -> Detections:
        x, lb = preprocess(image, self.det.meta)
        with self.clocks["detector"].timing():
            raw = self.det_session.run(None, {self._det_input: x})[0]
        return decode_plates(raw, self.det.meta, lb, image.shape[1], image.shape[0], self.config)

    def read(self, crops: list[np.ndarray]) -> list[Detections]:
        if not crops:
            return []
        inputs = [preprocess(c, self.ocr.meta) for c in crops]
        with self.clocks["ocr"].timing():
            if self.ocr_batched and len(inputs) > 1:
                out = self.ocr_session.run(None, {self._ocr_input: np.concatenate([x for x, _ in inputs])})[0]
                raws = [out[i : i + 1] for i in range(len(inputs))]
            else:
                raws = [self.ocr_session.run(None, {self._ocr_input: x})[0] for x, _ in inputs]
        return [
            decode_chars(raw, self.ocr.meta, lb, c.shape[1], c.shape[0], self.config)
            for raw, (_, lb), c in zip(raws, inputs, crops, strict=True)
        ]

    def close(self) -> None:
        self.det_session = self.ocr_session = None
