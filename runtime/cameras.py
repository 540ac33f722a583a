"""Cameras: one video source with its zones, watch list and sinks; several in one process.

    # cameras.yaml  (python -m runtime --cameras cameras.yaml)
    cameras:
      - name: gate
        source: rtsp://user:pass@10.0.0.5/stream1
        region: br                   # optional: region rules for this camera
        zones: zones.yaml            # optional: a zones file (this camera's entry, or its default
                                     #   zones), or a list of zones written here
        watchlist: watch.csv         # optional
        events: [mqtt://broker:1883/lpr]   # optional: this camera's sinks (besides --events)
        track: {event_at: end}       # optional: TrackConfig fields
        stream: {reconnect_attempts: 1000}  # optional: StreamConfig fields
      - name: street
        source: street.mp4

Relative paths are relative to the cameras file. Every camera shares the process's one loaded
model pair (one backend session per model: a Predictor view per camera carries only its own region
rules and region memory), runs on a thread of its own and reconnects on its own; a camera lost for
good is reported and the others go on. :class:`Camera` keeps what the status endpoint and the summary show.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.config import EventsConfig, StreamConfig, TrackConfig
from runtime.errors import InputError
from runtime.events.record import EventBuilder, new_event_id, utc_now
from runtime.events.sinks import Sink
from runtime.events.watchlist import Watchlist, load_watchlist
from runtime.events.zones import CameraZones, load_zones, zones_from_dict
from runtime.frames import redact_url
from runtime.results import Event, TrackedFrame
from runtime.rules import load_rules

if TYPE_CHECKING:
    from runtime.pipeline import Predictor
    from runtime.video import TrackRun

FPS_WINDOW_S = 10.0
"""The status endpoint's FPS: frames over the last this many seconds."""
CAMERA_KEYS = ("name", "source", "region", "zones", "watchlist", "events", "track", "stream")


class CamerasError(InputError):
    """A cameras file that cannot be used (the message names the file and camera)."""


@dataclass
class CameraSpec:
    name: str
    source: str
    region: str | None = None
    zones: CameraZones | None = None
    watchlist: Watchlist | None = None
    events: list[str] = field(default_factory=list)
    track: dict[str, Any] = field(default_factory=dict)
    stream: dict[str, Any] = field(default_factory=dict)


