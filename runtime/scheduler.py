"""The frame scheduler both the image pipeline and the video loop run on.

Detector workers take frame t+1 (and more) while one reader thread runs the second stage (crop,
read, order; or track and read on demand) of frame t; results come out in source order, with a
bounded number of frames in flight. ONNX Runtime and OpenCV release the GIL, so on a 2-core
device both cores stay busy.

Where frames go to be detected is the backend's (``Backend.detect_lane``): a pool of threads
calling ``detect`` (onnx), or decode threads feeding the detector's ``predict_batch`` stream with
requests in flight on the device (degirum). A second stage may return a Future instead of its
result (a streaming backend's OCR: the frame's crops are queued and the reader thread goes on to
the next frame); the scheduler waits for it when the frame's turn comes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from runtime.backends import Backend
from runtime.backends.base import detect_frame
from runtime.config import PipelineConfig
from runtime.frames import Frame
from runtime.postprocess import Detections

Detected = tuple[np.ndarray | None, Detections | None, str | None]
"""A frame after the detector: (pixels, detections, None), or (None, None, error) when unreadable."""
T = TypeVar("T")


def _frame_errors() -> tuple[type[BaseException], ...]:
    import cv2

    return (cv2.error, MemoryError)


FRAME_ERRORS = _frame_errors()
"""What one frame may raise beyond ImageError without it being a bug of ours: OpenCV refusing an
odd shape, or no memory for a huge image. It becomes that frame's error record."""


def frame_error(source: str, error: BaseException) -> str:
    """One line for a frame that could not be processed: the source and OpenCV's or Python's reason."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return f"{source}: cannot be processed ({type(error).__name__}: {lines[-1][:200]})"


class FrameScheduler:
    """Runs the detector on a worker pool and a second stage on one reader thread, in frame order.

    >>> scheduler = FrameScheduler(backend, config)
    >>> for result in scheduler.run(frames, lambda frame, detected: detected.result()):
    ...     ...
    """

    def __init__(self, backend: Backend, config: PipelineConfig) -> None:
        self.backend = backend
        self.config = config

    @property
    def workers(self) -> int:
        """Detector threads: the configured number, capped by what the backend can run at once."""
        return max(1, min(self.config.detect_workers, self.backend.max_concurrent_detect))

    def detect(self, frame: Frame) -> Detected:
        """Decode ``frame`` and run the plate detector; a frame that cannot be read, or that the
        backend fails on, gives its error (naming the frame)."""
        return detect_frame(self.backend, frame)

    def run(
        self,
        frames: Iterable[Frame],
        second_stage: Callable[..., T | Future[T]],
        *args: Any,
    ) -> Iterator[T]:
        """Detect frames on the worker pool; ``second_stage(frame, detected_future, *args)`` runs on
        one reader thread in frame order; results are yielded in order, at most ``workers +
        queue_depth`` frames in flight. A source that fails (a stream lost for good) first yields
        what is in flight, then raises."""
        workers = self.workers
        in_flight = workers + self.config.queue_depth
        det_lane = self.backend.detect_lane(workers, in_flight)
        read_pool = ThreadPoolExecutor(1, thread_name_prefix="lpr-read")
        pending: deque[Future] = deque()
        try:
            source = iter(frames)
            while True:
                try:
                    frame = next(source)
                except StopIteration:
                    break
                except Exception:  # the source failed (a stream lost for good): finish what is in flight
                    while pending:
                        yield _outcome(pending.popleft())
                    raise
                detected = det_lane.submit(frame)
                pending.append(read_pool.submit(second_stage, frame, detected, *args))
                if len(pending) >= in_flight:
                    yield _outcome(pending.popleft())
            while pending:
                yield _outcome(pending.popleft())
        finally:
            for f in pending:
                f.cancel()
            det_lane.close()
            read_pool.shutdown(wait=True, cancel_futures=True)


def _outcome(second_stage: Future) -> Any:
    """A second stage's result; one that completes later (a streaming read) returned a Future."""
    result = second_stage.result()
    return result.result() if isinstance(result, Future) else result
