"""Fixtures for video and stream tests: a real RTSP server on loopback, and numbered frames.

``rtsp_server`` starts Debian's GStreamer RTSP server (tests/helpers/rtsp_server.py, run by the system
Python, which has the GObject bindings) serving a video the test made, looped, paced at its frame
rate, behind user:password authentication. The server can be killed and started again on the same
port to simulate a camera that drops off the network. ``make system-deps`` (run by ``make setup``
when apt-get is there and we are root) installs the Debian packages; tests that need the server
skip, naming what is missing, only when it cannot be had.

``draw_frame_number`` / ``read_frame_number`` put a frame's number into its pixels as a row of
black and white blocks (survives JPEG and H.264), so a test can check order, gaps and drops.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

SYSTEM_PYTHON = os.environ.get("LPR_SYSTEM_PYTHON", "/usr/bin/python3")
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
DEBIAN_PACKAGES = "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good python3-gi"

NUMBER_BITS = 12
BLOCK = 16  # px per bit: big enough that compression cannot flip a block


def draw_frame_number(image: np.ndarray, number: int) -> np.ndarray:
    """Write ``number`` (< 4096) into the top-left corner as NUMBER_BITS blocks, white = 1; in place."""
    if image.shape[1] < NUMBER_BITS * BLOCK or image.shape[0] < BLOCK:
        raise ValueError(f"frame {image.shape} too small for the frame-number blocks")
    for bit in range(NUMBER_BITS):
        image[:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 255 if (number >> bit) & 1 else 0
    return image


def read_frame_number(image: np.ndarray) -> int:
    """The number :func:`draw_frame_number` wrote (block centres, thresholded at mid-grey)."""
    c = BLOCK // 2
    bits = [
        image[c - 3 : c + 3, bit * BLOCK + c - 3 : bit * BLOCK + c + 3].mean() > 127
        for bit in range(NUMBER_BITS)
    ]
    return sum(1 << i for i, on in enumerate(bits) if on)


def numbered_frames(n: int, width: int = 320, height: int = 240) -> Iterator[np.ndarray]:
    """``n`` distinct BGR frames (a moving gradient and the number as text), each numbered in pixels."""
    import cv2

    ys, xs = np.mgrid[0:height, 0:width]
    for i in range(n):
        img = np.empty((height, width, 3), np.uint8)
        img[..., 0] = (xs + 3 * i) % 256
        img[..., 1] = (ys + 2 * i) % 256
        img[..., 2] = 96
        cv2.putText(
            img, str(i), (width // 3, height * 2 // 3), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 4
        )
        yield draw_frame_number(img, i)


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """A real video file from BGR frames: MJPG in .avi, MPEG-4 part 2 in .mp4 (what OpenCV can write)."""
    import cv2

    frames = iter(frames)
    first = next(frames)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (first.shape[1], first.shape[0]))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write this video")
    writer.write(first)
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@lru_cache(maxsize=1)
def rtsp_server_unavailable() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None when it can."""
    if not Path(SYSTEM_PYTHON).is_file():
        return f"{SYSTEM_PYTHON} not found (the system Python runs the GStreamer RTSP server)"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "missing = [e for e in ('appsrc', 'jpegdec', 'jpegparse', 'videoconvert', 'rtpjpegpay')"
        " if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))"
    )
    try:
        done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run {SYSTEM_PYTHON}: {e}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        hint = f"run `make system-deps` (apt: {DEBIAN_PACKAGES})"
        return f"GStreamer RTSP server bindings missing ({last}); {hint}"
    if done.stdout.strip():
        return f"GStreamer elements missing: {done.stdout.strip()}; run `make system-deps`"
    return None


