"""The interface every backend implements, and the pre/post-processing they share.

A backend runs the two models and returns :class:`~runtime.postprocess.Detections`: plates in image
pixels, characters in crop pixels. Everything after that (cropping, reading order, rules) is the
pipeline's and identical for all backends.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from runtime.config import PipelineConfig
from runtime.errors import BackendError
from runtime.geometry import Letterbox, letterbox
from runtime.metadata import ModelMetadata
from runtime.model_zoo import ZooModel
from runtime.postprocess import Detections, decode_yolov8, suppress_contained


class ModelClock:
    """Wall time during which at least one request to a model is outstanding (sent, not answered).

    Over a run, ``busy_s / run time`` is the share of time spent waiting on that model: near 1 for
    the model that bounds the rate, lower for one that has slack (the benchmark prints both).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outstanding = 0
        self._since = 0.0
        self._busy = 0.0
        self.peak = 0
        """The most requests outstanding at once since the last reset (1: one at a time)."""

    def start(self) -> None:
        with self._lock:
            if self._outstanding == 0:
                self._since = time.perf_counter()
            self._outstanding += 1
            self.peak = max(self.peak, self._outstanding)

    def stop(self) -> None:
        with self._lock:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._busy += time.perf_counter() - self._since

    @contextmanager
    def timing(self) -> Iterator[None]:
        self.start()
        try:
            yield
        finally:
            self.stop()

    def busy_s(self) -> float:
        with self._lock:
            open_interval = time.perf_counter() - self._since if self._outstanding else 0.0
            return self._busy + open_interval

    def reset(self) -> None:
        with self._lock:
            self._busy = 0.0
            self._since = time.perf_counter()
            self.peak = self._outstanding


def preprocess(image: np.ndarray, meta: ModelMetadata) -> tuple[np.ndarray, Letterbox]:
    """BGR image -> the model's input tensor [1, 3, H, W] float32, as the metadata prescribes."""
    import cv2

    boxed, lb = letterbox(image, meta.input_height, meta.input_width, meta.letterbox_fill)
    if meta.channel_order.upper() == "RGB":
        boxed = cv2.cvtColor(boxed, cv2.COLOR_BGR2RGB)
    x = boxed.astype(np.float32)
    x *= np.float32(meta.scale)
    if any(meta.mean) or any(s != 1 for s in meta.std):
        x -= np.asarray(meta.mean, np.float32)
        x /= np.asarray(meta.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), lb


def decode_plates(
    raw: np.ndarray, meta: ModelMetadata, lb: Letterbox, width: int, height: int, config: PipelineConfig
) -> Detections:
    """Plate boxes in image pixels (clipped to the image) from the detector's raw output."""
    dets = decode_yolov8(
        raw, meta.num_classes, config.det_conf, config.det_iou, config.max_plates, agnostic=True
    )
    return suppress_contained(dets.to_image(lb, width, height), config.det_contained)


def decode_chars(
    raw: np.ndarray, meta: ModelMetadata, lb: Letterbox, width: int, height: int, config: PipelineConfig
) -> Detections:
    """Character boxes in crop pixels from the OCR model's raw output (class-agnostic NMS)."""
    dets = decode_yolov8(
        raw, meta.num_classes, config.ocr_decode_conf, config.ocr_iou, config.max_chars, agnostic=True
    )
    return dets.to_image(lb, width, height)


def check_output_layout(model: ZooModel, shape: list) -> None:
    """The model's output must be [1, 4 + nc, N] for the ``yolov8_xywh_scores`` layout."""
    nc = model.meta.num_classes
    if len(shape) != 3 or (isinstance(shape[1], int) and shape[1] != 4 + nc):
        raise BackendError(
            f"{model.model_path}: output shape {shape} is not [1, 4 + {nc}, N] "
            f"({model.meta.output_layout} with {nc} classes)"
        )


class Backend(ABC):
    """Runs the plate detector and the OCR model of one zoo."""

    name: str = "?"
    max_concurrent_detect: int = 1
    """How many ``detect`` calls may run at once (threads); the pipeline respects it."""
    reads_async: bool = False
    """True when ``read_async`` queues crops without waiting (a streaming backend): the pipeline
    then sends the crops of the next frames before the current frame's come back."""

    def __init__(self, det: ZooModel, ocr: ZooModel, config: PipelineConfig) -> None:
        self.det = det
        self.ocr = ocr
        self.config = config
        self.clocks = {"detector": ModelClock(), "ocr": ModelClock()}
        """Time spent waiting on each model (see :class:`ModelClock`)."""

    @abstractmethod
    def detect(self, image: np.ndarray) -> Detections:
        """Plates in one BGR image: boxes in image pixels, best first."""

    @abstractmethod
    def read(self, crops: list[np.ndarray]) -> list[Detections]:
        """Characters in each plate crop (one batch per frame): boxes in that crop's pixels."""

    def detect_lane(self, workers: int, in_flight: int) -> DetectLane:
        """Where the pipeline sends frames to be decoded and detected, ``in_flight`` at most at a
        time: by default a pool of ``workers`` threads calling ``detect``; a streaming backend keeps
        its requests in flight on the device instead."""
        return PoolDetectLane(self, workers)

    def read_async(self, crops: list[np.ndarray]) -> Future:
        """A Future for ``read(crops)``; here computed at once (see ``reads_async``)."""
        future: Future = Future()
        try:
            future.set_result(self.read(crops))
        except Exception as e:
            future.set_exception(e)
        return future

    def ocr_batches(self) -> dict | None:
        """How the OCR model's inputs were grouped, over every run so far (a streaming backend's
        held batches, shared by all cameras of the process); None where each ``read`` call is
        its own batch (onnx: the shipped OCR model takes one crop per call)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources keep this no-op
        """Release the models (the backend is unusable afterwards)."""

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "det_model": str(self.det.model_path),
            "ocr_model": str(self.ocr.model_path),
        }


DetectedFrame = tuple[np.ndarray | None, Detections | None, str | None]
"""(image, plates, None) for a frame that was read, (None, None, error message) for one that failed."""


def frame_error(frame, error: Exception) -> str:
    """The message of a frame the backend failed on: names the frame, says what failed."""
    what = f"{type(error).__name__}: {str(error).strip()[:300]}"
    return f"{frame.source} (frame {frame.index}): the plate detector failed on this frame ({what})"


def detect_frame(backend: Backend, frame) -> DetectedFrame:
    """Decode one frame and find its plates; a frame that cannot be decoded, or that the backend
    fails on (a shape it cannot letterbox, a device error), gives an error record naming it."""
    from runtime.errors import ImageError

    try:
        image = frame.load(backend.config.max_image_pixels)
    except ImageError as e:
        return None, None, str(e)
    try:
        return image, backend.detect(image), None
    except Exception as e:  # any failure on one frame is that frame's error; the run goes on
        return None, None, frame_error(frame, e)


class DetectLane(ABC):
    """Frames in, Futures of :data:`DetectedFrame` out (one per frame); ``close`` waits for the work."""

    @abstractmethod
    def submit(self, frame) -> Future: ...

    @abstractmethod
    def close(self) -> None: ...


class PoolDetectLane(DetectLane):
    """Threads each decoding a frame and calling ``detect`` (ONNX Runtime and OpenCV release the GIL,
    so on a 2-core device two frames are detected at once)."""

    def __init__(self, backend: Backend, workers: int) -> None:
        self._backend = backend
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="lpr-detect")

    def submit(self, frame) -> Future:
        return self._pool.submit(detect_frame, self._backend, frame)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
