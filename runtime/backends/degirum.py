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

import functools
import threading
from concurrent.futures import Future
from typing import Any

import numpy as np

from runtime.backends.base import (
    Backend,
    BackendError,
    DetectLane,
    check_output_layout,
    decode_chars,
    decode_plates,
    frame_error,
)
from runtime.backends.degirum_stream import BatchStats, HeldBatch, ModelStream, chain, gather
from runtime.config import PipelineConfig
from runtime.geometry import Letterbox
from runtime.metadata import ModelMetadata
from runtime.model_zoo import ZooModel
from runtime.postprocess import Detections, clip_boxes, suppress_contained


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
    """Sync calls (``detect``, ``read``) for one frame at a time; streams for many (see
    :meth:`detect_lane`): while a pipeline runs, every request to either model goes through that
    model's ``predict_batch`` stream, so one PySDK model object is never used by two threads."""

    name = "degirum"
    reads_async = True

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
        # Frames decoded at once on the host while the device works (the lane's loader threads).
        self.max_concurrent_detect = config.detect_workers
        self.ocr_batch = config.ocr_batch or _compiled_batch(ocr)
        if self.ocr_batch > 1:
            # The device scheduler runs this many OCR inputs before switching back to the detector;
            # on Hailo the network is configured for that batch too.
            self.ocr_model.eager_batch_size = self.ocr_batch
            if ocr.runtime == "HAILORT":
                self.ocr_model.extra_device_params = {"HAILO_BATCH_SIZE": self.ocr_batch}
        self.ocr_batch_stats = BatchStats()
        """Batches the OCR stream was sent, over all runs: every camera of a process shares them."""
        self._streams: _Streams | None = None
        self._stream_users = 0
        self._stream_lock = threading.Lock()

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

    def _plates(self, result: Any, width: int, height: int) -> Detections:
        if not self.det_raw:
            found = detections_from_results(result, width, height)
            return suppress_contained(found, self.config.det_contained)
        lb = _letterbox_params(height, width, self.det.meta)
        return decode_plates(
            self._raw_tensor(result, self.det), self.det.meta, lb, width, height, self.config
        )

    def _chars(self, result: Any, width: int, height: int) -> Detections:
        if not self.ocr_raw:
            return detections_from_results(result, width, height)
        lb = _letterbox_params(height, width, self.ocr.meta)
        return decode_chars(self._raw_tensor(result, self.ocr), self.ocr.meta, lb, width, height, self.config)

    def detect(self, image: np.ndarray) -> Detections:
        if self._streams is not None:
            return self.detect_async(image).result()
        h, w = image.shape[:2]
        with self.clocks["detector"].timing():
            result = self.det_model.predict(image)
        return self._plates(result, w, h)

    def read(self, crops: list[np.ndarray]) -> list[Detections]:
        if not crops:
            return []
        if self._streams is not None:
            return self.read_async(crops).result()
        with self.clocks["ocr"].timing():
            results = list(self.ocr_model.predict_batch(crops))
        return [self._chars(r, c.shape[1], c.shape[0]) for c, r in zip(crops, results, strict=True)]

    # -- streaming: predict_batch with requests in flight (runtime/backends/degirum_stream.py) -----
    def detect_lane(self, workers: int, in_flight: int) -> DetectLane:
        """Frames decoded on ``workers`` host threads, then streamed to the detector with up to
        ``in_flight`` on the device; the OCR model's stream opens alongside, for the crops."""
        return StreamDetectLane(self, workers, in_flight)

    def open_streams(self, in_flight: int) -> None:
        """Start both models' streams (nested runs share them; each ``open`` needs a ``close``)."""
        with self._stream_lock:
            self._stream_users += 1
            if self._streams is None:
                self._streams = _Streams(self, in_flight)

    def close_streams(self) -> None:
        with self._stream_lock:
            self._stream_users -= 1
            if self._stream_users > 0 or self._streams is None:
                return
            streams, self._streams = self._streams, None
        streams.close()

    def detect_async(self, image: np.ndarray) -> Future:
        """A Future for ``detect(image)`` through the detector's stream (open_streams first)."""
        h, w = image.shape[:2]
        return chain(self._require_streams().det.submit(image), lambda r: self._plates(r, w, h))

    def read_async(self, crops: list[np.ndarray]) -> Future:
        """A Future for ``read(crops)``: the crops join the OCR stream (held for a batch when the
        OCR model has one) without waiting for earlier frames' crops to come back."""
        streams = self._streams
        if streams is None:
            return super().read_async(crops)
        return gather(
            [
                chain(
                    streams.ocr_batch.submit(c),
                    functools.partial(self._chars, width=c.shape[1], height=c.shape[0]),
                )
                for c in crops
            ]
        )

    def ocr_batches(self) -> dict | None:
        return self.ocr_batch_stats.to_dict()

    def _require_streams(self) -> _Streams:
        if self._streams is None:
            raise BackendError("degirum: the streams are not open (use detect_lane or open_streams)")
        return self._streams

    def describe(self) -> dict:
        return {
            **super().describe(),
            "host": self.host,
            "ocr_batch": self.ocr_batch,
            "postprocess": {
                "det": "runtime" if self.det_raw else "degirum",
                "ocr": "runtime" if self.ocr_raw else "degirum",
            },
        }

    def close(self) -> None:
        if self._streams is not None:
            self._streams.close()
            self._streams = None
        self.det_model = self.ocr_model = None


