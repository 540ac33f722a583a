"""The zoomed-out look for large plates (``zoom_out``, runtime/zoom_out.py).

On real car photos (carplates_mixed, whose close-ups hold plates wider than the detector finds
well) the shipped detector runs with the look off and on; the plates found are counted by their
width in the detector's input, both directions, and printed (``-s``). The geometry and the merge
are checked on their own with the detector's real outputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from data.manifest import read_manifest
from evaluate.metrics import false_positives
from runtime.config import PipelineConfig
from runtime.errors import InputError
from runtime.frames import Frame
from runtime.geometry import iou_matrix
from runtime.pipeline import Predictor
from runtime.postprocess import Detections
from runtime.records import Plate
from runtime.zoom_out import (
    EmptyFramePacer,
    letterbox_scale,
    merge_zoomed_out,
    needs_zoom_out,
    zoomed_out_canvas,
)

INPUT = (640, 640)


def _dets(boxes, scores) -> Detections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(boxes, np.asarray(scores, np.float32), np.zeros(len(boxes), np.int64))


def test_the_canvas_shrinks_the_frame_about_its_centre_and_maps_back_exactly():
    image = np.zeros((300, 500, 3), np.uint8)
    image[100:150, 200:400] = 255  # a bright "plate"
    scale = letterbox_scale(300, 500, INPUT)
    canvas, shrink, offset = zoomed_out_canvas(image, scale, 2.0)
    assert canvas.shape[:2] == (round(300 * scale), round(500 * scale))  # the letterbox leaves it as it is
    assert shrink == pytest.approx(scale / 2)
    ys, xs = np.nonzero(canvas[..., 0] > 200)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    back = (box - np.tile(offset, 2)) / shrink
    np.testing.assert_allclose(back, [200, 100, 400, 150], atol=2.5)
    assert canvas[0, 0].tolist() == [114, 114, 114]  # the letterbox fill around it


def test_the_second_pass_runs_on_empty_frames_and_wide_plates_only():
    on = PipelineConfig(zoom_out=True)
    assert needs_zoom_out(_dets([], []), 1.0, on)
    assert not needs_zoom_out(_dets([[0, 0, 150, 40]], [0.9]), 1.0, on)
    assert needs_zoom_out(_dets([[0, 0, 150, 40]], [0.9]), 1.5, on)  # 225 px in the detector's input
    assert not needs_zoom_out(_dets([], []), 1.0, on, empty_due=False)  # an empty frame not due
    assert not needs_zoom_out(_dets([], []), 1.0, PipelineConfig(zoom_out=False))


def test_empty_frames_of_one_source_are_paced_and_photos_never():
    pacer = EmptyFramePacer(every=3)
    due = []
    for found in [False] * 7:  # a video's empty road: the 1st, 4th, 7th frames get the pass
        due.append(pacer.due("cam"))
        pacer.seen("cam", found)
    assert due == [True, False, False, True, False, False, True]
    pacer.seen("cam", True)  # a plate: the next empty frame is due again
    assert pacer.due("cam")
    pacer.seen("cam", False)
    assert not pacer.due("cam")
    assert pacer.due("photo-2.jpg")  # another source: a photo of a folder always is
    pacer.seen("photo-2.jpg", False)
    assert pacer.due("photo-3.jpg")
    assert all(EmptyFramePacer(every=1).due("cam") for _ in range(3))


def test_large_zoomed_out_plates_replace_the_pieces_and_small_ones_are_ignored():
    config = PipelineConfig(zoom_out=True)
    first = _dets([[100, 100, 340, 160], [330, 100, 560, 160], [20, 20, 60, 35]], [0.8, 0.7, 0.6])
    zoomed = _dets([[98, 98, 562, 162], [21, 20, 61, 36]], [0.75, 0.5])
    merged = merge_zoomed_out(first, zoomed, 1.0, config)
    # the two pieces of the large plate went, the small plate of the first pass stayed (the
    # zoomed-out copy of it is below zoom_out_min_width), best first
    assert merged.boxes.tolist() == [[98, 98, 562, 162], [20, 20, 60, 35]]
    assert merged.scores.tolist() == pytest.approx([0.75, 0.6])
    assert merge_zoomed_out(first, _dets([], []), 1.0, config) is first
    capped = merge_zoomed_out(_dets([], []), zoomed, 1.0, PipelineConfig(zoom_out=True, max_plates=1))
    assert len(capped) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"zoom_out_factor": 0.5},
        {"zoom_out_overlap": 1.5},
        {"zoom_out_min_width": -1},
        {"zoom_out_empty_every": 0},
    ],
)
def test_bad_settings_are_named(bad):
    with pytest.raises(InputError, match=next(iter(bad))):
        PipelineConfig(**bad)


@pytest.fixture(scope="module")
def close_ups(shared_datasets):
    """carplates_mixed photos holding a plate at least 128 px wide in the detector's input:
    [(image, labelled boxes, input scale)]."""
    manifest = read_manifest(shared_datasets / "carplates_mixed" / "labels.jsonl")
    out = []
    for item in manifest.images:
        scale = letterbox_scale(item.height, item.width, INPUT)
        if any((p.box[2] - p.box[0]) * scale >= 128 for p in item.plates):
            image = cv2.imread(str(manifest.image_path(item)))
            out.append((image, [Plate(box=p.box) for p in item.plates], scale))
    assert len(out) >= 40
    return out


@pytest.mark.shared_data
def test_the_zoomed_out_look_finds_large_plates_the_first_pass_misses(close_ups):
    counts = {}
    with (
        Predictor(config=PipelineConfig(threads=1, workers=1, zoom_out=False)) as off,
        Predictor(config=PipelineConfig(threads=1, workers=1, zoom_out=True)) as on,
    ):
        for name, predictor in (("off", off), ("on", on)):
            found = {"< 240": 0, ">= 240": 0}
            labelled = {"< 240": 0, ">= 240": 0}
            fp = 0
            for image, truth, scale in close_ups:
                dets = predictor.detect(image)
                preds = [
                    Plate(box=tuple(b), det_score=float(s))
                    for b, s in zip(dets.boxes.tolist(), dets.scores, strict=True)
                ]
                wrong = set(false_positives(truth, preds, None, 0.5))
                fp += len(wrong)
                matched = [p for j, p in enumerate(preds) if j not in wrong]
                for label in truth:
                    key = ">= 240" if (label.box[2] - label.box[0]) * scale >= 240 else "< 240"
                    labelled[key] += 1
                    found[key] += any(iou_matrix(label.box, p.box)[0, 0] >= 0.5 for p in matched)
            counts[name] = {"found": found, "labelled": labelled, "false positives": fp}
    print("zoom_out on", len(close_ups), "close-ups:", counts)
    off_found, on_found = counts["off"]["found"], counts["on"]["found"]
    assert on_found[">= 240"] > off_found[">= 240"]  # what it is for
    assert on_found["< 240"] >= off_found["< 240"] - 1
    assert counts["on"]["false positives"] <= counts["off"]["false positives"] + 1


@pytest.mark.shared_data
def test_every_path_through_the_pipeline_gets_the_same_plates(close_ups):
    """``predict``, ``run`` (threads, frames in flight) and the naive loop apply the look alike."""
    images = [image for image, _, _ in close_ups[:8]]
    with Predictor(config=PipelineConfig(threads=1, workers=2, zoom_out=True)) as predictor:
        one_by_one = [[p.box for p in predictor.predict(image)] for image in images]
        pipelined = [[p.box for p in r.plates] for r in predictor.run(images)]
        naive = [[p.box for p in r.plates] for r in predictor.run_naive(images)]
    assert pipelined == one_by_one == naive
    assert sum(map(len, one_by_one)) >= len(images) // 2


def _count_detections(predictor: Predictor) -> list[int]:
    """The predictor's detector passes, counted as they happen (the real backend runs them)."""
    calls = [0]
    real = predictor.backend.detect

    def counted(image):
        calls[0] += 1
        return real(image)

    predictor.backend.detect = counted  # type: ignore[method-assign]
    return calls


