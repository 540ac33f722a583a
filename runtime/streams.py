"""Video files, cameras and network streams as frame sources, for ``python -m runtime SOURCE``.

``open_stream(spec)`` opens a video file, a camera (``0``, ``/dev/video0``), an RTSP/HTTP/RTMP URL
or the Raspberry Pi camera (``picamera``, through picamera2) and returns a :class:`StreamSource`:
an iterator of :class:`runtime.frames.Frame` with the pixels set.

- Files give every frame in order (the reader waits for the consumer), unless ``realtime`` paces
  them like a camera or ``drop="always"``.
- Live sources are read by a grabber thread that keeps only the newest frame (one slot, newest
  wins): a slow consumer gets the latest picture, never a backlog, and every frame overwritten is
  counted in ``stats.frames_dropped``. Frame indexes count the source's frames, so dropped and
  missed frames leave gaps.
- A live source whose read fails (or stalls past ``read_timeout_s``) is reopened with exponential
  back-off, at most ``reconnect_attempts`` times; ``stream_lost`` / ``stream_restored`` /
  ``stream_failed`` events (``drain_events()``) report the outage and the frames missed (estimated
  from the frame rate). When the attempts run out the iterator raises :class:`StreamLostError`.
- Credentials in URLs never leave this module: every name, event, log line and error goes
  through :func:`redact_url`, and OpenCV's and FFmpeg's own logging (which may print the URL) is
  silenced unless OPENCV_LOG_LEVEL / OPENCV_FFMPEG_LOGLEVEL are set in the environment.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from runtime.config import StreamConfig
from runtime.errors import SourceError, StreamLostError
from runtime.frames import URL_SCHEMES, Frame, redact_url

# FFmpeg's log level (quiet unless OPENCV_FFMPEG_LOGLEVEL is set) is set by runtime.frames, imported
# above, because OpenCV reads it once, at its first use of FFmpeg: it must come before any capture.

log = logging.getLogger(__name__)

_SANE_FPS = (0.5, 240.0)
"""Frame rates outside this are container noise (RTSP often reports 90000): measured instead."""
_QUEUE_WHEN_NOT_DROPPING = 4
"""Frames buffered between the reader thread and the consumer with drop="never" (bounded)."""
_EXACT_COUNT_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi"}
"""Containers whose header frame count is exact; others (mkv, webm, raw h264) estimate it."""


def _kind(spec: str) -> str:
    s = spec.strip()
    if s.lower().startswith(URL_SCHEMES):
        return "url"
    if re.fullmatch(r"picamera(:\d+)?", s):
        return "picamera"
    if re.fullmatch(r"\d+|/dev/video\d+", s):
        return "camera"
    return "file"


# -- captures: one object per open connection ----------------------------------------------------
class _Capture:
    """One opened source: ``read()`` gives the next BGR frame or None (end, error or timeout)."""

    fps: float | None = None
    frame_count: int | None = None
    size: tuple[int, int] | None = None

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def position_s(self) -> float | None:
        """The last frame's time in the source (files), else None."""
        return None

    def seek(self, index: int) -> bool:
        """Go to frame ``index`` (files); False when the source cannot seek."""
        return False

    def release(self) -> None:
        raise NotImplementedError


_capture_options_lock = threading.Lock()


def _quiet_opencv() -> None:
    """OpenCV's warnings name the source (with its password); keep only errors unless the user chose."""
    if "OPENCV_LOG_LEVEL" not in os.environ:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


