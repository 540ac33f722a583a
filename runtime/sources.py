"""Where frames come from: an image, a folder, a glob, a list, arrays in memory, or a video/stream.

A source yields :class:`Frame` objects that know where they came from and decode lazily, so the
pipeline's workers decode in parallel (OpenCV releases the GIL) and a bad file becomes an error
record for that frame instead of stopping the run. Video files, cameras and network streams
(runtime/streams.py) yield frames with ``image`` already set.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

# OpenCV reads FFmpeg's log level once, at its first use of FFmpeg, so it is set here, before any
# video is touched: quiet, because FFmpeg's messages may carry a stream's URL and so its password
# (runtime/streams.py). Someone debugging a camera sets OPENCV_FFMPEG_LOGLEVEL=24 (warnings) and
# accepts that.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".h264"}


class ImageError(ValueError):
    """An image that cannot be read; the message names the file."""


class SourceError(ValueError):
    """A source that names nothing readable (no such file, empty folder, glob without matches)."""


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
    """BGR uint8 image from a file; ImageError naming the file when it cannot be read."""
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


SourceSpec = Union[str, os.PathLike, np.ndarray, Iterable]


def _is_glob(s: str) -> bool:
    return any(ch in s for ch in "*?[")


def list_image_paths(spec: str | os.PathLike) -> list[Path]:
    """The image files an image path, folder (recursive) or glob names, sorted.

    A single file is taken as is (a bad one becomes an error record); folders and globs keep only
    image suffixes. SourceError when nothing matches.
    """
    from runtime.streams import is_stream_spec, redact_url

    s = str(spec)
    p = Path(s)
    if is_stream_spec(s):
        raise SourceError(
            f"{redact_url(s)}: a video or stream, not images; read it with iter_frames (runtime.streams)"
        )
    if p.is_file():
        return [p]
    if p.is_dir():
        # Broken links are listed too: each becomes an error record saying why, not a silent gap.
        paths = sorted(
            q
            for q in p.rglob("*")
            if q.suffix.lower() in IMAGE_SUFFIXES and (q.is_file() or (q.is_symlink() and not q.exists()))
        )
        if not paths:
            raise SourceError(f"{p}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return paths
    if _is_glob(s):
        paths = sorted(
            Path(q)
            for q in glob.glob(s, recursive=True)
            if Path(q).suffix.lower() in IMAGE_SUFFIXES and Path(q).is_file()
        )
        if not paths:
            raise SourceError(f"{s}: the pattern matches no image files")
        return paths
    raise SourceError(f"{s}: no such file or folder")


def iter_frames(source: SourceSpec) -> Iterator[Frame]:
    """Frames from a path / folder / glob, a single array, or an iterable of paths, arrays or Frames.

    Path sources are listed up front, so a source that names nothing fails before any work starts.
    A video file, camera or stream (see ``runtime.streams.is_stream_spec``) gives an open
    :class:`runtime.streams.StreamSource`: it fails here when it cannot be opened; close it when done.
    """
    if isinstance(source, (str, os.PathLike)):
        from runtime.streams import is_stream_spec, open_stream

        if is_stream_spec(str(source)):
            return open_stream(str(source))
        paths = list_image_paths(source)
        return (Frame(source=str(p), index=i, path=p) for i, p in enumerate(paths))
    if isinstance(source, np.ndarray):
        return iter([Frame(source="<array>", index=0, image=source)])
    if isinstance(source, Frame):
        return iter([source])
    return _iter_items(source)


def _iter_items(items: Iterable) -> Iterator[Frame]:
    for i, item in enumerate(items):
        if isinstance(item, Frame):
            yield item
        elif isinstance(item, np.ndarray):
            yield Frame(source=f"<array {i}>", index=i, image=item)
        elif isinstance(item, (str, os.PathLike)):
            yield Frame(source=str(item), index=i, path=Path(item))
        else:
            raise SourceError(
                f"item {i} of the source is a {type(item).__name__}, not a path, array or Frame"
            )
