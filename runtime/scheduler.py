"""The frame scheduler both the image pipeline and the video loop run on.

Detector workers take frame t+1 (and more) while one reader thread runs the second stage (crop,
read, order; or track and read on demand) of frame t; results come out in source order, with a
bounded number of frames in flight. ONNX Runtime and OpenCV release the GIL, so on a 2-core
device both cores stay busy.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from runtime.backends import Backend
from runtime.config import PipelineConfig
from runtime.errors import ImageError
from runtime.frames import Frame
from runtime.postprocess import Detections

Detected = tuple[np.ndarray | None, Detections | None, str | None]
"""A frame after the detector: (pixels, detections, None), or (None, None, error) when unreadable."""
T = TypeVar("T")


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
        """Decode ``frame`` and run the plate detector; a frame that cannot be read gives its error."""
        try:
            image = frame.load()
        except ImageError as e:
            return None, None, str(e)
        return image, self.backend.detect(image), None

    def run(
        self,
        frames: Iterable[Frame],
        second_stage: Callable[..., T],
        *args: Any,
    ) -> Iterator[T]:
        """Detect frames on the worker pool; ``second_stage(frame, detected_future, *args)`` runs on
        one reader thread in frame order; results are yielded in order, at most ``workers +
        queue_depth`` frames in flight. A source that fails (a stream lost for good) first yields
        what is in flight, then raises."""
        workers = self.workers
        in_flight = workers + self.config.queue_depth
        det_pool = ThreadPoolExecutor(workers, thread_name_prefix="lpr-detect")
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
                        yield pending.popleft().result()
                    raise
                detected = det_pool.submit(self.detect, frame)
                pending.append(read_pool.submit(second_stage, frame, detected, *args))
                if len(pending) >= in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()
            det_pool.shutdown(wait=True, cancel_futures=True)
            read_pool.shutdown(wait=True, cancel_futures=True)