def load_cameras(path: str | Path) -> list[CameraSpec]:
    """Read a cameras file (see the module docstring); CamerasError naming what is wrong."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CamerasError(f"{path}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise CamerasError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list) or not data["cameras"]:
        raise CamerasError(f"{path}: expected 'cameras:' with a list of cameras")
    if set(data) - {"cameras"}:
        raise CamerasError(f"{path}: unknown keys {sorted(set(data) - {'cameras'})} (known: ['cameras'])")
    base = path.parent
    specs, names = [], set()
    for n, raw in enumerate(data["cameras"], 1):
        where = f"{path}: camera {n}"
        if not isinstance(raw, dict):
            raise CamerasError(f"{where}: expected a mapping with name and source")
        unknown = sorted(set(raw) - set(CAMERA_KEYS))
        if unknown:
            raise CamerasError(f"{where}: unknown keys {unknown} (known: {sorted(CAMERA_KEYS)})")
        name = str(raw.get("name") or "").strip()
        if not name:
            raise CamerasError(f"{where}: no name")
        where = f"{path}: camera {name!r}"
        if name in names:
            raise CamerasError(f"{where}: a second camera of that name")
        names.add(name)
        source = str(raw.get("source") or "").strip()
        if not source:
            raise CamerasError(f"{where}: no source")
        from runtime.frames import URL_SCHEMES

        if (
            not source.lower().startswith(URL_SCHEMES)
            and not source.isdigit()
            and not Path(source).is_absolute()
        ):
            if (base / source).exists():
                source = str(base / source)
        zones = raw.get("zones")
        camera_zones = None
        if isinstance(zones, str):
            camera_zones = load_zones(_rel(base, zones)).for_camera(name)
        elif zones is not None:
            camera_zones = zones_from_dict({"zones": zones}, f"{where}: zones").default
        watchlist = load_watchlist(_rel(base, raw["watchlist"])) if raw.get("watchlist") else None
        events = raw.get("events") or []
        if isinstance(events, str):
            events = [events]
        if not isinstance(events, list):
            raise CamerasError(f"{where}: events must be a list of sinks")
        for key in ("track", "stream"):
            if raw.get(key) is not None and not isinstance(raw[key], dict):
                raise CamerasError(f"{where}: {key} must map setting names to values")
        try:  # the settings' own checks, now, naming the camera
            TrackConfig.from_dict(raw.get("track"))
            StreamConfig.from_dict(raw.get("stream"))
        except InputError as e:
            raise CamerasError(f"{where}: {e}") from None
        specs.append(
            CameraSpec(
                name=name,
                source=source,
                region=raw.get("region"),
                zones=camera_zones,
                watchlist=watchlist,
                events=[str(e) for e in events],
                track=dict(raw.get("track") or {}),
                stream=dict(raw.get("stream") or {}),
            )
        )
    return specs


def _rel(base: Path, value: Any) -> Path:
    p = Path(str(value))
    return p if p.is_absolute() else base / p


def predictor_view(predictor: Predictor, region: str | None) -> Predictor:
    """A camera's view of ``predictor``: its own region rules (``region``, else the predictor's), its
    own region memory (an umbrella region learns per camera which country it sees) and its own count
    of empty frames for the zoomed-out look (shared, the cameras' interleaved frames would each look
    like a new photo and all get it), sharing the backend (the loaded models) and the scheduler."""
    from runtime.rules import RegionMemory
    from runtime.zoom_out import EmptyFramePacer

    view = copy.copy(predictor)
    view.empty_pacer = EmptyFramePacer(predictor.config.zoom_out_empty_every)
    if region is not None:
        view.rules = load_rules(region)
    rules, config = view.rules, view.config
    view.region_memory = (
        RegionMemory(rules, config.region_learn, config.region_learn_share)
        if rules is not None and rules.members and config.region_learn > 0
        else None
    )
    return view


class Camera:
    """One source read, tracked and reported: its counters feed the status endpoint and the summary."""

    def __init__(
        self,
        name: str | None,
        source: str,
        predictor: Predictor,
        track_config: TrackConfig,
        stream_config: StreamConfig,
        builder: EventBuilder,
        sinks: list[Sink],
    ) -> None:
        self.name = name
        self.source = source
        self.predictor = predictor
        self.track_config = track_config
        self.stream_config = stream_config
        self.builder = builder
        self.sinks = sinks
        self.state = "starting"
        self.error: str | None = None
        self.frames = 0
        self.plate_events = 0
        self.last_event_time: str | None = None
        self.run: TrackRun | None = None
        self.stream: Any = None
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        return self.name or redact_url(self.source)

    def open(self) -> Camera:
        from runtime.streams import open_stream

        self.stream = open_stream(self.source, self.stream_config)
        return self

    def items(self, keep_images: bool = False, frames: Any = None) -> Iterator[TrackedFrame | Event]:
        """The camera's frames and events in order; every event also goes to the camera's sinks.
        ``frames``: the opened stream wrapped by the caller (e.g. to stop on a signal). Raises
        StreamLostError when the stream is gone for good (after its reconnects)."""
        from runtime.errors import StreamLostError

        if self.stream is None:
            self.open()
        self.state = "running"
        source = frames if frames is not None else self.stream
        self.run = self.predictor.track(source, self.track_config, keep_images, self.builder)
        try:
            for item in self.run:
                if isinstance(item, Event):
                    data = item.data
                    if self.name is not None:
                        data.setdefault("camera", self.name)
                    self._on_event(data)
                else:
                    now = time.monotonic()
                    with self._lock:
                        self.frames += 1
                        self._times.append(now)
                        while self._times and now - self._times[0] > FPS_WINDOW_S:
                            self._times.popleft()
                yield item
        except StreamLostError as e:
            self.state, self.error = "failed", redact_url(str(e))
            raise
        finally:
            if self.state != "failed":
                self.state = "ended"
            self.stream.close()

    def _on_event(self, data: dict[str, Any]) -> None:
        kind = data.get("event")
        if kind != "plate":  # stream events get an id too: consumers drop copies by (event_id, revision)
            data.setdefault("event_id", new_event_id())
            data.setdefault("revision", 0)
            data.setdefault("time", utc_now())
        if kind == "plate":
            self.plate_events += not data.get("update")
            self.last_event_time = data.get("time") or utc_now()
        elif kind == "stream_lost":
            self.state = "reconnecting"
        elif kind == "stream_restored":
            self.state = "running"
        for sink in self.sinks:
            sink.send(data)

    def status(self) -> dict[str, Any]:
        with self._lock:
            times = list(self._times)
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
        return {
            "source": redact_url(self.source),
            "state": self.state,
            "frames": self.frames,
            "fps": round(fps, 2) if fps is not None else None,
            "events": self.plate_events,
            "last_event_time": self.last_event_time,
            **({"error": self.error} if self.error else {}),
        }

    def summary(self) -> dict[str, Any]:
        stats = self.run.stats.to_dict() if self.run is not None else {}
        return {**stats, "state": self.state, **({"error": self.error} if self.error else {})}


def status_of(cameras: list[Camera], sinks: list[Sink], started: float) -> dict[str, Any]:
    """The status endpoint's answer (runtime/events/status.py)."""
    return {
        "ok": not any(c.state == "failed" for c in cameras),
        "uptime_s": round(time.monotonic() - started, 1),
        "cameras": {c.label: c.status() for c in cameras},
        "sinks": [s.stats() for s in sinks],
    }