def _compiled_batch(model: ZooModel) -> int:
    """The batch the zoo JSON says the model was built for (``DEVICE[0].EagerBatchSize``), else 1."""
    import json

    try:
        device = (json.loads(model.json_path.read_text()).get("DEVICE") or [{}])[0]
        return max(1, int(device.get("EagerBatchSize", 1)))
    except (OSError, ValueError, TypeError, AttributeError):
        return 1


class _Streams:
    """The two models' streams of one run, and the OCR batch in front of the OCR stream."""

    def __init__(self, backend: DegirumBackend, in_flight: int) -> None:
        config = backend.config

        def describe(model: ZooModel):
            # PySDK wraps the cause in "Failed to perform model '<name>' inference: ..." (twice, at times).
            return lambda e: f"DeGirum, {model.name}: {str(e).split(' inference: ')[-1].strip()[:300]}"

        self.det = ModelStream(
            backend.det_model, "detector", in_flight, backend.clocks["detector"], describe(backend.det)
        )
        # Crops of every frame in flight may be queued at once.
        ocr_depth = in_flight * max(1, min(config.max_plates, 4))
        self.ocr = ModelStream(
            backend.ocr_model, "ocr", ocr_depth, backend.clocks["ocr"], describe(backend.ocr)
        )
        self.ocr_batch = HeldBatch(
            self.ocr.submit, backend.ocr_batch, config.ocr_batch_wait_ms / 1000, backend.ocr_batch_stats
        )

    def close(self) -> None:
        self.ocr_batch.close()
        self.det.close()
        self.ocr.close()


class StreamDetectLane(DetectLane):
    """Frames decoded on host threads, then streamed to the detector; results as Futures of
    (image, plates, error). A frame that fails (undecodable, or one the device fails on) gives its
    error record; the frames around it are not affected."""

    def __init__(self, backend: DegirumBackend, workers: int, in_flight: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._backend = backend
        backend.open_streams(in_flight)
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="lpr-decode")

    def submit(self, frame) -> Future:
        from runtime.errors import ImageError

        out: Future = Future()

        def decoded(loading: Future) -> None:
            if loading.cancelled():
                out.cancel()
                return
            try:
                image = loading.result()
            except ImageError as e:
                out.set_result((None, None, str(e)))
                return
            except Exception as e:
                out.set_result((None, None, frame_error(frame, e)))
                return
            try:
                detecting = self._backend.detect_async(image)
            except Exception as e:
                out.set_result((None, None, frame_error(frame, e)))
                return
            detecting.add_done_callback(lambda d: out.set_result(_detected(frame, image, d)))

        self._pool.submit(frame.load, self._backend.config.max_image_pixels).add_done_callback(decoded)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._backend.close_streams()


def _detected(frame, image: np.ndarray, detecting: Future) -> tuple:
    try:
        return image, detecting.result(), None
    except Exception as e:
        return None, None, frame_error(frame, e)
