"""Reading images with errors that name the file (OpenCV returns None and says nothing)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from data.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def read_image(path: str | os.PathLike) -> np.ndarray:
    """BGR uint8 image; FileNotFoundError / ValueError naming the file when it cannot be read."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such image file")
    # imdecode from bytes: imread cannot tell 'missing' from 'corrupt' and mishandles some paths.
    data = np.fromfile(str(p), dtype=np.uint8)
    if data.size == 0:
        raise DataError(f"{p}: the image file is empty")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{p}: not a decodable image (corrupt or unsupported format)")
    return image


def read_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image, decoding it fully so a corrupt file is caught."""
    image = read_image(path)
    return image.shape[1], image.shape[0]


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int = 95) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if p.suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(p.suffix, image, params)
    if not ok:
        raise DataError(f"{p}: OpenCV could not encode the image")
    buf.tofile(str(p))
    return p


def list_images(folder: str | os.PathLike) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