def builder_for(
    spec_zones: CameraZones | None,
    watchlist: Watchlist | None,
    name: str | None,
    predictor: Predictor,
    events_config: EventsConfig,
    track_config: TrackConfig,
) -> EventBuilder:
    """The camera's event builder; a watch list compares with the camera's region look-alikes."""
    if watchlist is not None and predictor.rules is not None:
        watchlist = watchlist.with_lookalikes(predictor.rules.lookalikes)
    return EventBuilder(name, spec_zones, watchlist, events_config, track_config)


def benchmark_cameras(
    predictor: Predictor,
    frames: list[Any],
    cameras: int = 2,
    repeat: int = 2,
    config: TrackConfig | None = None,
) -> dict[str, Any]:
    """Several cameras on one model pair: ``cameras`` tracked runs of ``frames`` (decoded, in memory,
    shared) at once, each on a thread of its own as ``--cameras`` runs them, against one camera alone.

    Returns ``one_camera_fps``, ``total_fps`` (frames of all cameras per second), their ratio, and the
    peak resident memory after the single-camera runs and after the multi-camera ones (the models
    are loaded once; the decoded frames are in both)."""
    import math

    from runtime.results import peak_rss_mb

    if not frames:
        raise InputError("benchmark: the video has no frames")

    def timed(n: int) -> float:
        counts = [0] * n

        views = [predictor_view(predictor, None) for _ in range(n)]  # as --cameras makes them

        def work(k: int) -> None:
            counts[k] = sum(isinstance(r, TrackedFrame) for r in views[k].track(frames, config))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        if counts != [len(frames)] * n:
            raise RuntimeError(f"benchmark: the cameras tracked {counts} frames, not {len(frames)} each")
        return seconds

    best_one = min(timed(1) for _ in range(max(1, repeat)))
    rss_one = peak_rss_mb()
    batches_before = predictor.backend.ocr_batches()
    best_many = math.inf
    for _ in range(max(1, repeat)):
        best_many = min(best_many, timed(cameras))
    rss_many = peak_rss_mb()
    one_fps = len(frames) / best_one
    total_fps = cameras * len(frames) / best_many
    return {
        "frames": len(frames),
        "cameras": cameras,
        "one_camera_fps": round(one_fps, 2),
        "total_fps": round(total_fps, 2),
        "total_vs_one_camera": round(total_fps / one_fps, 3),
        "rss_one_camera_mb": round(rss_one, 1),
        "rss_mb": round(rss_many, 1),
        "rss_vs_one_camera": round(rss_many / rss_one, 3),
        **predictor.backend.describe(),
        **_batches_since(batches_before, predictor.backend.ocr_batches()),
        "threads": predictor.config.threads,
        "workers": predictor.scheduler.workers,
        "repeat": max(1, repeat),
    }


def _batches_since(before: dict | None, after: dict | None) -> dict[str, Any]:
    """The OCR batches of the multi-camera runs alone (a streaming backend counts over all runs)."""
    from runtime.backends.degirum_stream import batch_summary

    if before is None or after is None:
        return {}
    keys = ("batches", "crops", "batches_from_several_cameras")
    return {"ocr_batches": batch_summary(*(after[k] - before[k] for k in keys))}