class _CvCapture(_Capture):
    """cv2.VideoCapture: files and URLs through FFmpeg (with timeouts), cameras through V4L2 & co."""

    def __init__(self, spec: str, kind: str, config: StreamConfig, name: str) -> None:
        import cv2

        _quiet_opencv()
        started = time.monotonic()
        if kind == "camera":
            target: Any = int(spec) if spec.isdigit() else spec
            cap = cv2.VideoCapture(target)
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(config.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(config.read_timeout_s * 1000),
            ]
            from runtime.paths import readable_by_opencv

            # A file name that is not UTF-8 would crash OpenCV: it opens a link with an ASCII name.
            with readable_by_opencv(spec) if kind == "file" else nullcontext(spec) as target:
                cap = self._open_ffmpeg(cv2, target, params, config if kind == "url" else None)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                _open_failure(spec, kind, name, time.monotonic() - started, config.open_timeout_s)
            )
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if _SANE_FPS[0] <= fps <= _SANE_FPS[1] else None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if kind == "file" and 0 < count < 1e9 else None
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = (w, h) if w > 0 and h > 0 else None
        self._pos_prop = cv2.CAP_PROP_POS_MSEC

    @staticmethod
    def _open_ffmpeg(cv2: Any, spec: str, params: list[int], config: StreamConfig | None) -> Any:
        # The RTSP transport is an FFmpeg option OpenCV takes only from the environment, read at open:
        # set it for this open alone, under a lock, unless the user set the variable themselves.
        key = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
        transport = (
            config.rtsp_transport
            if config is not None and spec.lower().startswith(("rtsp://", "rtsps://"))
            else "auto"
        )
        if transport == "auto" or key in os.environ:
            return cv2.VideoCapture(spec, cv2.CAP_FFMPEG, params)
        with _capture_options_lock:
            os.environ[key] = f"rtsp_transport;{transport}"
            try:
                return cv2.VideoCapture(spec, cv2.CAP_FFMPEG, params)
            finally:
                del os.environ[key]

    def seek(self, index: int) -> bool:
        import cv2

        return bool(self._cap.set(cv2.CAP_PROP_POS_FRAMES, index))

    def read(self) -> np.ndarray | None:
        ok, image = self._cap.read()
        if not ok or image is None or image.size == 0:
            return None
        if self.size is None:
            self.size = (image.shape[1], image.shape[0])
        return image

    def position_s(self) -> float | None:
        ms = self._cap.get(self._pos_prop)
        return ms / 1000.0 if ms >= 0 else None

    def release(self) -> None:
        self._cap.release()


class _PiCamera(_Capture):
    """The Raspberry Pi camera through picamera2 (libcamera)."""

    def __init__(self, spec: str) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError(
                f"{spec}: the Raspberry Pi camera needs picamera2, which is not installed "
                "(Raspberry Pi OS: sudo apt install python3-picamera2, and create the virtualenv "
                "with --system-site-packages)"
            ) from None
        number = int(spec.partition(":")[2] or 0)
        try:
            cam = Picamera2(number)
            # picamera2's "RGB888" is B, G, R in memory (DRM naming): OpenCV's BGR as it is.
            cam.configure(cam.create_video_configuration(main={"format": "RGB888"}))
            cam.start()
        except Exception as e:  # libcamera raises plain RuntimeErrors / IndexErrors for absent cameras
            raise SourceError(f"{spec}: cannot start the Raspberry Pi camera {number}: {e}") from None
        self._cam = cam
        self.size = tuple(cam.camera_configuration()["main"]["size"])
        try:
            limits = cam.camera_configuration()["controls"]["FrameDurationLimits"]
            self.fps = 1e6 / float(limits[0])
        except (KeyError, TypeError, IndexError, ZeroDivisionError):
            self.fps = None

    def read(self) -> np.ndarray | None:
        try:
            image = self._cam.capture_array("main")
        except Exception:
            return None
        return np.ascontiguousarray(image[:, :, :3]) if image.ndim == 3 and image.shape[2] == 4 else image

    def release(self) -> None:
        try:
            self._cam.stop()
        finally:
            self._cam.close()


