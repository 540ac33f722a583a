"""Bad input to ``python -m runtime``: each case gives a clear error for that input (or a clear
setup error, exit 2) and the run goes on; never a traceback, a crash or a silent skip. Real
files, the shipped zoo's models, the real CLI in a subprocess (a crash shows as a negative exit
status there)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.runtime_dev_zoo import make_scene
from helpers.stream_fixtures import numbered_frames, write_video

from runtime.geometry import letterbox
from runtime.image_limits import header_size

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_runtime(*args: str | bytes, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        capture_output=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=timeout,
    )


def text(proc: subprocess.CompletedProcess) -> tuple[str, str]:
    return proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def huge_png(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit greyscale PNG of width x height: small on disk, width*height*3 bytes decoded."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_thin_and_huge_images_are_errors_of_their_own_and_the_run_goes_on(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for w, h in ((1, 8000), (3, 4000), (8000, 1)):
        cv2.imwrite(str(folder / f"thin_{w}x{h}.png"), np.full((h, w, 3), 200, np.uint8))
    huge_png(folder / "huge_30000x30000.png", 30000, 30000)
    assert (folder / "huge_30000x30000.png").stat().st_size < 2_000_000
    cv2.imwrite(str(folder / "z_scene.jpg"), make_scene(3, 2)[0])
    proc = run_runtime(str(folder), "--json")
    out, err = text(proc)
    assert proc.returncode == 1, err  # one image could not be read; the others were
    results = {Path(r["source"]).name: r for r in map(json.loads, out.splitlines())}
    assert len(results) == 5
    for name in ("thin_1x8000.png", "thin_3x4000.png", "thin_8000x1.png", "z_scene.jpg"):
        assert "error" not in results[name], results[name]
    huge = results["huge_30000x30000.png"]["error"]
    assert "30000x30000" in huge and "max_image_pixels" in huge
    assert "Traceback" not in err and "5 images" in err and "1 unreadable" in err


def test_letterbox_keeps_a_pixel_of_thin_images():
    for h, w in ((1, 8000), (8000, 1), (2, 9999)):
        boxed, lb = letterbox(np.zeros((h, w, 3), np.uint8), 640, 640)
        assert boxed.shape == (640, 640, 3) and lb.scale > 0


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp"])
def test_header_size_reads_what_opencv_writes(tmp_path, suffix):
    for w, h in ((17, 5), (640, 480), (3, 4000)):
        ok, buf = cv2.imencode(suffix, np.zeros((h, w, 3), np.uint8))
        assert ok
        assert header_size(buf.tobytes()) == (w, h)
    assert header_size(b"not an image at all") is None


def test_non_utf8_file_names_are_read_saved_and_printed(tmp_path):
    folder = os.fsencode(tmp_path / "in")
    os.mkdir(folder)
    name = b"plate_\xff\xfe.jpg"
    ok, buf = cv2.imencode(".jpg", make_scene(5, 1)[0])
    with open(os.path.join(folder, name), "wb") as f:
        f.write(buf.tobytes())
    saved = tmp_path / "saved"
    proc = run_runtime(folder, "--save", str(saved))
    out, err = text(proc)
    assert proc.returncode == 0, (proc.returncode, err)
    assert "plate_\\xff\\xfe.jpg" in out
    assert os.listdir(os.fsencode(saved)) == [name]
    assert cv2.imdecode(np.fromfile(os.path.join(os.fsencode(saved), name), np.uint8), 1) is not None


def test_non_utf8_video_names_are_read_and_saved(tmp_path):
    video = write_video(tmp_path / "clip.avi", numbered_frames(12), fps=25)
    odd = os.path.join(os.fsencode(tmp_path), b"clip_\xff.avi")
    os.rename(video, odd)
    target = os.path.join(os.fsencode(tmp_path), b"out_\xfe.avi")
    proc = run_runtime(odd, "--save", target)
    out, err = text(proc)
    assert proc.returncode == 0, (proc.returncode, err)
    assert '"frames": 12' in err or "12 frames" in err
    os.link(target, tmp_path / "copy.avi")  # an ASCII name for the check's own VideoCapture
    cap = cv2.VideoCapture(str(tmp_path / "copy.avi"))
    count = 0
    while cap.grab():
        count += 1
    assert count == 12


def test_save_onto_a_file_or_an_unwritable_folder_is_one_clear_error(tmp_path):
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), make_scene(1, 1)[0])
    notes = tmp_path / "notes.txt"
    notes.write_text("a file, not a folder")
    read_only = Path("/proc/lpr-test-cannot-be-made")
    video = write_video(tmp_path / "clip.avi", numbered_frames(5), fps=25)
    for source, target, why in (
        (image, notes, "is a file, not a folder"),
        (image, read_only, "cannot write there"),
        (video, notes, "is a file, not a folder"),
        (video, read_only / "out.mp4", "cannot write there"),
    ):
        proc = run_runtime(str(source), "--save", str(target))
        out, err = text(proc)
        assert proc.returncode == 2, err
        assert err.count("\n") == 1 and why in err and str(target).split("/out.mp4")[0] in err
        assert out == ""
    assert notes.read_text() == "a file, not a folder"


def test_link_loops_and_dangling_links_in_a_folder_are_reported(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "good.jpg"), make_scene(2, 1)[0])
    (folder / "loop_a.jpg").symlink_to(folder / "loop_b.jpg")
    (folder / "loop_b.jpg").symlink_to(folder / "loop_a.jpg")
    (folder / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    proc = run_runtime(str(folder))
    out, err = text(proc)
    assert proc.returncode == 1, err
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert lines[str(folder / "dangling.jpg")].startswith("error: ") and "dangling symbolic link" in out
    assert "symbolic link loop" in lines[str(folder / "loop_a.jpg")]
    assert "symbolic link loop" in lines[str(folder / "loop_b.jpg")]
    assert not lines[str(folder / "good.jpg")].startswith("error")
    assert "4 images" in err and "3 unreadable" in err
