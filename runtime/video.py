"""Reading plates in video: detect every frame, track, read on demand, vote, send one event per plate.

    >>> p = Predictor()
    >>> for item in track_plates(p, "traffic.mp4"):      # or predictor.track("rtsp://...")
    ...     print(item.to_dict())                         # TrackedFrame lines and Event lines

Every frame goes through the plate detector (tracking needs it; it runs on the pipeline's worker
pool as for images). The OCR model only reads the tracks that need it (new, not yet confirmed, or
due for a re-read: see :class:`runtime.config.TrackConfig`), all of a frame's crops in one batch,
so a busy road costs a few OCR crops per frame instead of one per plate. Each reading votes for its
track's text; a track's text and score come from the vote, so they stay steady across frames.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np

from runtime.config import TrackConfig
from runtime.events.record import EventBuilder, crop_plate, new_event_id
from runtime.records import Plate, to_box
from runtime.results import FRAME_UNREAD, Event, TrackedFrame, VideoStats, peak_rss_mb
from runtime.sources import Frame, SourceError, SourceSpec, iter_frames
from runtime.tracking import Track, Tracker, needs_reading, reading_from_plate, vote

if TYPE_CHECKING:  # for annotations only: the predictor imports this module, never the reverse
    from runtime.pipeline import Predictor

REASON_NOT_READ = "not read yet"
SCENE_THUMB = (32, 18)
"""Width x height of the grey thumbnails compared for scene cuts: coarse, so noise and a car
driving through average out."""


class PlateTracker:
    """The per-video state: tracks, their readings and votes, and the events they produce.

    ``step`` runs once per frame, in frame order, on the pipeline's reader thread."""

    def __init__(
        self, predictor: Predictor, config: TrackConfig | None = None, events: EventBuilder | None = None
    ) -> None:
        self.predictor = predictor
        self.config = config or TrackConfig()
        self.tracker = Tracker(self.config)
        self.stats = VideoStats()
        self.events = events or EventBuilder(track_config=self.config)
        """Completes plate events (id, camera, zone, direction, watch list, crop): runtime/events."""
        self.size: tuple[int, int] | None = None
        """The frames' (width, height)."""
        self._thumb: np.ndarray | None = None

    def step(
        self, frame: Frame, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, keep_image: bool = False
    ) -> TrackedFrame:
        cfg = self.config
        height, width = image.shape[:2]
        self.size = (width, height)
        zones = self.events.zones
        if zones is not None and len(boxes):
            keep = zones.keep(boxes, width, height)
            self.stats.outside_zones += len(boxes) - len(keep)
            boxes, scores = boxes[keep], scores[keep]
        cut = self._scene_cut(image)
        ended = self.tracker.finish() if cut else []
        if cut:
            self.stats.scene_cuts += 1
        matched, gone = self.tracker.update(frame.index, boxes, scores, (width, height))
        ended += gone
        due = [
            (t, i) for t, i in matched if needs_reading(t, frame.index, to_box(boxes[i]), width, height, cfg)
        ]
        # Tracks with the fewest readings first: a new plate matters more than a re-read.
        due.sort(key=lambda m: (len(m[0].readings), -float(scores[m[1]])))
        due = due[: cfg.max_reads_per_frame]
        read: dict[int, Plate] = {}
        if due:
            index = np.array([i for _, i in due])
            for (track, i), plate in zip(
                due, self.predictor.read_boxes(image, boxes[index], scores[index]), strict=True
            ):
                read[i] = plate
                track.last_read_frame = frame.index
                track.attempts += 1
                if plate.text:
                    reading = reading_from_plate(plate, frame.index)
                    if self.events.wants_crops:
                        reading.crop = crop_plate(image, reading.box, self.events.config.crop_padding)
                    track.add_reading(reading, cfg.max_readings)
                    track.vote = vote(list(track.readings), self.predictor.rules, self.predictor.config.top_n)
                    if not track.confirmed and self._confirms(track):
                        track.confirmed = True
            self.stats.read_batches += 1
            self.stats.reads += len(due)
        events = [e for t in ended if (e := self._final_event(t, frame.source)) is not None]
        if cfg.event_at == "confirm":
            for track, _ in matched:
                if track.hits < cfg.min_hits or not track.confirmed:
                    continue
                if not track.reported:
                    events.append(self._event(track, frame.source))
                elif (
                    track.vote is not None
                    and track.vote.text != track.reported_text
                    and self._confirms(track)
                ):
                    events.append(self._event(track, frame.source))  # the vote turned: an update
        plates = [self._plate(track, i, boxes, scores, read.get(i)) for track, i in matched]
        self.stats.frames += 1
        self.stats.plates += len(plates)
        return TrackedFrame(
            source=frame.source,
            frame=frame.index,
            plates=plates,
            image=image if keep_image else None,
            reads=len(due),
            events=events,
        )

    def _scene_cut(self, image: np.ndarray) -> bool:
        """Whether ``image`` starts another scene (see ``TrackConfig.scene_cut``)."""
        import cv2

        if self.config.scene_cut <= 0:
            return False
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        thumb = cv2.resize(grey, SCENE_THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
        previous, self._thumb = self._thumb, thumb
        if previous is None:
            return False
        return float(np.abs(thumb - previous).mean()) / 255.0 >= self.config.scene_cut

    def _confirms(self, track: Track) -> bool:
        """Enough readings agree; with region rules, on a text the rules allow (a plate read short
        the same way three times, e.g. a narrow M lost, does not confirm)."""
        v, rules = track.vote, self.predictor.rules
        if v is None or v.support < self.config.confirm_readings or v.score < self.config.confirm_score:
            return False
        if rules is not None and rules.patterns:
            return rules.matches(v.text)
        return len(v.text) >= self.config.min_text_length

    def finish(self, source: str) -> list[Event]:
        """Events of the tracks still open when the source ends."""
        return [e for t in self.tracker.finish() if (e := self._final_event(t, source)) is not None]

    def _event(self, track: Track, source: str) -> Event:
        """The track's event: the first (revision 0), or an update with the same ``event_id``."""
        if not track.reported:
            track.reported = True
            track.event_id = new_event_id()
            self.stats.events += 1
            self.stats.confirmed += track.confirmed
        else:
            self.stats.updates += 1
        track.revision += 1
        track.reported_text = track.vote.text if track.vote else ""
        best = track.best_reading()
        data = self.events.plate_event(
            track.event(source),
            event_id=track.event_id,
            revision=track.revision,
            first_box=track.first_box,
            last_box=track.box,
            size=self.size,
            crop=best.crop if best is not None else None,
        )
        return Event(data)

    def _final_event(self, track: Track, source: str) -> Event | None:
        if track.reported:  # its final vote may have turned since the event went out
            text = track.vote.text if track.vote else ""
            changed = text != track.reported_text and (not track.confirmed or self._confirms(track))
            return self._event(track, source) if changed else None
        if track.hits < self.config.min_hits:
            return None
        if track.vote is None:
            self.stats.unread_tracks += 1
            return None
        if not track.confirmed and not self.config.report_unconfirmed:
            self.stats.unconfirmed += 1  # badges, grilles, stickers - or a plate never read twice alike
            return None
        return self._event(track, source)

    @staticmethod
    def _plate(track: Track, i: int, boxes: np.ndarray, scores: np.ndarray, read: Plate | None) -> Plate:
        v = track.vote
        plate = Plate(
            box=to_box(boxes[i]),
            det_score=float(scores[i]),
            track_id=track.id,
            text=v.text if v else "",
            score=v.score if v else None,
            lines=v.lines if v else None,
            region_match=v.region if v else None,
            chars=list(read.chars) if read is not None else [],
            reason=None if v else (read.reason if read is not None and read.reason else REASON_NOT_READ),
        )
        plate.extra.update({"confirmed": track.confirmed, "read": read is not None})
        return plate


class TrackRun(Iterator["TrackedFrame | Event"]):
    """The iterator ``Predictor.track`` returns: tracked frames and events in order, and the run's
    counts in :attr:`stats` (complete once the iterator is exhausted or closed)."""

    def __init__(self, items: Iterator[TrackedFrame | Event], stats: VideoStats) -> None:
        self._items = items
        self.stats = stats

    def __iter__(self) -> TrackRun:
        return self

    def __next__(self) -> TrackedFrame | Event:
        return next(self._items)

    def close(self) -> None:
        """Stop early: the scheduler's threads end and the source (if opened here) is closed."""
        close = getattr(self._items, "close", None)
        if close is not None:
            close()


def track_plates(
    predictor: Predictor,
    source: SourceSpec,
    config: TrackConfig | None = None,
    keep_images: bool = False,
    events: EventBuilder | None = None,
) -> TrackRun:
    """Tracked frames of ``source`` in order, each followed by the events it produced (plates
    confirmed or ended, stream outages); the last events come when the source ends. The run's
    counts are in the returned iterator's ``stats``. ``events`` completes plate events (camera,
    zones, watch list, crops: :mod:`runtime.events.record`).
    """
    state = PlateTracker(predictor, config, events)
    return TrackRun(_tracked(predictor, source, state, keep_images), state.stats)


def _tracked(
    predictor: Predictor, source: SourceSpec, state: PlateTracker, keep_images: bool
) -> Iterator[TrackedFrame | Event]:
    # A stream opened by the caller (runtime.streams) is used as is: its events and counts matter.
    opened_here = not hasattr(source, "drain_events")
    frames: Iterator[Frame] = iter_frames(source) if opened_here else source  # type: ignore[assignment]
    last_source = str(getattr(frames, "name", source if isinstance(source, str) else "<frames>"))

    def second_stage(frame: Frame, detected: Future) -> TrackedFrame:
        image, dets, error = predictor.completed(frame, detected.result())
        if error is not None or image is None or dets is None:  # DetectedFrame: both set when no error
            state.stats.frames += 1
            state.stats.errors += 1
            return TrackedFrame(source=frame.source, frame=frame.index, error=error or FRAME_UNREAD)
        return state.step(frame, image, dets.boxes, dets.scores, keep_images)

    start = time.perf_counter()
    try:
        try:
            for result in predictor.scheduler.run(frames, second_stage):
                last_source = result.source
                yield result
                yield from _source_events(frames)
                yield from result.events
        except SourceError:  # a stream lost for good: the plates seen so far still get their events
            yield from _source_events(frames)
            yield from state.finish(last_source)
            raise
        yield from _source_events(frames)
        yield from state.finish(last_source)
    finally:
        state.stats.seconds = time.perf_counter() - start
        stats = getattr(frames, "stats", None)
        if stats is not None and hasattr(stats, "to_dict"):
            state.stats.source = stats.to_dict()
        close = getattr(frames, "close", None)
        if opened_here and close is not None:
            close()


def _source_events(frames: Any) -> Iterator[Event]:
    drain = getattr(frames, "drain_events", None)
    if drain is not None:
        for data in drain():
            yield Event(data)


def benchmark_video(
    predictor: Predictor, frames: list[Frame], repeat: int = 2, config: TrackConfig | None = None
) -> dict[str, Any]:
    """Speed of the video pipeline on ``frames`` (decoded, in memory) against the detector alone.

    Each mode runs ``repeat`` times, interleaved; the best run counts. Returns frames, fps of the
    tracked pipeline (``Predictor.track``: detect every frame, read on demand), of the detector
    alone one frame at a time (``detector_only_fps``) and on the pipeline's workers
    (``detector_only_parallel_fps``), their ratios, zoomed-out passes, CPU time and OCR reads per
    frame, events and peak memory.
    """
    if not frames:
        raise ValueError("benchmark: the video has no frames")
    runs: list[TrackRun] = []

    def tracked() -> list[TrackedFrame]:
        runs.append(predictor.track(frames, config))
        return [r for r in runs[-1] if isinstance(r, TrackedFrame)]

    modes = {
        "pipeline": tracked,
        "detector_only": lambda: list(predictor.run_detector_only(frames)),
        "detector_only_parallel": lambda: list(predictor.run_detector_only(frames, parallel=True)),
    }
    best = {mode: math.inf for mode in modes}
    cpu = {mode: math.inf for mode in modes}
    waiting: dict[str, dict[str, float]] = {}
    stats: dict[str, Any] = {}
    zoomed = 0
    for _ in range(max(1, repeat)):
        for mode, start in modes.items():
            wait = predictor._clocks_reset()
            passes = predictor.zoom_out_passes
            t0, c0 = time.perf_counter(), time.process_time()
            start()
            seconds = time.perf_counter() - t0
            if seconds < best[mode]:
                waiting[mode] = wait(seconds)
            best[mode] = min(best[mode], seconds)
            cpu[mode] = min(cpu[mode], time.process_time() - c0)
            if mode == "pipeline":
                stats = runs[-1].stats.to_dict()
                zoomed = predictor.zoom_out_passes - passes
    n = len(frames)
    fps = {mode: n / s for mode, s in best.items()}
    return {
        "frames": n,
        "size": list(frames[0].image.shape[1::-1]) if frames[0].image is not None else None,
        "pipeline_fps": round(fps["pipeline"], 2),
        "detector_only_fps": round(fps["detector_only"], 2),
        "detector_only_parallel_fps": round(fps["detector_only_parallel"], 2),
        "pipeline_vs_detector_only": round(fps["pipeline"] / fps["detector_only"], 3),
        "pipeline_vs_detector_only_parallel": round(fps["pipeline"] / fps["detector_only_parallel"], 3),
        "plates_per_frame": stats.get("plates_per_frame"),
        # The zoomed-out look's second detections (runtime/zoom_out.py): what it costs, in passes.
        "zoom_out_passes_per_frame": round(zoomed / n, 3),
        # CPU time per frame (all threads): the work each mode does, whatever else runs on the machine.
        "cpu_ms_per_frame": {mode: round(1000 * c / n, 1) for mode, c in cpu.items()},
        "reads_per_frame": stats.get("reads_per_frame"),
        "read_batches_per_frame": stats.get("read_batches_per_frame"),
        "events": stats.get("events"),
        "confirmed": stats.get("confirmed"),
        "rss_mb": round(peak_rss_mb(), 1),
        "wait_share": waiting,
        **predictor.backend.describe(),
        "threads": predictor.config.threads,
        "workers": predictor.scheduler.workers,
        "repeat": max(1, repeat),
    }
