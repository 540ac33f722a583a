"""Plate events on synthetic traffic videos with known truth (data.synth.video, read by the shipped
models): clean events, zones, watch lists, direction of travel and crops."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.video_truth import plate_events, plate_of, truth_of

from data.synth.video import make_video
from runtime.config import EventsConfig, PipelineConfig, TrackConfig
from runtime.events.record import EventBuilder
from runtime.events.watchlist import load_watchlist
from runtime.events.zones import zones_from_dict
from runtime.pipeline import Predictor

# Brazilian grey plates in fonts the shipped OCR model reads (see tests/test_runtime_video.py), with
# the Brazilian rules: every plate of the video can confirm.
VIDEO = dict(
    frames=120,
    plates=5,
    fps=25.0,
    styles=["br_old"],
    two_line_share=0.0,
    fonts=["roboto-condensed:600", "barlow-semi-condensed:SemiBold"],
)


@pytest.fixture(scope="module")
def predictor():
    with Predictor(config=PipelineConfig(region="br")) as p:
        yield p


@pytest.fixture(scope="module")
def traffic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("event_traffic")
    make_video(out, seed=11, progress=False, **VIDEO)
    return out


def run(predictor, video: Path, track: TrackConfig | None = None, **builder) -> tuple[list[dict], dict]:
    """The plate events of ``video`` and the run's counts."""
    track = track or TrackConfig()
    events = EventBuilder(track_config=track, **builder)
    tracked = predictor.track(str(video), track, events=events)
    return plate_events(tracked), tracked.stats.to_dict()


@pytest.fixture(scope="module")
def lanes(traffic) -> dict:
    """The near lane's zone (relative: the frame below a line between the lanes) and the truth."""
    truth, boxes = truth_of(traffic, visible_only=True)
    centre_y = {pid: [(b[1] + b[3]) / 2 for b in frames.values()] for pid, frames in boxes.items()}
    lane = {p["id"]: p["lane"] for p in truth["plates"]}
    far = max(max(ys) for pid, ys in centre_y.items() if lane[pid] == 0)
    near = min(min(ys) for pid, ys in centre_y.items() if lane[pid] == 1)
    assert far < near, "the lanes must not overlap for this test"
    split = (far + near) / 2 / truth["height"]
    return {"truth": truth, "boxes": boxes, "polygon": [[0, split], [1, split], [1, 1], [0, 1]]}


def test_clean_events_one_per_plate_with_watch_list_and_crop_files(predictor, traffic, tmp_path):
    """Default settings (events at confirmation), a watch list, crops as files."""
    truth, boxes = truth_of(traffic, visible_only=True)
    texts = [p["text"] for p in truth["plates"]]
    exact, off_by_one, far = texts[0], texts[1], texts[2]
    swapped = next((lookalike_of(t) for t in texts[3:] if lookalike_of(t)), None)
    one_off = off_by_one[:-1] + ("0" if off_by_one[-1] != "0" else "1")  # one substitution
    two_off = far[:-2] + "".join("0" if c != "0" else "1" for c in far[-2:])  # two substitutions
    rows = [
        "plate,label,list",
        f"{exact},staff car,allow",
        f"{one_off},reported stolen,deny",
        f"{two_off},too far,deny",
    ]
    if swapped:
        rows.append(f"{swapped},look-alike,allow")
    path = tmp_path / "watch.csv"
    path.write_text("\n".join(rows) + "\n")
    crops = tmp_path / "crops"
    config = EventsConfig(crop="file", crops_dir=str(crops))
    events, stats = run(
        predictor, traffic / "video.mp4", watchlist=load_watchlist(path), camera="gate", config=config
    )

    by_plate: dict[int, list[dict]] = {}
    for e in events:
        pid = plate_of(e, boxes)
        assert pid is not None, f"an event for no plate of the video: {e['text']}"
        by_plate.setdefault(pid, []).append(e)
        assert e["confirmed"], "by default only confirmed tracks make events"
    for plate in truth["plates"]:
        got = [e for e in by_plate.get(plate["id"], []) if not e["update"]]
        assert len(got) == 1, f"{plate['text']}: {len(got)} events"
        assert got[0]["text"] == plate["text"]
    assert len({e["event_id"] for e in events if not e["update"]}) == stats["events"] == len(truth["plates"])
    assert all(len(e["event_id"]) == 32 and e["camera"] == "gate" for e in events)

    first = {e["text"]: e for e in events if not e["update"]}
    assert first[exact]["watchlist"] == {"plate": exact, "label": "staff car", "list": "allow", "distance": 0}
    assert first[exact]["denied"] is False
    hit = first[off_by_one]["watchlist"]
    assert hit["plate"] == one_off and hit["list"] == "deny" and hit["distance"] == 1
    assert first[off_by_one]["denied"] is True
    assert first[far]["watchlist"] is None, "two edits is beyond max_distance 1"
    if swapped:
        original = next(t for t in texts[3:] if lookalike_of(t) == swapped)
        assert first[original]["watchlist"]["distance"] == 0.5

    for e in events:
        crop_file = Path(e["crop_path"])
        assert crop_file.parent == crops / "gate" and crop_file.name == f"{e['event_id']}.jpg"
        crop = cv2.imread(str(crop_file))
        x1, y1, x2, y2 = e["best_box"]
        assert crop is not None and crop.shape[1] >= (x2 - x1) and "crop_jpeg" not in e


