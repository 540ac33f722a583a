"""The degirum backend's streams (predict_batch with requests in flight) on real photographs, with
the shipped models, real DeGirum PySDK (ONNX/CPU agent) and real ONNX Runtime.

What is checked: results in source order, the same plates as the one-at-a-time path and as the
onnx backend, a failing frame in the middle of a stream (its own error, the others untouched),
and streams ending with requests in flight (the caller stops, or the source fails).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.degirum_agent import degirum_unavailable
from helpers.stream_fixtures import write_video

from runtime.config import PipelineConfig
from runtime.errors import SourceError
from runtime.frames import Frame
from runtime.pipeline import Predictor

pytestmark = pytest.mark.shared_data

PHOTOS = 8


@pytest.fixture(scope="module")
def photos(shared_datasets) -> list[Path]:
    """Real car photographs (the training split: nothing held out is looked at here)."""
    paths = sorted((shared_datasets / "uc3m_lp" / "images" / "train").glob("*.jpg"))[:PHOTOS]
    if len(paths) < PHOTOS:
        pytest.skip("uc3m_lp's training images are not there")
    return paths


@pytest.fixture(scope="module")
def degirum_predictor():
    why = degirum_unavailable()
    if why:
        pytest.skip(why)
    with Predictor(backend="degirum") as p:
        yield p


@pytest.fixture(scope="module")
def onnx_predictor():
    with Predictor(backend="onnx") as p:
        yield p


def stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("lpr-")]


def dicts(results) -> list[dict]:
    return [r.to_dict() for r in results]


def same_run(line: dict) -> dict:
    """A video line without what differs from run to run by design (an event's id and wall time)."""
    return {k: v for k, v in line.items() if k not in ("event_id", "time")}


def test_streamed_plates_come_in_source_order_and_match_the_one_at_a_time_path(
    degirum_predictor, onnx_predictor, photos
):
    streamed = dicts(degirum_predictor.run(photos))
    clock = degirum_predictor.backend.clocks["detector"]
    assert clock.peak > 1, "the detector never had more than one request in flight"
    assert [r["source"] for r in streamed] == [str(p) for p in photos]
    assert [r["frame"] for r in streamed] == list(range(len(photos)))
    assert sum(len(r["plates"]) for r in streamed) >= len(photos) // 2  # real plates were read
    assert streamed == dicts(degirum_predictor.run_naive(photos))
    assert streamed == dicts(onnx_predictor.run(photos))
    single = [[p.to_dict() for p in degirum_predictor.predict(cv2.imread(str(path)))] for path in photos]
    assert [r["plates"] for r in streamed] == single
    assert stream_threads() == []  # the run closed its streams


def test_a_failing_frame_in_the_middle_of_a_stream_is_its_own_error(degirum_predictor, photos):
    good = photos[:4]
    alone = dicts(degirum_predictor.run(good))
    frames = [
        Frame(source=str(good[0]), index=0, path=good[0]),
        Frame(source=str(good[1]), index=1, path=good[1]),
        Frame(source="camera-7/bad.jpg", index=2, data=b"\xff\xd8\xff\xe0 not really a jpeg"),
        # Decodes, but cannot be letterboxed (it shrinks to zero rows): PySDK fails on it inside
        # predict_batch, with other frames in flight.
        Frame(source="camera-7/line", index=3, image=np.zeros((1, 5000, 3), np.uint8)),
        Frame(source=str(good[2]), index=4, path=good[2]),
        Frame(source=str(good[3]), index=5, path=good[3]),
    ]
    results = list(degirum_predictor.run(frames))
    assert [r.frame for r in results] == list(range(6))
    corrupt, line = results[2], results[3]
    assert not corrupt.ok and "camera-7/bad.jpg" in corrupt.error and "not a decodable image" in corrupt.error
    assert not line.ok and "camera-7/line (frame 3)" in line.error and "plate detector failed" in line.error
    others = [results[i].to_dict() for i in (0, 1, 4, 5)]
    for got, want in zip(others, alone, strict=True):
        assert got["plates"] == want["plates"] and "error" not in got
    # The stream recovered: the next run gives the same results again.
    assert dicts(degirum_predictor.run(good)) == alone


def test_stream_end_with_requests_in_flight(degirum_predictor, photos):
    # The caller stops after two results: the frames still in flight are dropped with the streams.
    taken = []
    for r in degirum_predictor.run(photos):
        taken.append(r)
        if len(taken) == 2:
            break
    assert [r.frame for r in taken] == [0, 1]
    assert stream_threads() == []
    assert degirum_predictor.backend._streams is None

    # The source fails after five frames (a camera lost for good): the frames already sent still
    # come out, in order, then the source's error.
    def failing_source():
        for i, path in enumerate(photos[:5]):
            yield Frame(source=str(path), index=i, path=path)
        raise SourceError("rtsp://camera-7: the stream was lost and did not come back")

    got = []
    with pytest.raises(SourceError, match="camera-7"):
        for r in degirum_predictor.run(failing_source()):
            got.append(r)
    assert [r.frame for r in got] == list(range(5))
    assert dicts(got) == dicts(degirum_predictor.run(photos[:5]))
    assert stream_threads() == []


def test_video_file_through_the_streams_matches_the_onnx_backend(
    degirum_predictor, onnx_predictor, photos, tmp_path
):
    # A 16:9 video of the photographs, each held for 4 frames (tracks form, OCR runs on demand).
    frames = []
    for path in photos[:4]:
        image = cv2.resize(cv2.imread(str(path)), (960, 540), interpolation=cv2.INTER_AREA)
        frames += [image] * 4
    video = write_video(tmp_path / "cars.avi", frames, 25.0)
    streamed = [same_run(item.to_dict()) for item in degirum_predictor.track(str(video))]
    assert degirum_predictor.backend.clocks["detector"].peak > 1
    reference = [same_run(item.to_dict()) for item in onnx_predictor.track(str(video))]
    assert streamed == reference
    tracked = [d for d in streamed if "event" not in d]
    assert [d["frame"] for d in tracked] == list(range(len(frames)))
    assert any(d["plates"] for d in tracked)


def test_ocr_crops_of_several_frames_go_as_one_batch(photos):
    why = degirum_unavailable()
    if why:
        pytest.skip(why)
    with Predictor(backend="degirum", config=PipelineConfig(ocr_batch=1)) as one_by_one:
        reference = dicts(one_by_one.run(photos))
    batched_config = PipelineConfig(ocr_batch=4, ocr_batch_wait_ms=200.0)
    with Predictor(backend="degirum", config=batched_config) as batched:
        assert batched.backend.ocr_batch == 4
        got = dicts(batched.run(photos))
        peak = batched.backend.clocks["ocr"].peak
    assert got == reference
    crops = sum(len(r["plates"]) for r in reference)
    assert peak >= min(4, crops), f"the OCR model never had a batch of crops at once (peak {peak})"


def test_ocr_batch_recorded_in_the_zoo_json_is_used(photos, tmp_path):
    """The compile stage writes the OCR model's batch into its zoo entry (DEVICE EagerBatchSize);
    the degirum backend takes it as its OCR batch unless the config names one."""
    why = degirum_unavailable()
    if why:
        pytest.skip(why)
    import json

    from runtime.model_zoo import find_models

    det, ocr = find_models()
    zoo = tmp_path / "zoo"
    for model, batch in ((det, None), (ocr, 3)):
        folder = zoo / model.name
        folder.mkdir(parents=True)
        spec = json.loads(model.json_path.read_text())
        if batch is not None:
            spec["DEVICE"][0]["EagerBatchSize"] = batch
        (folder / model.json_path.name).write_text(json.dumps(spec))
        for f in model.json_path.parent.iterdir():
            if f.suffix != ".json" or f.name.startswith("labels_"):
                shutil.copyfile(f, folder / f.name)  # a link would point outside the entry's folder
    with Predictor(zoo, "degirum") as from_zoo:
        assert from_zoo.backend.ocr_batch == 3
        assert from_zoo.backend.ocr_model.eager_batch_size == 3
        got = dicts(from_zoo.run(photos[:4]))
    with Predictor(zoo, "degirum", PipelineConfig(ocr_batch=1)) as told:
        assert told.backend.ocr_batch == 1
        assert dicts(told.run(photos[:4])) == got


def test_ocr_crops_of_two_cameras_share_one_batch(photos, tmp_path):
    """Two cameras of one process (predictor views, a thread each, as --cameras runs them) on one
    degirum backend: each camera gets the plates it gets alone, and the OCR stream's held batches
    take crops of both cameras together."""
    why = degirum_unavailable()
    if why:
        pytest.skip(why)
    from runtime.cameras import predictor_view

    videos = []
    for k, group in enumerate((photos[:4], photos[4:8])):
        frames = []
        for path in group:
            frames += [cv2.resize(cv2.imread(str(path)), (960, 540), interpolation=cv2.INTER_AREA)] * 3
        videos.append(str(write_video(tmp_path / f"camera{k}.avi", frames, 25.0)))
    config = PipelineConfig(ocr_batch=4, ocr_batch_wait_ms=200.0)
    with Predictor(backend="degirum", config=config) as predictor:
        alone = [[same_run(i.to_dict()) for i in predictor.track(v)] for v in videos]
        before = predictor.backend.ocr_batches()
        together: list[list[dict]] = [[], []]

        def camera(k: int) -> None:
            view = predictor_view(predictor, None)
            together[k] = [same_run(i.to_dict()) for i in view.track(videos[k])]

        threads = [threading.Thread(target=camera, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = predictor.backend.ocr_batches()
    assert together == alone
    assert all(any(d.get("plates") for d in run) for run in alone)
    assert after["batches_from_several_cameras"] > before["batches_from_several_cameras"], after
    assert after["crops"] - before["crops"] > after["batches"] - before["batches"]  # batches of > 1 crop
    assert stream_threads() == []


def test_a_live_rtsp_camera_through_the_degirum_streams(degirum_predictor, photos, rtsp_server):
    """A real RTSP server looping car photographs (each held 1 s) as a camera: the degirum backend
    tracks it live (frames dropped as they come, newest wins) and its plate events read what the
    same backend reads in the photographs one by one."""
    import itertools

    from runtime.config import StreamConfig
    from runtime.results import Event, TrackedFrame
    from runtime.streams import open_stream

    pictures = [cv2.resize(cv2.imread(str(p)), (640, 480), interpolation=cv2.INTER_AREA) for p in photos[:4]]
    alone = {p.text for image in pictures for p in degirum_predictor.predict(image) if p.text}
    server = rtsp_server([image for image in pictures for _ in range(25)], fps=25)
    with open_stream(server.url, StreamConfig(drop="auto")) as stream:
        assert stream.live
        items = list(degirum_predictor.track(itertools.islice(stream, 150)))
    tracked = [i for i in items if isinstance(i, TrackedFrame)]
    events = [i.data for i in items if isinstance(i, Event) and i.data.get("event") == "plate"]
    assert len(tracked) == 150
    frames = [t.frame for t in tracked]
    assert frames == sorted(frames) and not any(t.error for t in tracked)
    assert events, "no plate event from a camera showing four cars"
    assert {e["text"] for e in events} & alone, (events, alone)
    assert stream_threads() == []