def test_a_video_of_an_empty_road_pays_the_second_pass_on_every_nth_frame_only():
    rng = np.random.default_rng(5)
    road = np.clip(rng.normal(120, 25, (360, 640, 3)), 0, 255).astype(np.uint8)
    every, n = 4, 10
    config = PipelineConfig(threads=1, workers=1, zoom_out_empty_every=every)
    with Predictor(config=config) as predictor:
        assert len(predictor.backend.detect(road)) == 0  # the first pass finds nothing here
        calls = _count_detections(predictor)
        video = [Frame(source="road.mp4", index=i, image=road) for i in range(n)]
        results = list(predictor.run(video))
        video_calls = calls[0]
        calls[0] = 0
        photos = [Frame(source=f"road-{i}.jpg", index=i, image=road) for i in range(n)]
        list(predictor.run(photos))
    assert [r.error for r in results] == [None] * n and all(not r.plates for r in results)
    assert video_calls == n + len(range(0, n, every))  # frames 0, 4, 8 got the second pass
    assert calls[0] == 2 * n  # every photo did


@pytest.mark.shared_data
def test_a_large_plate_only_the_zoomed_out_pass_finds_is_found_on_every_frame_of_a_video(close_ups):
    with (
        Predictor(config=PipelineConfig(threads=1, workers=1, zoom_out=False)) as off,
        Predictor(config=PipelineConfig(threads=1, workers=1)) as on,
    ):
        missed = next(
            image for image, _, _ in close_ups if len(off.detect(image)) == 0 and len(on.detect(image)) > 0
        )
        video = [Frame(source="gate.mp4", index=i, image=missed) for i in range(6)]
        found = [len(r.plates) for r in on.run(video)]
    assert all(found), found