def test_a_zone_keeps_only_its_lane_names_itself_and_tells_the_direction(predictor, traffic, lanes):
    """Events at the end of each track (so the direction covers the whole track), zones, base64 crops."""
    truth = lanes["truth"]
    zones = zones_from_dict(
        {"zones": [{"name": "near-lane", "coords": "relative", "points": lanes["polygon"]}]}
    )
    events, stats = run(predictor, traffic / "video.mp4", TrackConfig(event_at="end"), zones=zones.default)
    near_plates = [p["text"] for p in truth["plates"] if p["lane"] == 1]
    assert near_plates and len(near_plates) < len(truth["plates"])
    assert sorted(e["text"] for e in events) == sorted(near_plates)
    assert stats["outside_zones"] > 0
    for e in events:
        assert e["zone"] == "near-lane" and e["revision"] == 0 and e["update"] is False
        # The video's plates grow from 12 % to 20 % of the frame's width as they drive on: approaching.
        assert e["direction"] == "approaching", (e["text"], e["direction"])
        crop = cv2.imdecode(np.frombuffer(base64.b64decode(e["crop_jpeg"]), np.uint8), cv2.IMREAD_COLOR)
        x1, y1, x2, y2 = e["best_box"]
        assert crop is not None and crop.shape[1] >= (x2 - x1) and crop.shape[0] >= (y2 - y1)


def test_the_same_polygon_as_an_exclude_zone_keeps_the_other_lane(lanes):
    zones = zones_from_dict({"zones": [{"name": "near", "type": "exclude", "points": lanes["polygon"]}]})
    truth, boxes = lanes["truth"], lanes["boxes"]
    for plate in truth["plates"]:
        for box in boxes[plate["id"]].values():
            counts, zone = zones.default.zone_of(box, truth["width"], truth["height"])
            assert counts == (plate["lane"] == 0) and zone is None


def test_unconfirmed_tracks_are_counted_not_sent_unless_asked(predictor, tmp_path):
    """Argentine Mercosur plates (LL DDD LL) never match the Brazilian rules: never confirmed."""
    video = tmp_path / "ar"
    make_video(video, seed=12, progress=False, **{**VIDEO, "frames": 60, "plates": 1, "styles": ["mercosur"]})
    truth, _ = truth_of(video, visible_only=True)
    assert not any(predictor.rules.matches(p["text"]) for p in truth["plates"]), truth["plates"]
    clean, stats = run(predictor, video / "video.mp4")
    assert clean == [] and stats["unconfirmed"] == len(truth["plates"])
    reported, _ = run(predictor, video / "video.mp4", TrackConfig(report_unconfirmed=True))
    assert [e["text"] for e in reported] == [p["text"] for p in truth["plates"]]
    assert not any(e["confirmed"] for e in reported)


def lookalike_of(text: str) -> str | None:
    """``text`` with one character swapped for its look-alike (O/0, I/1, B/8, S/5, Z/2, G/6)."""
    pairs = dict([("O", "0"), ("I", "1"), ("B", "8"), ("S", "5"), ("Z", "2"), ("G", "6")])
    pairs.update({b: a for a, b in list(pairs.items())})
    for i, ch in enumerate(text):
        if ch in pairs:
            return text[:i] + pairs[ch] + text[i + 1 :]
    return None
