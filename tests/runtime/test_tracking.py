"""Tracking, voting and OCR-on-demand rules (runtime/tracking.py), on plain boxes and readings."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.config import TrackConfig
from runtime.records import Char
from runtime.rules import load_rules
from runtime.tracking import Track, Tracker, TrackReading, needs_reading, vote


def moving(
    start: tuple[float, float], step: tuple[float, float], frame: int, size=(120.0, 30.0)
) -> list[float]:
    x, y = start[0] + step[0] * frame, start[1] + step[1] * frame
    return [x, y, x + size[0], y + size[1]]


def reading(
    text: str,
    scores: list[float] | float = 0.9,
    frame: int = 0,
    alternatives: dict[int, list[tuple[str, float]]] | None = None,
) -> TrackReading:
    if isinstance(scores, float):
        scores = [scores] * len(text)
    chars = [
        Char(
            char=c,
            box=(10.0 * i, 0.0, 10.0 * i + 8, 20.0),
            score=s,
            alternatives=(alternatives or {}).get(i, []),
        )
        for i, (c, s) in enumerate(zip(text, scores, strict=True))
    ]
    return TrackReading(
        frame=frame, text=text, score=float(np.prod(scores)), chars=chars, box=(0, 0, 100, 20)
    )


class TestTracker:
    def test_two_plates_crossing_keep_their_ids_through_a_gap_and_dropped_frames(self):
        tracker = Tracker(TrackConfig(max_missed=12))
        ids: dict[str, set[int]] = {"a": set(), "b": set()}
        frames = [f for f in range(60) if not 20 <= f < 30 and f % 7 != 3]  # a 10-frame occlusion, drops
        for f in frames:
            a = moving((0, 100), (12, 0.5), f)
            b = moving((900, 300), (-10, -0.5), f)
            matched, ended = tracker.update(f, np.array([a, b]), np.array([0.9, 0.8]))
            assert not ended
            for track, i in matched:
                ids["ab"[i]].add(track.id)
        assert len(ids["a"]) == 1 and len(ids["b"]) == 1 and ids["a"] != ids["b"]

    def test_weak_detections_continue_tracks_but_start_none(self):
        cfg = TrackConfig(high_score=0.5)
        tracker = Tracker(cfg)
        matched, _ = tracker.update(0, np.array([moving((0, 0), (5, 0), 0)]), np.array([0.9]))
        first = matched[0][0].id
        matched, _ = tracker.update(
            1, np.array([moving((0, 0), (5, 0), 1), [500, 500, 600, 530]]), np.array([0.3, 0.3])
        )
        assert [(t.id, i) for t, i in matched] == [(first, 0)]  # the weak stranger started nothing
        assert len(tracker.tracks) == 1

    def test_tracks_end_after_max_missed_frames_and_at_finish(self):
        tracker = Tracker(TrackConfig(max_missed=5))
        tracker.update(0, np.array([[0, 0, 100, 30]]), np.array([0.9]))
        _, ended = tracker.update(5, np.zeros((0, 4)), np.zeros(0))
        assert not ended
        _, ended = tracker.update(6, np.zeros((0, 4)), np.zeros(0))
        assert [t.id for t in ended] == [1] and not tracker.tracks
        tracker.update(7, np.array([[0, 0, 100, 30]]), np.array([0.9]))
        assert [t.id for t in tracker.finish()] == [2]

    def test_a_small_fast_plate_is_followed_by_its_centre(self):
        tracker = Tracker(TrackConfig())
        ids = set()
        for f in range(10):  # 40 px wide, moving 36 px a frame: consecutive boxes hardly overlap (IoU 0.05)
            matched, _ = tracker.update(f, np.array([moving((0, 50), (36, 0), f, (40, 12))]), np.array([0.9]))
            ids.add(matched[0][0].id)
        assert ids == {1}

    def test_a_plate_sliding_behind_a_pillar_keeps_its_track(self):
        """The detector boxes what it sees: the part of the plate beside the pillar, shrinking, then
        nothing, then the part coming out on the other side. The centre of a part moves slower than
        the plate (the demo video of 2026-11-26 split such a plate in two tracks)."""
        pillar = (480.0, 640.0)
        tracker = Tracker(TrackConfig())
        ids, hidden = set(), 0
        for f in range(70):
            x1, y1, x2, y2 = moving((1000, 200), (-12, 0), f)
            parts = [(x1, min(x2, pillar[0])), (max(x1, pillar[1]), x2)]
            visible = max(parts, key=lambda p: p[1] - p[0])
            if visible[1] - visible[0] < 12:  # too little of it to detect
                hidden += 1
                tracker.update(f, np.zeros((0, 4)), np.zeros(0))
                continue
            matched, ended = tracker.update(f, np.array([[visible[0], y1, visible[1], y2]]), np.array([0.9]))
            assert not ended
            ids.add(matched[0][0].id)
        assert hidden >= 4 and ids == {1}, (hidden, ids)

    def test_a_lost_track_is_not_revived_by_a_weak_box_or_a_plate_in_another_lane(self):
        tracker = Tracker(TrackConfig(max_missed=30))
        for f in range(5):
            tracker.update(f, np.array([moving((100, 100), (10, 0), f)]), np.array([0.9]))
        # 10 frames unseen; then a weak box ahead in its lane, and a strong one ahead in the next lane
        matched, _ = tracker.update(15, np.array([moving((100, 100), (10, 0), 15)]), np.array([0.3]))
        assert matched == []
        matched, _ = tracker.update(16, np.array([moving((100, 220), (10, 0), 16)]), np.array([0.9]))
        assert [t.id for t, _ in matched] == [2]
        matched, _ = tracker.update(17, np.array([moving((100, 100), (10, 0), 17)]), np.array([0.9]))
        assert 1 in [t.id for t, _ in matched]  # back in its own lane, ahead: the same track

    def test_a_plate_that_drove_out_of_the_frame_ends_and_a_new_one_there_is_new(self):
        tracker = Tracker(TrackConfig(max_missed=30))
        for f in range(8):  # the detector clips boxes at the frame edge, as ours does
            box = np.minimum(moving((400, 100), (30, 0), f), 640)
            tracker.update(f, np.array([box]), np.array([0.9]), (640, 480))
        assert [t.id for t in tracker.tracks] == [1] and tracker.tracks[0].box[2] == 640
        _, ended = tracker.update(9, np.zeros((0, 4)), np.zeros(0), (640, 480))
        assert [t.id for t in ended] == [1]  # not max_missed frames later
        # a plate entering at the same edge moments later (the other way) gets a track of its own
        matched, _ = tracker.update(10, np.array([[560, 100, 640, 130]]), np.array([0.9]), (640, 480))
        assert [t.id for t, _ in matched] == [2]

    def test_a_second_box_on_a_tracked_plate_starts_no_track(self):
        tracker = Tracker(TrackConfig())
        tracker.update(0, np.array([[100, 100, 220, 130]]), np.array([0.9]))
        matched, _ = tracker.update(
            1, np.array([[104, 100, 224, 130], [120, 101, 232, 131]]), np.array([0.9, 0.8])
        )
        assert [(t.id, i) for t, i in matched] == [(1, 0)] and len(tracker.tracks) == 1

    def test_a_much_smaller_or_taller_box_is_another_plate(self):
        tracker = Tracker(TrackConfig())
        tracker.update(0, np.array([[100, 100, 220, 130]]), np.array([0.9]))
        matched, _ = tracker.update(1, np.array([[105, 100, 225, 160]]), np.array([0.9]))
        assert [t.id for t, _ in matched] == [2]


class TestVote:
    def test_single_frame_misreads_are_outvoted(self):
        readings = [reading("ABC1234"), reading("A8C1234"), reading("ABC1284"), reading("ABC1234")]
        v = vote(readings)
        assert v.text == "ABC1234" and v.support == 4
        assert 0.5 < v.score < 1.0  # the B and 3 positions were contested

    def test_confidence_weights_the_vote(self):
        v = vote([reading("ABC1234", 0.95), reading("ABC1284", 0.3), reading("ABC1284", 0.3)])
        assert v.text == "ABC1234"

    def test_alternatives_count_as_soft_votes(self):
        # Two readings say 8 with B close behind; one says B firmly: B has more mass in total.
        alt = {1: [("B", 0.45)]}
        v = vote(
            [
                reading("A8C1234", [0.9, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9], alternatives=alt),
                reading("A8C1234", [0.9, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9], alternatives=alt),
                reading("ABC1234", 0.9),
            ]
        )
        assert v.text == "ABC1234"

    def test_readings_one_short_or_long_are_aligned(self):
        v = vote([reading("ABC1234"), reading("ABC124"), reading("ABBC1234"), reading("ABC1934")])
        assert v.text == "ABC1234" and v.support == 2
        assert v.chars[3].score > 0.6  # the short reading's 1 voted in the right place

    def test_region_rules_pick_a_valid_text_from_the_vote(self):
        # Brazil: LLL#### - every reading saw a 0 where a letter must be.
        v = vote([reading("AB01234"), reading("AB01234")], load_rules("br"))
        assert v.text == "ABO1234"

    def test_no_characters_no_vote(self):
        assert vote([]) is None
        assert vote([TrackReading(frame=0, text="", score=0.0, chars=[], box=(0, 0, 1, 1))]) is None


class TestNeedsReading:
    cfg = TrackConfig(
        confirm_readings=3,
        read_every_unconfirmed=2,
        read_every_confirmed=10,
        edge_margin=0.01,
        edge_patience=5,
        unconfirmed_backoff=1.0,
    )

    def read(self, track: Track, frame: int) -> None:
        track.attempts += 1
        track.last_read_frame = frame

    def test_schedule_new_unconfirmed_confirmed(self):
        t = Track(id=1, box=(100, 100, 200, 130), det_score=0.9, first_frame=0, last_frame=0)
        box, size = (100.0, 100.0, 200.0, 130.0), (640, 480)
        frames_read = []
        for f in range(40):
            if f == 12:
                t.confirmed = True
            if needs_reading(t, f, box, *size, self.cfg):
                self.read(t, f)
                frames_read.append(f)
        assert frames_read == [0, 1, 2, 4, 6, 8, 10, 20, 30]

    def test_unconfirmed_tracks_are_read_less_and_less_often(self):
        cfg = TrackConfig(
            confirm_readings=3, read_every_unconfirmed=2, unconfirmed_backoff=2.0, read_every_confirmed=12
        )
        t = Track(id=1, box=(100, 100, 200, 130), det_score=0.9, first_frame=0, last_frame=0)
        frames_read = []
        for f in range(60):
            if needs_reading(t, f, (100.0, 100.0, 200.0, 130.0), 640, 480, cfg):
                self.read(t, f)
                frames_read.append(f)
        assert frames_read == [0, 1, 2, 4, 8, 16, 28, 40, 52]  # waits 2, 4, 8, then capped at 12

    def test_plates_at_the_edge_wait_unless_they_stay_there(self):
        t = Track(id=1, box=(0, 100, 80, 130), det_score=0.9, first_frame=0, last_frame=0, hits=1)
        edge = (0.0, 100.0, 80.0, 130.0)
        assert not needs_reading(t, 0, edge, 640, 480, self.cfg)
        t.hits = 5
        assert needs_reading(t, 4, edge, 640, 480, self.cfg)
        self.read(t, 4)
        assert not needs_reading(t, 5, edge, 640, 480, self.cfg)  # read once; now wait for a full view
        assert needs_reading(t, 5, (50.0, 100.0, 130.0, 130.0), 640, 480, self.cfg)


def test_track_config_rejects_bad_values():
    with pytest.raises(ValueError, match="confirm_score"):
        TrackConfig(confirm_score=2)
    with pytest.raises(ValueError, match="event_at"):
        TrackConfig(event_at="never")
    with pytest.raises(ValueError, match="unknown keys"):
        TrackConfig.from_dict({"nope": 1})
