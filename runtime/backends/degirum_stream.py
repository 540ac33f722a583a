"""DeGirum PySDK models fed as streams: ``model.predict_batch(generator)`` on a thread of its own.

PySDK's answer to per-request round trips is ``predict_batch``: the generator hands it inputs,
the runtime (the ONNX/CPU agent, HAILORT, an AI server, the cloud) keeps up to
``frame_queue_depth`` of them in flight, and results come back in input order. A
:class:`ModelStream` keeps one such loop running: ``submit(data)`` queues an input and returns a
:class:`~concurrent.futures.Future` for its result, so the caller never waits for one request
before sending the next.

The loop runs in PySDK's non-blocking mode: when no input is waiting the generator yields
``None`` (after a short poll), which lets PySDK hand back results that have arrived. Without it,
results of the last inputs would sit in PySDK's queue until the next input came - a deadlock
when the next input depends on them (the OCR crops of a frame wait for that frame's detection).

PySDK ends the whole ``predict_batch`` call when one input fails (an image it cannot resize, an
inference error): the inputs in flight lose their results. The stream then sends each of them
again alone, so only the input that fails gets the error, and starts a new loop for the rest.
Nothing here is specific to one runtime agent.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from runtime.backends.base import ModelClock
from runtime.errors import BackendError

POLL_S = 0.002
"""How long the generator waits for an input before letting PySDK return results (non-blocking mode)."""


@dataclass
class _Request:
    data: Any
    future: Future


_END = object()


class ModelStream:
    """One PySDK model behind a ``predict_batch`` loop: ``submit`` returns a Future per input.

    ``depth`` bounds the inputs in flight on the runtime (``frame_queue_depth``); ``submit`` itself
    never blocks, so the caller bounds what it queues (the pipeline bounds frames in flight).
    ``describe(error)`` turns a failed input's exception into the message of its BackendError.
    """

    def __init__(
        self,
        model: Any,
        label: str,
        depth: int,
        clock: ModelClock | None = None,
        describe: Callable[[Exception], str] | None = None,
    ) -> None:
        self._model = model
        self._label = label
        self._clock = clock or ModelClock()
        self._describe = describe or (lambda e: f"{label}: {str(e).strip()[:400]}")
        if model.frame_queue_depth != depth:
            model.frame_queue_depth = max(1, min(160, depth))  # PySDK's range
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._sent: deque[_Request] = deque()
        self._ended = False
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=f"lpr-{label}-stream", daemon=True)
        self._thread.start()

    def submit(self, data: Any) -> Future:
        """Queue one input (an image, a crop); the Future gives PySDK's result or a BackendError."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise BackendError(f"{self._label}: the stream is closed")
            self._clock.start()
            self._inbox.put(_Request(data, future))
        return future

    def close(self) -> None:
        """Finish the inputs already submitted, then stop the loop (waits for it)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._inbox.put(_END)
        self._thread.join()

    # -- the loop ---------------------------------------------------------------------------------
    def _inputs(self) -> Iterator[Any]:
        while True:
            try:
                request = self._inbox.get(timeout=POLL_S)
            except queue.Empty:
                yield None  # non-blocking mode: PySDK returns what has arrived, then asks again
                continue
            if request is _END:
                self._ended = True
                return
            self._sent.append(request)
            yield request.data, request  # (data, frame info): the request comes back as result.info

    def _serve(self) -> None:
        model = self._model
        while True:
            model.non_blocking_batch_predict = True
            try:
                for result in model.predict_batch(self._inputs()):
                    if result is not None:
                        self._finish(result.info, result=result)
                return
            except Exception as e:  # PySDK ended the call: one input failed, the others lost results
                lost = list(self._sent)
                self._sent.clear()
                model.non_blocking_batch_predict = False
                self._retry_alone(lost, e)
                if self._ended:
                    return
            finally:
                model.non_blocking_batch_predict = False

    def _retry_alone(self, lost: list[_Request], error: Exception) -> None:
        """Each input whose result was lost, sent again on its own: only the bad one fails."""
        for request in lost:
            try:
                result = self._model.predict(request.data)
            except Exception as e:  # this input fails by itself
                self._finish(request, error=BackendError(self._describe(e)))
            else:
                self._finish(request, result=result)

    def _finish(self, request: _Request, result: Any = None, error: Exception | None = None) -> None:
        try:
            self._sent.remove(request)
        except ValueError:
            pass  # a retried request is no longer listed
        self._clock.stop()
        if error is not None:
            request.future.set_exception(error)
        else:
            request.future.set_result(result)


def chain(future: Future, then: Callable[[Any], Any]) -> Future:
    """A Future for ``then(future.result())``, computed in the thread that completes ``future``;
    an exception from either side ends up in the returned Future."""
    out: Future = Future()

    def done(f: Future) -> None:
        try:
            out.set_result(then(f.result()))
        except Exception as e:
            out.set_exception(e)

    future.add_done_callback(done)
    return out


def gather(futures: list[Future]) -> Future:
    """A Future for the list of the results of ``futures`` (in their order); the first exception wins."""
    out: Future = Future()
    if not futures:
        out.set_result([])
        return out
    remaining = [len(futures)]
    lock = threading.Lock()

    def done(_: Future) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            try:
                out.set_result([f.result() for f in futures])
            except Exception as e:
                out.set_exception(e)

    for f in futures:
        f.add_done_callback(done)
    return out


class BatchStats:
    """What a :class:`HeldBatch` sent: batches, inputs, and batches whose inputs came from several
    calling threads. Each camera of ``--cameras`` reads on a thread of its own, so the last count is
    how often crops of different cameras went to the OCR model together. Kept on the backend, so
    it adds up over every run (and stream) of the process."""

    def __init__(self) -> None:
        self.batches = 0
        self.inputs = 0
        self.from_several_callers = 0
        self._lock = threading.Lock()

    def add(self, inputs: int, callers: int) -> None:
        with self._lock:
            self.batches += 1
            self.inputs += inputs
            self.from_several_callers += callers > 1

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return batch_summary(self.batches, self.inputs, self.from_several_callers)


def batch_summary(batches: int, crops: int, from_several_cameras: int) -> dict[str, Any]:
    """The OCR batches as reported (``Backend.ocr_batches``, the camera benchmark)."""
    return {
        "batches": batches,
        "crops": crops,
        "crops_per_batch": round(crops / batches, 2) if batches else None,
        "batches_from_several_cameras": from_several_cameras,
    }


class HeldBatch:
    """Holds inputs until ``size`` are waiting or the first has waited ``wait_s``, then submits them
    back to back, so a device that switches between two models runs the batch before switching.

    With ``size`` 1 every input goes through at once. ``submit_now(data) -> Future`` is the
    stream's submit; the Futures returned here carry that Future's outcome. Every run of one
    backend (each camera of a process) shares the stream and this batch, so a batch may hold crops
    of several cameras: ``stats`` counts them.
    """

    def __init__(
        self,
        submit_now: Callable[[Any], Future],
        size: int,
        wait_s: float,
        stats: BatchStats | None = None,
    ) -> None:
        self._submit_now = submit_now
        self.stats = stats if stats is not None else BatchStats()
        self.size = max(1, size)
        self._wait_s = max(0.0, wait_s)
        self._held: list[tuple[Any, Future, int]] = []
        self._first_at = 0.0
        self._cv = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        if self.size > 1:
            self._thread = threading.Thread(target=self._flush_when_due, name="lpr-ocr-batch", daemon=True)
            self._thread.start()

    def submit(self, data: Any) -> Future:
        if self.size == 1:
            self.stats.add(1, 1)
            return self._submit_now(data)
        future: Future = Future()
        with self._cv:
            if not self._held:
                self._first_at = time.perf_counter()
            self._held.append((data, future, threading.get_ident()))
            if len(self._held) >= self.size:
                self._flush_locked()
            else:
                self._cv.notify()
        return future

    def close(self) -> None:
        """Submit what is held and stop the timer thread."""
        if self._thread is None:
            return
        with self._cv:
            self._closed = True
            self._flush_locked()
            self._cv.notify()
        self._thread.join()

    def _flush_when_due(self) -> None:
        with self._cv:
            while not self._closed:
                if not self._held:
                    self._cv.wait()
                    continue
                left = self._first_at + self._wait_s - time.perf_counter()
                if left > 0:
                    self._cv.wait(left)
                    continue
                self._flush_locked()

    def _flush_locked(self) -> None:
        held, self._held = self._held, []
        if held:
            self.stats.add(len(held), len({caller for _, _, caller in held}))
        for data, future, _ in held:
            try:
                inner = self._submit_now(data)
            except Exception as e:
                future.set_exception(e)
                continue
            inner.add_done_callback(functools.partial(_copy_outcome, target=future))


def _copy_outcome(source: Future, target: Future) -> None:
    error = source.exception()
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())
