"""Where frames come from: an image, a folder, a glob, a list, arrays in memory, or a video/stream
(frames and their decoding: runtime/frames.py).

A source yields :class:`Frame` objects that know where they came from and decode lazily, so the
pipeline's workers decode in parallel (OpenCV releases the GIL) and a bad file becomes an error
record for that frame instead of stopping the run. Video files, cameras and network streams
(runtime/streams.py) yield frames with ``image`` already set.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from runtime.errors import SourceError
from runtime.frames import (
    IMAGE_SUFFIXES,
    Frame,
    is_stream_spec,
    redact_url,
)

SourceSpec = str | os.PathLike | np.ndarray | Iterable


def _is_glob(s: str) -> bool:
    return any(ch in s for ch in "*?[")


def list_image_paths(spec: str | os.PathLike) -> list[Path]:
    """The image files an image path, folder (recursive) or glob names, sorted.

    A single file is taken as is (a bad one becomes an error record); folders and globs keep only
    image suffixes. SourceError when nothing matches.
    """
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
        from runtime.streams import open_stream  # OpenCV's video I/O only when a video is asked for

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
