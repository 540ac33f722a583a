"""The shape of a source before it is read: for choosing the detector input that pads least.

Only what can be had cheaply: the first image of an image source (its header is decoded with
the image), a video file's frame size from its container. Cameras and network streams say None
(opening them twice costs seconds); name the detector with ``--det-model`` for those.
"""

from __future__ import annotations

import os
from pathlib import Path

from runtime.errors import SourceError
from runtime.frames import VIDEO_SUFFIXES
from runtime.paths import readable_by_opencv
from runtime.sources import list_image_paths


def source_aspect(spec: str | os.PathLike) -> float | None:
    """Width / height of the source's frames, or None when it cannot be told without reading it."""
    import cv2

    s = str(spec)
    if Path(s).suffix.lower() in VIDEO_SUFFIXES and Path(s).is_file():
        with readable_by_opencv(s) as name:  # OpenCV crashes on a str name that is not UTF-8
            capture = cv2.VideoCapture(name)
            try:
                width = capture.get(cv2.CAP_PROP_FRAME_WIDTH)
                height = capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
            finally:
                capture.release()
        return width / height if width > 0 and height > 0 else None
    try:
        paths = list_image_paths(s)
    except SourceError:  # a stream, a camera, nothing there: the caller reports it when it reads
        return None
    with readable_by_opencv(paths[0]) as name:
        image = cv2.imread(name, cv2.IMREAD_REDUCED_COLOR_8)  # 1/8 size: the aspect is all we need
    if image is None or image.shape[0] == 0:
        return None
    return image.shape[1] / image.shape[0]