def _open_failure(spec: str, kind: str, name: str, took_s: float, timeout_s: float) -> str:
    """Why a source did not open, as far as can be told without the (silenced) FFmpeg log."""
    if kind == "file":
        p = Path(spec)
        if not p.exists():
            return f"{name}: no such video file"
        if not p.is_file():
            return f"{name}: not a video file"
        if p.stat().st_size == 0:
            return f"{name}: the video file is empty"
        return f"{name}: cannot open the video file (corrupt or an unsupported format)"
    if kind == "camera":
        return f"{name}: cannot open the camera (absent, busy or no permission)"
    parts = urlsplit(spec)
    host, port = (
        parts.hostname,
        parts.port
        or {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935}.get(parts.scheme.lower()),
    )
    if host and port:
        try:
            socket.create_connection((host, port), timeout=2.0).close()
        except OSError as e:
            return f"{name}: cannot connect to {host}:{port} ({e.strerror or e})"
        if took_s >= 0.9 * timeout_s:
            return (
                f"{name}: {host}:{port} accepts connections but the stream did not open "
                f"within {timeout_s:g} s"
            )
        return (
            f"{name}: {host}:{port} answers but refused the stream "
            "(wrong path or credentials?) or sends a format that cannot be decoded"
        )
    return f"{name}: cannot open the stream"


def _open_capture(spec: str, kind: str, config: StreamConfig, name: str) -> _Capture:
    if kind == "picamera":
        return _PiCamera(spec)
    try:
        return _CvCapture(spec, kind, config, name)
    except SourceError:
        raise
    except Exception as e:  # cv2.error and friends: their text may hold the URL
        raise SourceError(f"{name}: cannot open: {redact_url(str(e))}") from None


# -- statistics and the frame buffer -------------------------------------------------------------
@dataclass
class Outage:
    start_frame: int
    """The first frame index that went missing."""
    duration_s: float
    """From the last frame before the loss to the first one after it (or to giving up)."""
    frames_missed: int
    attempts: int
    """Reopen attempts made (the last one succeeded when ``restored``)."""
    restored: bool


@dataclass
class StreamStats:
    frames_read: int = 0
    """Frames handed to the consumer."""
    frames_dropped: int = 0
    """Frames read from the source but overwritten by a newer one before the consumer took them."""
    frames_missed: int = 0
    """Frames the source sent while it was unreachable (estimated from its frame rate)."""
    reconnects: int = 0
    frames_unreadable: int = 0
    """A file's frames that could not be decoded (each a frame_unreadable event), skipped."""
    outages: list[Outage] = field(default_factory=list)
    """In order; the last one not ``restored`` when the source gave up."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _FrameBuffer:
    """Bounded hand-over between the reader thread and the consumer.

    ``overwrite``: one slot, a new frame replaces the waiting one (counted as dropped); otherwise up
    to ``capacity`` frames and the reader waits for room. Never unbounded.
    """

    def __init__(self, capacity: int, overwrite: bool, on_drop: Callable[[int], None]) -> None:
        self._items: deque[Frame] = deque()
        self._capacity, self._overwrite, self._on_drop = capacity, overwrite, on_drop
        self._cond = threading.Condition()
        self._done = False
        self._error: BaseException | None = None

    def put(self, frame: Frame) -> bool:
        """False when the buffer was closed (stop reading)."""
        with self._cond:
            while not self._overwrite and len(self._items) >= self._capacity and not self._done:
                self._cond.wait(0.5)
            if self._done:
                return False
            if len(self._items) >= self._capacity:
                self._items.popleft()
                self._on_drop(1)
            self._items.append(frame)
            self._cond.notify_all()
            return True

    def finish(self, error: BaseException | None = None) -> None:
        """No more frames: the consumer gets the ones waiting, then ``error`` (or the end)."""
        with self._cond:
            self._done, self._error = True, self._error or error
            self._cond.notify_all()

    def get(self) -> Frame | None:
        """The next frame; None at the end; raises the reader's error after the last frame."""
        with self._cond:
            while not self._items and not self._done:
                self._cond.wait(0.5)
            if self._items:
                frame = self._items.popleft()
                self._cond.notify_all()
                return frame
            if self._error is not None:
                raise self._error
            return None

    def close(self) -> int:
        """Stop both sides; the frames left are returned as a count (the caller counts them dropped)."""
        with self._cond:
            left = len(self._items)
            self._items.clear()
            self._done = True
            self._cond.notify_all()
            return left