class RtspServer:
    """A real RTSP server process serving ``frames_file`` in a loop at ``url``; start/kill at will."""

    def __init__(
        self,
        frames_file: Path,
        width: int,
        height: int,
        fps: int,
        user: str | None,
        password: str | None,
        log_dir: Path,
        mount: str = "/stream",
    ) -> None:
        self.frames_file, self.width, self.height, self.fps = frames_file, width, height, fps
        self.user, self.password, self.mount = user, password, mount
        self.port = free_port()
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.closed = False  # after teardown: a restart timer left by a failed test must not start it again
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The stream's URL, with user:password when the server has them."""
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{self.mount}"

    def start(self, timeout: float = 20.0) -> RtspServer:
        """Start (again) on the same port; returns once the server listens."""
        with self._lock:
            if self.closed:
                raise RuntimeError("the RTSP server was closed (test teardown)")
            if self.process is not None and self.process.poll() is None:
                raise RuntimeError("the RTSP server is already running")
            self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline().decode(errors="replace")
                if line.startswith("READY"):
                    return self
            if self.process.poll() is not None:
                break
        self.kill()
        raise RuntimeError(f"the RTSP server did not start; see {self.log_dir}/rtsp_server_{self.starts}.log")

    def _spawn(self) -> None:
        cmd = [
            SYSTEM_PYTHON,
            str(SERVER_SCRIPT),
            str(self.frames_file),
            "--port",
            str(self.port),
            "--width",
            str(self.width),
            "--height",
            str(self.height),
            "--fps",
            str(self.fps),
            "--mount",
            self.mount,
        ]
        if self.user:
            cmd += ["--user", self.user, "--password", self.password or ""]
        self.starts += 1
        log = open(self.log_dir / f"rtsp_server_{self.starts}.log", "wb")
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        log.close()

    def close(self) -> None:
        """Kill it for good (fixture teardown)."""
        with self._lock:
            self.closed = True
            self.kill()

    def kill(self) -> None:
        """Kill at once (SIGKILL), like a camera losing power: clients see the connection drop."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # works on a frozen (SIGSTOPped) one too
            self.process.wait(timeout=10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def freeze(self) -> None:
        """Stop the process (SIGSTOP): connections stay open but nothing comes, like a hung camera."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def __repr__(self) -> str:  # never the password
        running = self.process is not None and self.process.poll() is None
        return f"RtspServer(port={self.port}, user={self.user!r}, running={running})"


def write_frames_file(path: Path, frames: Iterable[np.ndarray], quality: int = 90) -> tuple[int, int, int]:
    """The server's input: length-prefixed JPEGs; returns (width, height, frames)."""
    import cv2

    n, size = 0, None
    with open(path, "wb") as f:
        for frame in frames:
            if size is None:
                size = (frame.shape[1], frame.shape[0])
            elif (frame.shape[1], frame.shape[0]) != size:
                raise ValueError(f"frame {n} is {frame.shape[1]}x{frame.shape[0]}, not {size[0]}x{size[1]}")
            ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise ValueError(f"frame {n} cannot be encoded")
            f.write(struct.pack(">I", data.size))
            f.write(data.tobytes())
            n += 1
    if size is None:
        raise ValueError("no frames to serve")
    return size[0], size[1], n


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


@pytest.fixture
def rtsp_server(tmp_path: Path):
    """Factory: ``rtsp_server(video, fps=25, user="lpr", password="...")`` -> a started :class:`RtspServer`.

    ``video`` is a video file path or an iterable of BGR frames (same size; width and height
    multiples of 8 keep the encoders happy). Skips the test when the server cannot run here.
    Every server is killed at teardown.
    """
    reason = rtsp_server_unavailable()
    if reason is not None:
        pytest.skip(reason)
    servers: list[RtspServer] = []

    def start(
        video: Path | Iterable[np.ndarray],
        fps: int = 25,
        user: str | None = "lpr",
        password: str | None = "Pw-not-for-logs-7731",
    ) -> RtspServer:
        frames = _video_frames(Path(video)) if isinstance(video, (str, Path)) else video
        frames_file = tmp_path / f"rtsp_frames_{len(servers)}.bin"
        width, height, _ = write_frames_file(frames_file, frames)
        server = RtspServer(frames_file, width, height, fps, user, password, tmp_path)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.close()


if __name__ == "__main__":  # `python tests/helpers/stream_fixtures.py`: can the RTSP server run here?
    print(rtsp_server_unavailable() or "the GStreamer RTSP server is available")
    sys.exit(0)
