"""File hashing every toolchain stage shares."""

from __future__ import annotations

import hashlib
import os


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The file's SHA-256 (hex), read in chunks: model checksums (DeGirum's ``Checksum``, bundle
    records) and training-set hashes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