def test_cameras_sharing_one_model_pair_count_their_empty_frames_apart():
    """Two cameras' views of one predictor, their frames interleaved as their threads would: each
    camera's empty road still gets the second pass every N-th frame, not on every frame."""
    from runtime.cameras import predictor_view

    rng = np.random.default_rng(6)
    road = np.clip(rng.normal(120, 25, (360, 640, 3)), 0, 255).astype(np.uint8)
    every, n = 4, 8
    with Predictor(config=PipelineConfig(threads=1, workers=1, zoom_out_empty_every=every)) as predictor:
        views = [predictor_view(predictor, None) for _ in range(2)]
        calls = _count_detections(predictor)
        for i in range(n):
            for k, view in enumerate(views):
                frame = Frame(source=f"cam{k}.mp4", index=i, image=road)
                _, dets, error = view.completed(frame, view.scheduler.detect(frame))
                assert error is None and dets is not None and len(dets) == 0
    assert calls[0] == 2 * (n + len(range(0, n, every)))


def test_the_benchmarks_print_the_zoomed_out_passes_per_frame():
    """The look's cost in passes, beside the FPS it moves: a video of an empty road pays one pass
    in ``zoom_out_empty_every`` frames, a folder of empty photos one per photo."""
    from runtime.video import benchmark_video

    rng = np.random.default_rng(7)
    road = np.clip(rng.normal(120, 25, (360, 640, 3)), 0, 255).astype(np.uint8)
    with Predictor(config=PipelineConfig(threads=1, workers=1, zoom_out_empty_every=4)) as predictor:
        video = benchmark_video(
            predictor, [Frame(source="road.mp4", index=i, image=road) for i in range(8)], 1
        )
        photos = predictor.benchmark([road] * 4, repeat=1, warmup=0)
    assert video["zoom_out_passes_per_frame"] == pytest.approx(2 / 8)
    assert photos["zoom_out_passes_per_frame"] == pytest.approx(1.0)
    assert video["cpu_ms_per_frame"]["pipeline"] > 0
