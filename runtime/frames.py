"""Frames and the names of things frames come from: the leaf both image sources and streams build on.

:class:`Frame` knows where an image came from and decodes lazily (the pipeline's workers decode in
parallel; OpenCV releases the GIL), so a bad file becomes an error record for that frame instead
of stopping the run. Which specs are videos or streams (:func:`is_stream_spec`) and how a URL is
named without its credentials (:func:`redact_url`) live here too, because both
``runtime.sources`` and ``runtime.streams`` need them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.errors import ImageError

# OpenCV reads FFmpeg's log level once, at its first use of FFmpeg, so it is set here, before any
# video is touched: quiet, because FFmpeg's messages may carry a stream's URL and so its password
# (runtime/streams.py). Someone debugging a camera sets OPENCV_FFMPEG_LOGLEVEL=24 (warnings) and
# accepts that.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".h264"}


URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://")


def decode_image(data: bytes | np.ndarray, name: str, max_pixels: int | None = None) -> np.ndarray:
    """BGR uint8 image from encoded bytes; ImageError naming ``name`` when it cannot be decoded or
    its header announces more than ``max_pixels`` (runtime.image_limits)."""
    import cv2

    from runtime.image_limits import too_large

    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buf.size == 0:
        raise ImageError(f"{name}: the image file is empty")
    why = too_large(buf, max_pixels)
    if why is not None:
        raise ImageError(f"{name}: {why}")
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except (cv2.error, MemoryError) as e:  # OpenCV's own pixel limit, or no memory for the pixels
        raise ImageError(f"{name}: cannot be decoded ({str(e).strip().splitlines()[-1][:200]})") from None
    if image is None:
        raise ImageError(f"{name}: not a decodable image (corrupt or unsupported format)")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"{name}: the image has no pixels")
    return image


def _broken_link(p: Path) -> str:
    """Why the symbolic link ``p`` leads to no file: a loop, or a target that does not exist."""
    try:
        p.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return "a symbolic link loop"
    except OSError as e:
        if e.errno == 40:  # ELOOP
            return "a symbolic link loop"
        return f"a dangling symbolic link (to {os.readlink(p)}, which does not exist)"
    return "a symbolic link to something that is not a file"


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """BGR uint8 image from a file; ImageError naming the file when it cannot be read (a broken
    link says whether it loops or dangles)."""
    p = Path(path)
    if not p.is_file():
        if p.is_symlink():
            raise ImageError(f"{p}: {_broken_link(p)}")
        raise ImageError(f"{p}: no such image file")
    try:
        data = np.fromfile(str(p), dtype=np.uint8)  # imdecode: imread cannot tell missing from corrupt
    except OSError as e:
        raise ImageError(f"{p}: cannot be read ({e.strerror or e})") from None
    return decode_image(data, str(p), max_pixels)


@dataclass
class Frame:
    """One image to read plates from: where it came from and how to get its pixels."""

    source: str
    """The image's path (or a name for in-memory frames): what error records and --json name."""
    index: int
    """Position in the run (0-based); for video, the frame number."""
    image: np.ndarray | None = None
    path: Path | None = None
    data: bytes | None = None
    """Encoded image bytes (a benchmark keeps files in memory this way)."""
    timestamp: float | None = None
    """Seconds: a video file's presentation time, or a live source's capture time (time.time())."""

    def load(self, max_pixels: int | None = None) -> np.ndarray:
        """The BGR pixels; ImageError naming the source when they cannot be had (or, encoded, would
        be more than ``max_pixels``)."""
        if self.image is not None:
            image = self.image
            if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
                raise ImageError(f"{self.source}: expected an HxWx3 BGR image, got shape {image.shape}")
            if image.dtype != np.uint8:
                raise ImageError(f"{self.source}: expected uint8 pixels, got {image.dtype}")
            return image
        if self.data is not None:
            return decode_image(self.data, self.source, max_pixels)
        if self.path is not None:
            return read_image(self.path, max_pixels)
        raise ImageError(f"{self.source}: the frame has no pixels, bytes or path")


# -- specs and names -----------------------------------------------------------------------------
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s?#]*@")
_SECRET_PARAMS = re.compile(
    r"(?i)([?&;](?:user|username|usr|password|passwd|pass|pwd|token|key|auth|secret)=)[^&;#\s]*"
)


def redact_url(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced: ``rtsp://***@host/path``.

    User info (``user:password@``) and query parameters that carry secrets (``password=``,
    ``pwd=``, ``token=`` ...) are masked; the host and path stay, so the source is still recognisable.
    """
    return _SECRET_PARAMS.sub(r"\1***", _USERINFO.sub(r"\1***@", str(text)))


def is_stream_spec(spec: str) -> bool:
    """A video file (by suffix), a camera index ("0"), /dev/videoN, an RTSP/HTTP/RTMP URL or
    "picamera[:N]"."""
    s = str(spec).strip()
    if s.lower().startswith(URL_SCHEMES):
        return True
    if re.fullmatch(r"\d+|/dev/video\d+|picamera(:\d+)?", s):
        return True
    return Path(s).suffix.lower() in VIDEO_SUFFIXES
