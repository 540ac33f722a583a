"""How big an encoded image says it is, read from its header before anything is decoded.

A small file can decode to gigabytes (a 30000 x 30000 PNG of one colour is a few hundred
kilobytes); the pipeline refuses an image whose header announces more pixels than
``PipelineConfig.max_image_pixels`` with an error naming the file, and reads the next one.
PNG, JPEG, BMP, GIF and WebP headers are read here; other formats fall back to OpenCV's own
limit (``OPENCV_IO_MAX_IMAGE_PIXELS``, 2^30 pixels by default).
"""

from __future__ import annotations

import struct

import numpy as np

# JPEG start-of-frame markers (C0-CF without DHT C4, JPG C8 and DAC CC) carry the image size.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(b: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(b):
        if b[i] != 0xFF:
            return None
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        (length,) = struct.unpack(">H", b[i + 2 : i + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", b[i + 5 : i + 9])
            return width, height
        if length < 2:
            return None
        i += 2 + length
    return None


def header_size(data: bytes | np.ndarray, scan_bytes: int = 1 << 16) -> tuple[int, int] | None:
    """(width, height) an encoded image's header announces, or None when the format is not one of
    PNG, JPEG, BMP, GIF, WebP or the header is cut short (the decoder then decides)."""
    b = data[:scan_bytes] if isinstance(data, bytes) else np.asarray(data, np.uint8)[:scan_bytes].tobytes()
    if b.startswith(b"\x89PNG\r\n\x1a\n") and len(b) >= 24:
        return struct.unpack(">II", b[16:24])
    if b.startswith(b"\xff\xd8"):
        return _jpeg_size(b)
    if b.startswith(b"BM") and len(b) >= 26:
        width, height = struct.unpack("<ii", b[18:26])
        return abs(width), abs(height)
    if b[:6] in (b"GIF87a", b"GIF89a") and len(b) >= 10:
        return struct.unpack("<HH", b[6:10])
    if b.startswith(b"RIFF") and b[8:12] == b"WEBP" and len(b) >= 30:
        chunk = b[12:16]
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", b[26:30])
            return width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(b[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return int.from_bytes(b[24:27], "little") + 1, int.from_bytes(b[27:30], "little") + 1
    return None


def too_large(data: bytes | np.ndarray, max_pixels: int | None) -> str | None:
    """Why an encoded image must not be decoded (its header announces more than ``max_pixels``),
    or None."""
    if not max_pixels:
        return None
    size = header_size(data)
    if size is None:
        return None
    width, height = size
    if width * height > max_pixels:
        return (
            f"the image is {width}x{height} = {width * height / 1e6:.0f} megapixels, over the limit of "
            f"{max_pixels / 1e6:g} (max_image_pixels; about {width * height * 3 / 2**30:.1f} GiB decoded)"
        )
    return None
