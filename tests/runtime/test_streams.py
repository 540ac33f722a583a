"""Video files and live streams as runtime sources (runtime/streams.py): real files written here,
a real RTSP server on loopback (tests/helpers/stream_fixtures.py), killed and restarted mid-stream."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from helpers.stream_fixtures import numbered_frames, read_frame_number, write_video

from runtime.config import StreamConfig
from runtime.errors import SourceError, StreamLostError
from runtime.frames import Frame, is_stream_spec, redact_url
from runtime.sources import iter_frames, list_image_paths
from runtime.streams import StreamSource, open_stream

W, H = 320, 240
PASSWORD = "Pw-not-for-logs-7731"


def _video(tmp_path: Path, n: int, fps: float = 25, suffix: str = ".mp4") -> Path:
    return write_video(tmp_path / f"clip_{n}_{fps:g}{suffix}", numbered_frames(n, W, H), fps)


# -- specs, names, config ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [
        "clip.mp4",
        "a/b/CLIP.AVI",
        "x.mkv",
        "0",
        "3",
        "/dev/video0",
        "rtsp://cam/1",
        "rtsps://u:p@cam:322/s",
        "http://cam/video.mjpg",
        "https://cam/live",
        "rtmp://server/app/key",
        "picamera",
        "picamera:1",
    ],
)
def test_stream_specs_are_recognised(spec):
    assert is_stream_spec(spec)


@pytest.mark.parametrize("spec", ["photo.jpg", "folder", "imgs/*.png", "picam", "-1", "/dev/sda", "video0"])
def test_image_specs_are_not_streams(spec):
    assert not is_stream_spec(spec)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/Streaming/101", "rtsp://***@10.0.0.5:554/Streaming/101"),
        ("rtsp://admin@cam/live", "rtsp://***@cam/live"),
        ("rtsp://admin:p@ss@cam/live", "rtsp://***@cam/live"),  # an unescaped @ in the password
        ("error: RTSPS://u:p%40w@cam:322/x failed", "error: RTSPS://***@cam:322/x failed"),
        (
            "http://cam/video.cgi?user=admin&pwd=hunter2&res=hd",
            "http://cam/video.cgi?user=***&pwd=***&res=hd",
        ),
        ("two: rtsp://a:b@h1/x and http://c:d@h2/y", "two: rtsp://***@h1/x and http://***@h2/y"),
        ("rtsp://cam:554/path@2", "rtsp://cam:554/path@2"),  # no user info: nothing to hide
        ("clip.mp4", "clip.mp4"),
    ],
)
def test_redact_url(text, expected):
    assert redact_url(text) == expected


def test_stream_config_is_validated_and_round_trips():
    cfg = StreamConfig(reconnect_attempts=3, drop="never", realtime=True)
    assert StreamConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown keys.*'retries'"):
        StreamConfig.from_dict({"retries": 3})
    with pytest.raises(ValueError) as err:
        StreamConfig(reconnect_attempts=-1, backoff_initial_s=0, drop="sometimes", rtsp_transport="quic")
    for name in ("reconnect_attempts", "backoff_initial_s", "drop", "rtsp_transport"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match="backoff_max_s"):
        StreamConfig(backoff_initial_s=2, backoff_max_s=1)


# -- files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_file_gives_every_frame_in_order(tmp_path, suffix):
    path = _video(tmp_path, 40, fps=20, suffix=suffix)
    with open_stream(str(path)) as src:
        assert isinstance(src, StreamSource) and not src.live
        assert (
            src.name == str(path)
            and src.fps == pytest.approx(20)
            and src.size == (W, H)
            and src.frame_count == 40
        )
        frames = list(src)
        assert src.stats.frames_read == 40 and src.stats.frames_dropped == 0 and src.drain_events() == []
    assert [f.index for f in frames] == list(range(40))
    assert [read_frame_number(f.image) for f in frames] == list(range(40))  # the pixels are those frames
    assert all(
        f.source == str(path) and f.image.dtype == np.uint8 and f.image.shape == (H, W, 3) for f in frames
    )
    assert [f.timestamp for f in frames] == pytest.approx([i / 20 for i in range(40)], abs=1e-3)


def test_iter_frames_opens_videos_and_image_listing_refuses_them(tmp_path):
    path = _video(tmp_path, 5)
    frames = iter_frames(str(path))
    assert isinstance(frames, StreamSource)
    with frames:
        assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    with pytest.raises(SourceError, match="a video or stream"):
        list_image_paths(path)


def _consume_slowly(src: StreamSource, pause_s: float) -> list[Frame]:
    frames = []
    for frame in src:
        frames.append(
            Frame(
                source=frame.source,
                index=frame.index,
                timestamp=frame.timestamp,
                image=frame.image[:16].copy(),
            )
        )  # keep the number strip, not the frame
        time.sleep(pause_s)
    return frames


def test_realtime_file_with_a_slow_consumer_drops_frames_counts_them_and_stays_bounded(tmp_path):
    n = 120
    path = _video(tmp_path, n, fps=60)  # 2 s of video
    frame_bytes = W * H * 3
    tracemalloc.start()
    try:
        with open_stream(str(path), StreamConfig(realtime=True)) as src:
            started = time.monotonic()
            frames = _consume_slowly(src, pause_s=0.05)  # 20 frames/s against 60
            took = time.monotonic() - started
            stats = src.stats
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    indexes = [f.index for f in frames]
    assert stats.frames_read == len(frames) and stats.frames_dropped > n // 2
    assert stats.frames_read + stats.frames_dropped == n  # every frame of the file, handed out or counted
    assert (
        indexes == sorted(set(indexes)) and indexes[-1] == n - 1
    )  # newest wins: in order, gaps, the last one
    assert [read_frame_number(f.image) for f in frames] == indexes
    assert took >= 0.8 * n / 60  # paced at the file's rate, not read flat out
    # Newest wins in one slot: a handful of frames alive at once, never the 120 a queue would hold.
    assert frame_bytes <= peak < 12 * frame_bytes, f"peak traced memory {peak / 1e6:.1f} MB"


def test_drop_modes_on_files(tmp_path):
    path = _video(tmp_path, 60, fps=30)
    with open_stream(str(path), StreamConfig(realtime=True, drop="never")) as src:
        frames = _consume_slowly(src, pause_s=0.01)
        assert [f.index for f in frames] == list(range(60)) and src.stats.frames_dropped == 0
    with open_stream(str(path), StreamConfig(drop="always")) as src:
        frames = _consume_slowly(src, pause_s=0.02)  # decoding runs ahead; only the newest is kept
        assert src.stats.frames_read + src.stats.frames_dropped == 60 and src.stats.frames_dropped > 0
        assert [read_frame_number(f.image) for f in frames] == [f.index for f in frames]


def test_closing_mid_file_stops_the_reader_and_counts_what_was_left(tmp_path):
    path = _video(tmp_path, 200, fps=100)
    src = open_stream(str(path), StreamConfig(realtime=True))
    first = [next(src) for _ in range(3)]
    src.close()
    assert [f.index for f in first] == sorted({f.index for f in first})
    assert src._thread is not None and not src._thread.is_alive()
    assert list(src) == [] and src.stats.frames_read == 3
    assert src.stats.frames_read + src.stats.frames_dropped < 200  # the rest was never read


def test_missing_empty_and_corrupt_files_are_errors_naming_them(tmp_path):
    missing = tmp_path / "nowhere.mp4"
    with pytest.raises(SourceError, match=f"{missing}: no such video file"):
        open_stream(str(missing))
    with pytest.raises(SourceError, match=f"{missing}: no such video file"):
        iter_frames(missing)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match=f"{empty}: the video file is empty"):
        open_stream(str(empty))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError, match=f"{corrupt}: .*(cannot open|no frame)"):
        open_stream(str(corrupt))


def test_truncated_file_ends_with_an_event_not_a_traceback(tmp_path):
    path = _video(tmp_path, 60, fps=25, suffix=".avi")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still announces 60 frames
    with open_stream(str(path)) as src:
        frames = list(src)
        events = src.drain_events()
    assert 0 < len(frames) < 60
    assert [read_frame_number(f.image) for f in frames] == list(range(len(frames)))
    assert len(events) == 1 and events[0]["event"] == "stream_truncated"
    assert events[0]["expected_frames"] == 60 and events[0]["frames"] == len(frames)
    assert events[0]["source"] == str(path) and "60 frames" in events[0]["reason"]
    json.dumps(events)


def test_absent_cameras_are_clear_errors():
    with pytest.raises(SourceError, match="/dev/video97: cannot open the camera"):
        open_stream("/dev/video97")
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(
            SourceError, match="picamera:1: the Raspberry Pi camera needs picamera2, which is not installed"
        ):
            open_stream("picamera:1")


# -- a real RTSP server --------------------------------------------------------------------------
FAST_RECONNECT = dict(backoff_initial_s=0.2, backoff_max_s=1.0, open_timeout_s=5.0, read_timeout_s=3.0)


def _assert_no_password(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text


def test_rtsp_stream_survives_a_server_restart_and_reports_the_outage(rtsp_server, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="runtime.streams")
    server = rtsp_server(numbered_frames(100, W, H), fps=25, password=PASSWORD)
    assert PASSWORD in server.url
    events: list[dict] = []
    frames: list[Frame] = []
    restarted: list[threading.Timer] = []
    with open_stream(server.url, StreamConfig(reconnect_attempts=10, **FAST_RECONNECT)) as src:
        assert src.live and src.name == server.url.replace(f"lpr:{PASSWORD}@", "***@")
        deadline = time.monotonic() + 60
        for frame in src:
            frames.append(
                Frame(
                    source=frame.source,
                    index=frame.index,
                    timestamp=frame.timestamp,
                    image=frame.image[:16].copy(),
                )
            )
            events += src.drain_events()
            if len(frames) == 30:  # a camera losing power mid-stream; back 2 s later on the same port
                server.kill()
                restarted.append(threading.Timer(2.0, server.start))
                restarted[0].start()
            after = [
                f
                for f in frames
                if any(e["event"] == "stream_restored" and f.index >= e["frame"] for e in events)
            ]
            if len(after) >= 25 or time.monotonic() > deadline:
                break
            time.sleep(0.02)  # a consumer a little slower than the camera
        stats = src.stats
    restarted[0].join()
    kinds = [e["event"] for e in events]
    assert kinds == ["stream_lost", "stream_restored"], events
    lost, restored = events
    assert lost["frame"] < restored["frame"] and lost["reason"]
    assert restored["outage_s"] >= 1.5 and restored["frames_missed"] > 0 and restored["attempts"] >= 1
    # The frames missed follow from the outage at the source's 25 fps, and the indexes skip them.
    assert restored["frames_missed"] == pytest.approx(restored["outage_s"] * 25, abs=2)
    assert restored["frame"] == lost["frame"] + restored["frames_missed"] + 1
    assert len(after) >= 25  # frames keep flowing after the restart
    indexes = [f.index for f in frames]
    assert indexes == sorted(set(indexes))
    assert all(0 <= read_frame_number(f.image) < 100 for f in frames)  # real pictures from the loop
    assert stats.reconnects == 1 and stats.frames_missed == restored["frames_missed"]
    assert (
        len(stats.outages) == 1
        and stats.outages[0].restored
        and stats.outages[0].duration_s == restored["outage_s"]
    )
    assert stats.frames_read == len(frames)
    out, err = capfd.readouterr()
    _assert_no_password(
        json.dumps(events),
        json.dumps(stats.to_dict()),
        repr(src),
        caplog.text,
        out,
        err,
        *(f.source for f in frames),
    )
    assert "stream_lost" in caplog.text and "***@" in caplog.text


def test_rtsp_stream_that_stays_down_fails_after_the_bounded_attempts(rtsp_server, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="runtime.streams")
    server = rtsp_server(numbered_frames(25, W, H), fps=25, password=PASSWORD)
    src = open_stream(server.url, StreamConfig(reconnect_attempts=3, **FAST_RECONNECT))
    got = 0
    with pytest.raises(StreamLostError) as err:
        for _ in src:
            got += 1
            if got == 10:
                server.kill()
                killed = time.monotonic()
    gave_up_after = time.monotonic() - killed
    events = src.drain_events()
    src.close()
    message = str(err.value)
    assert isinstance(err.value, SourceError)
    assert (
        "rtsp://***@127.0.0.1" in message
        and "3 reconnect attempts" in message
        and "did not come back" in message
    )
    assert [e["event"] for e in events] == ["stream_lost", "stream_failed"]
    failed = events[1]
    assert failed["attempts"] == 3 and failed["outage_s"] > 0 and "Connection refused" in failed["reason"]
    assert gave_up_after < 0.2 + 0.4 + 0.8 + 3 * 5.0  # the back-off and open timeouts bound it
    assert src.stats.outages and not src.stats.outages[0].restored
    out, errout = capfd.readouterr()
    _assert_no_password(message, json.dumps(events), caplog.text, out, errout)


def test_rtsp_wrong_password_is_a_clear_error_without_the_password(rtsp_server, capfd):
    server = rtsp_server(numbered_frames(10, W, H), fps=25, password=PASSWORD)
    wrong = server.url.replace(PASSWORD, "Wrong-" + PASSWORD)
    with pytest.raises(SourceError) as err:
        open_stream(wrong, StreamConfig(open_timeout_s=5.0))
    assert "rtsp://***@127.0.0.1" in str(err.value) and "credentials" in str(err.value)
    out, errout = capfd.readouterr()
    _assert_no_password(str(err.value), out, errout)
    if os.environ.get("OPENCV_FFMPEG_LOGLEVEL") == "-8":  # runtime.frames' default: FFmpeg stays silent
        assert "[rtsp @" not in errout and "401" not in errout


def test_rtsp_stream_that_stalls_times_out_instead_of_hanging(rtsp_server):
    # A hung camera: the connection stays open and nothing comes. The read must give up after
    # read_timeout_s, the reopen attempts after open_timeout_s, and the stream come back once it runs.
    server = rtsp_server(numbered_frames(50, W, H), fps=25, password=PASSWORD)
    config = StreamConfig(
        reconnect_attempts=10,
        backoff_initial_s=0.2,
        backoff_max_s=0.5,
        open_timeout_s=2.0,
        read_timeout_s=2.0,
    )
    events: list[dict] = []
    thaw: list[threading.Timer] = []
    got = 0
    with open_stream(server.url, config) as src:
        for _frame in src:
            got += 1
            events += src.drain_events()
            if got == 15:
                server.freeze()
                thaw.append(threading.Timer(4.5, server.thaw))
                thaw[0].start()
            if any(e["event"] == "stream_restored" for e in events) or got > 500:
                break
    thaw[0].join()
    assert [e["event"] for e in events] == ["stream_lost", "stream_restored"], events
    assert "read timeout" in events[0]["reason"]
    assert events[1]["attempts"] >= 2  # the first reopen hit the frozen server and timed out
    assert events[1]["outage_s"] >= 4.0 and events[1]["frames_missed"] > 0
