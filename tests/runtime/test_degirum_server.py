"""A fleet through a real DeGirum AI server: `degirum server start --zoo runtime/zoo --port P` on
loopback, `python -m runtime SOURCE --backend degirum --host 127.0.0.1:P` on real photos and on a
video made of real photos, the same plates as DeGirum on this machine (@local). The server is
started here and stopped by its process id; without DeGirum's ONNX/CPU agent the tests skip."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.degirum_agent import degirum_unavailable
from helpers.stream_fixtures import free_port, write_video

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ZOO = PROJECT_ROOT / "runtime" / "zoo"
PHOTOS = "openalpr_br_endtoend/images/br/[AF]*.jpg"  # three car photos


class DegirumServer:
    """DeGirum's own AI server process serving ``zoo`` on ``port``."""

    def __init__(self, zoo: Path, port: int, log: Path) -> None:
        self.zoo, self.port, self.log_path = zoo, port, log
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> DegirumServer:
        command = [
            str(Path(sys.executable).with_name("degirum")),
            "server",
            "start",
            "--zoo",
            str(self.zoo),
            "--port",
            str(self.port),
            "--quiet",
        ]
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({self.process.returncode}): {self.log_path.read_text()[-800:]}"
                )
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the server did not listen on {self.host} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self.log.close()
        self.process = None


@pytest.fixture(scope="module")
def ai_server(tmp_path_factory):
    why = degirum_unavailable()
    if why:
        pytest.skip(why)
    if not (Path(sys.executable).with_name("degirum")).is_file():
        pytest.skip(f"DeGirum's `degirum` command is not installed beside {sys.executable}")
    server = DegirumServer(ZOO, free_port(), tmp_path_factory.mktemp("dg_server") / "server.log")
    try:
        server.start()
    except RuntimeError as e:
        pytest.skip(f"DeGirum's AI server cannot start here: {e}")
    yield server
    server.stop()
    assert server.process is None


def _runtime(*args: str, timeout: float = 300) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "runtime", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _plates(records: list[dict]) -> list[tuple]:
    """What a run read: per frame, its plates (text, box, characters with scores), left to right."""
    out = []
    for r in records:
        if "plates" in r:
            plates = sorted(
                (
                    (p["text"], p["box"], [(c["char"], c.get("score", 1.0)) for c in p.get("chars", [])])
                    for p in r["plates"]
                ),
                key=lambda t: t[1][0],
            )
            out.append((Path(r["source"]).name, r.get("frame"), plates))
    return out


# The server's ONNX Runtime session may round a box coordinate the other way (1 px); the crop cut
# from it then differs by a pixel row, which can flip any glyph the OCR model is unsure of (a plate
# it reads with two unsure glyphs may flip both: FB29591 / FBZ9581, 2/Z at 0.73/0.77 and 9/8 at
# 0.56/0.43). A glyph either side reads surely must never differ.
BOX_TOLERANCE_PX = 2.0
UNSURE_SCORE = 0.85


def assert_same_plates(served: list[tuple], local: list[tuple]) -> None:
    """The same frames and plates, boxes within 2 px, the same texts - but for characters both
    sides read with a score under UNSURE_SCORE."""
    assert [(s, f, len(p)) for s, f, p in served] == [(s, f, len(p)) for s, f, p in local]
    for (source, frame, a), (_, _, b) in zip(served, local, strict=True):
        for (text_a, box_a, chars_a), (text_b, box_b, chars_b) in zip(a, b, strict=True):
            where = f"{source} frame {frame}: served {text_a!r}, local {text_b!r}"
            assert max(abs(x - y) for x, y in zip(box_a, box_b, strict=True)) <= BOX_TOLERANCE_PX, where
            assert len(text_a) == len(text_b), where
            flips = [(ca, cb) for ca, cb in zip(chars_a, chars_b, strict=True) if ca[0] != cb[0]]
            assert all(ca[1] < UNSURE_SCORE and cb[1] < UNSURE_SCORE for ca, cb in flips), (
                where,
                flips,
            )


@pytest.mark.shared_data
def test_runtime_through_the_ai_server_reads_photos_as_local(ai_server, shared_datasets):
    photos = str(shared_datasets / PHOTOS)
    served = _runtime(photos, "--backend", "degirum", "--host", ai_server.host)
    local = _runtime(photos, "--backend", "degirum")
    assert len(served) == 3 and all("error" not in r for r in served)
    assert sum(len(r["plates"]) for r in served) >= 3  # each photo shows a car's plate
    assert_same_plates(_plates(served), _plates(local))


@pytest.mark.shared_data
def test_runtime_through_the_ai_server_reads_a_video_as_local(ai_server, shared_datasets, tmp_path):
    import cv2

    photos = sorted(shared_datasets.glob(PHOTOS))
    frames = []
    for p in photos:
        image = cv2.resize(cv2.imread(str(p)), (960, 720))
        frames += [image] * 2  # a car stays a few frames
    video = write_video(tmp_path / "cars.avi", frames, fps=5)
    served = _runtime(str(video), "--backend", "degirum", "--host", ai_server.host)
    local = _runtime(str(video), "--backend", "degirum")
    read = _plates(served)
    assert len(read) == len(frames) and any(plates for _, _, plates in read)
    assert_same_plates(read, _plates(local))
