"""SIGTERM (and SIGINT) during a video run: stop reading, finish what is in flight, lose nothing.

The handler only sets a flag; :class:`StopOnSignal` wraps the frame source and ends it before
the next frame once the flag is up, so the pipeline drains the frames in flight, the tracker
reports the tracks still open as events, and the command closes the annotated video before it
exits with 128 + the signal's number (143 for SIGTERM, 130 for Ctrl-C).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import Any


class StopFlag:
    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signum = signum

    def install(self, *signums: int) -> StopFlag:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            for s in signums:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_status(self) -> int:
        return 128 + int(self.signum or 0)


class StopOnSignal:
    """``source`` (a StreamSource) that ends before its next frame once ``flag`` is set; its other
    attributes (name, stats, drain_events, close, ...) are the source's."""

    def __init__(self, source: Any, flag: StopFlag) -> None:
        self._source, self._flag = source, flag
        self.last_index: int | None = None

    def __iter__(self) -> Iterator[Any]:
        for frame in self._source:
            if self._flag.signum is not None:
                return
            self.last_index = frame.index
            yield frame
            if self._flag.signum is not None:
                return

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)