# -- the source ----------------------------------------------------------------------------------
class StreamSource:
    """An open video file, camera or stream: iterate it for :class:`Frame` objects; close it after.

    Attributes: ``name`` (the spec, credentials redacted), ``live`` (camera/stream, not a file),
    ``fps`` (from the source, else measured on live sources; None while unknown), ``size``
    ((w, h) once known), ``frame_count`` (a file's header count, else None), ``stats``
    (:class:`StreamStats`), ``config``.
    """

    def __init__(self, spec: str, config: StreamConfig | None = None) -> None:
        self.config = config or StreamConfig()
        self._spec = str(spec).strip()
        self._kind = _kind(self._spec)
        self.name = redact_url(self._spec)
        self.live = self._kind != "file"
        self.stats = StreamStats()
        self._events: list[dict[str, Any]] = []
        self._events_lock = threading.Lock()
        self._closed = False
        self._ended = False
        self._next_index = 0
        self._measured_fps: float | None = None
        self._last_grab: float | None = None

        self._cap: _Capture | None = _open_capture(self._spec, self._kind, self.config, self.name)
        self._source_fps = self._cap.fps
        self.size = self._cap.size
        self.frame_count = self._cap.frame_count
        # The first frame is read now: a source that opens but gives no picture fails here, clearly.
        first = self._cap.read()
        if first is None:
            self._cap.release()
            self._cap = None
            what = "video file" if self._kind == "file" else "source"
            raise SourceError(f"{self.name}: the {what} opened but no frame could be read from it")
        self.size = (first.shape[1], first.shape[0])
        self._first: Frame | None = self._make_frame(first)

        drop = self.config.drop
        realtime = self.config.realtime and not self.live
        self._paced = realtime and self._source_fps is not None
        self._threaded = self.live or realtime or drop == "always"
        overwrite = drop == "always" or (drop == "auto" and (self.live or realtime))
        self._buffer = _FrameBuffer(
            1 if overwrite else _QUEUE_WHEN_NOT_DROPPING, overwrite, self._count_dropped
        )
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        if (
            self.live
        ):  # a camera is read from the start (frames waiting in it get stale, and keep-alives flow);
            self._start_reader()  # a realtime file's clock starts at the first next()

    # -- public API ------------------------------------------------------------------------------
    @property
    def fps(self) -> float | None:
        return self._source_fps or self._measured_fps

    def __iter__(self) -> StreamSource:
        return self

    def __next__(self) -> Frame:
        if self._closed or self._ended:
            raise StopIteration
        if not self._threaded:
            frame = self._first or self._read_next()
            self._first = None
        else:
            if self._thread is None:
                self._start_reader()
            frame = self._buffer.get()  # raises StreamLostError after the last frame when the stream died
        if frame is None:
            self._ended = True
            self._release_if_idle()
            raise StopIteration
        self.stats.frames_read += 1
        return frame

    def drain_events(self) -> list[dict[str, Any]]:
        """Events since the last call, JSON-ready: stream_lost / stream_restored / stream_failed /
        stream_truncated (a file that ended before its header's frame count)."""
        with self._events_lock:
            events, self._events = self._events, []
        return events

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        left = self._buffer.close()
        self._count_dropped(left)
        thread = self._thread
        if thread is not None and thread.is_alive():
            # The reader releases the capture itself (releasing it under a blocked read would crash);
            # a read stalls at most read_timeout_s.
            thread.join(timeout=self.config.read_timeout_s + 1.0)
        else:
            self._release_if_idle()

    def __enter__(self) -> StreamSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StreamSource({self.name!r}, live={self.live}, fps={self.fps}, size={self.size})"

    # -- internals -------------------------------------------------------------------------------
    def _start_reader(self) -> None:
        self._thread = threading.Thread(target=self._reader, name=f"lpr-stream {self.name}", daemon=True)
        self._thread.start()

    def _count_dropped(self, n: int) -> None:
        self.stats.frames_dropped += n

    def _emit(self, event: dict[str, Any], level: int = logging.WARNING) -> None:
        event = {k: redact_url(v) if isinstance(v, str) else v for k, v in event.items()}
        with self._events_lock:
            self._events.append(event)
        log.log(level, "%s", " ".join(f"{k}={v}" for k, v in event.items()))

    def _make_frame(self, image: np.ndarray) -> Frame:
        now = time.monotonic()
        if self.live and self._last_grab is not None and self._source_fps is None:
            dt = now - self._last_grab
            if dt > 0:  # a slowly adapting rate, for the frames-missed estimate when the source names none
                rate = 1.0 / dt
                self._measured_fps = (
                    rate if self._measured_fps is None else 0.9 * self._measured_fps + 0.1 * rate
                )
        self._last_grab = now
        stamp = time.time() if self.live else (self._cap.position_s() if self._cap is not None else None)
        frame = Frame(source=self.name, index=self._next_index, image=image, timestamp=stamp)
        self._next_index += 1
        return frame

    def _read_next(self) -> Frame | None:
        """The next frame of a file (None at its end, with a stream_truncated event when it ended early)."""
        if self._cap is None:
            return None
        image = self._cap.read()
        if image is None:
            image = self._skip_unreadable()
        if image is not None:
            return self._make_frame(image)
        self._check_file_end()
        return None

    def _release_if_idle(self) -> None:
        if self._cap is not None and (self._thread is None or not self._thread.is_alive()):
            self._cap.release()
            self._cap = None

    def _reader(self) -> None:
        """The grabber thread: reads continuously, hands frames over, reconnects live sources."""
        error: BaseException | None = None
        try:
            start = time.monotonic()
            paced = 0
            first, self._first = self._first, None
            if first is not None and not self._buffer.put(first):
                return
            while not self._stop.is_set():
                if self._paced:
                    paced += 1
                    delay = start + paced / float(self._source_fps or 1) - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                asked = time.monotonic()
                image = self._cap.read() if self._cap is not None else None
                waited = time.monotonic() - asked
                if image is None and not self.live:
                    image = self._skip_unreadable()
                if image is None and not self.live:
                    self._check_file_end()
                    break
                if image is not None and not self._buffer.put(self._make_frame(image)):
                    break
                # A read that hit the timeout is a stalled stream even when FFmpeg still hands out a
                # frame (its decoder drains the ones it held, one per timeout): reconnect now.
                stalled = self.live and waited >= 0.9 * self.config.read_timeout_s
                if image is None or stalled:
                    reason = (
                        f"no frame for {waited:.1f} s (read timeout)"
                        if stalled
                        else "the read failed (connection closed, device gone or stream ended)"
                    )
                    if not self._reconnect(reason, lost_at=asked):
                        break
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, whose next() raises it
            error = (
                e
                if isinstance(e, SourceError)
                else SourceError(f"{self.name}: reading failed: {redact_url(str(e))}")
            )
        finally:
            if self._cap is not None:
                self._cap.release()
                self._cap = None
            self._buffer.finish(error)

    def _skip_unreadable(self) -> np.ndarray | None:
        """A file's read failed before the end its header announces: seek past the frame and read
        on. When a later frame decodes, each skipped one is reported (frame_unreadable, by
        number) and the reading goes on from there; when none does within ``max_bad_frames`` the
        file simply ended early (truncated: _check_file_end reports it) and None is returned."""
        expected = self.frame_count
        if self._cap is None or expected is None:
            return None
        first_bad = self._next_index
        for index in range(first_bad + 1, min(expected, first_bad + 1 + self.config.max_bad_frames)):
            if not self._cap.seek(index):
                break
            image = self._cap.read()
            if image is None:
                continue
            for bad in range(first_bad, index):
                self.stats.frames_unreadable += 1
                self._emit(
                    {
                        "event": "frame_unreadable",
                        "source": self.name,
                        "frame": bad,
                        "reason": "the frame cannot be decoded (corrupt data); skipped",
                    }
                )
            self._next_index = index
            return image
        return None

    def _check_file_end(self) -> None:
        """A stream_truncated event when a file ended before the frame count its header announces."""
        expected = self.frame_count
        tolerance = (
            0 if Path(self._spec).suffix.lower() in _EXACT_COUNT_SUFFIXES else max(1, (expected or 0) // 100)
        )
        if expected is not None and self._next_index < expected - tolerance:
            self._emit(
                {
                    "event": "stream_truncated",
                    "source": self.name,
                    "frame": self._next_index - 1,
                    "frames": self._next_index,
                    "expected_frames": expected,
                    "reason": f"the file ended after {self._next_index} of the {expected} frames "
                    "its header announces "
                    "(truncated or corrupt)",
                }
            )

    def _missed(self, outage_s: float) -> int:
        fps = self.fps
        return max(0, round(outage_s * fps) - 1) if fps else 0

    def _reconnect(self, reason: str, lost_at: float) -> bool:
        """After a failed or stalled read (begun at ``lost_at``): release, reopen with back-off.
        True when frames flow again."""
        lost_frame = self._next_index - 1
        self._emit({"event": "stream_lost", "source": self.name, "frame": lost_frame, "reason": reason})
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        delay, attempts = self.config.backoff_initial_s, 0
        while attempts < self.config.reconnect_attempts:
            if self._stop.wait(delay):
                return False
            attempts += 1
            delay = min(delay * 2, self.config.backoff_max_s)
            try:
                cap = _open_capture(self._spec, self._kind, self.config, self.name)
            except SourceError as e:
                reason = str(e)
                log.info(
                    "%s: reconnect attempt %d/%d failed: %s",
                    self.name,
                    attempts,
                    self.config.reconnect_attempts,
                    reason,
                )
                continue
            image = cap.read()
            if image is None:
                cap.release()
                reason = f"{self.name}: reopened but no frame came"
                continue
            self._cap = cap
            outage = time.monotonic() - lost_at
            missed = self._missed(outage)
            self._next_index += missed
            self.stats.frames_missed += missed
            self.stats.reconnects += 1
            self.stats.outages.append(Outage(lost_frame + 1, round(outage, 3), missed, attempts, True))
            self._last_grab = None  # the outage is not a frame interval
            frame = self._make_frame(image)
            self._emit(
                {
                    "event": "stream_restored",
                    "source": self.name,
                    "frame": frame.index,
                    "outage_s": round(outage, 3),
                    "frames_missed": missed,
                    "attempts": attempts,
                },
                logging.INFO,
            )
            return self._buffer.put(frame)
        outage = time.monotonic() - lost_at
        missed = self._missed(outage)
        self.stats.frames_missed += missed
        self.stats.outages.append(Outage(lost_frame + 1, round(outage, 3), missed, attempts, False))
        self._emit(
            {
                "event": "stream_failed",
                "source": self.name,
                "frame": lost_frame,
                "outage_s": round(outage, 3),
                "frames_missed": missed,
                "attempts": attempts,
                "reason": reason,
            },
            logging.ERROR,
        )
        self._buffer.finish(
            StreamLostError(
                f"{self.name}: the stream was lost after frame {lost_frame} and did not come back: "
                f"{attempts} reconnect attempts over {outage:.1f} s failed (last: {reason})"
            )
        )
        return False


def open_stream(spec: str, config: StreamConfig | None = None) -> StreamSource:
    """Open a video file, camera, URL or the Pi camera; SourceError naming it (redacted) when it cannot."""
    return StreamSource(spec, config)
