"""File names OpenCV can be given, and files written so a failure is one clear error.

OpenCV's Python binding turns a ``str`` path into UTF-8; a name that is not UTF-8 on disk reaches
Python as a ``str`` with surrogate escapes (PEP 383), and handing that to ``cv2.imwrite`` or
``cv2.VideoCapture`` crashes the process (SIGSEGV, opencv-python 4.x) instead of raising. Every
path the runtime gives OpenCV goes through here: a name OpenCV can take is passed as it is; any
other is reached through a link with an ASCII name in a private temporary folder (reading) or
written under an ASCII name and renamed (writing), while Python's own file calls take the real
name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from runtime.errors import InputError


def opencv_safe(path: str | os.PathLike) -> bool:
    """True when OpenCV can be given ``path`` as a str (it encodes to UTF-8)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_name(path: str | os.PathLike) -> str:
    """``path`` printable anywhere: undecodable bytes shown as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@contextmanager
def readable_by_opencv(path: str | os.PathLike) -> Iterator[str]:
    """A str naming ``path`` that OpenCV can open for reading (a link when the name is not UTF-8)."""
    if opencv_safe(path):
        yield os.fspath(path)
        return
    with tempfile.TemporaryDirectory(prefix="lpr-open-") as tmp:
        link = Path(tmp) / ("source" + Path(display_name(path)).suffix.encode("ascii", "ignore").decode())
        os.symlink(os.fsencode(Path(path).resolve()), os.fsencode(link))
        yield str(link)


def staged_output(path: Path) -> Path:
    """Where OpenCV writes a file that ends up at ``path``: ``path`` itself when its name is
    UTF-8, else an ASCII name beside it (renamed by :func:`finish_output`)."""
    if opencv_safe(path):
        return path
    return (
        path.parent
        / f".lpr-staged-{os.getpid()}-{id(path):x}{path.suffix.encode('ascii', 'ignore').decode()}"
    )


def finish_output(staged: Path, path: Path) -> None:
    if staged != path and staged.exists():
        os.replace(os.fsencode(staged), os.fsencode(path))


def write_image(path: Path, image: np.ndarray, quality: int = 90) -> None:
    """Encode ``image`` by its suffix (JPEG otherwise) and write it with Python's file calls, so any
    name works and a full disk or a read-only folder is an OSError naming the file."""
    import cv2

    suffix = path.suffix.lower() if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") else ".jpg"
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if suffix in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, image, params)
    if not ok:
        raise OSError(f"{display_name(path)}: OpenCV could not encode the image")
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OSError(e.errno, f"{display_name(path)}: cannot be written ({e.strerror or e})") from None


def writable_folder(path: Path, flag: str = "--save") -> Path:
    """``path`` as a folder to write into, created if need be; InputError naming ``flag`` when it is a
    file or cannot be written (checked by writing a probe file: permissions alone lie for root and
    read-only mounts)."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {display_name(path)}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".lpr-probe-"):
            pass
    except OSError as e:
        raise InputError(f"{flag} {display_name(path)}: cannot write there ({e.strerror or e})") from None
    return path
