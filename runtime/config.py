"""The runtime's settings: thresholds, reading order and threading, with their defaults.

The runtime has no Hydra (it is deployed alone): this dataclass is its configuration. The CLI sets
fields with flags; the toolchain (evaluate/) builds one from its Hydra config with
``PipelineConfig.from_dict(cfg.runtime)``. Everything a model says about itself (input size,
letterbox fill, class names, crop padding) comes from the model's metadata, not from here.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from runtime.errors import InputError


class _Settings:
    """``to_dict`` / ``from_dict`` shared by the runtime's settings dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None):
        """From a mapping (e.g. a Hydra node); unknown keys are an error naming them."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            what = re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()  # PipelineConfig -> pipeline config
            raise InputError(f"{what}: unknown keys {unknown} (known: {sorted(known)})")
        return cls(**values)


@dataclass
class PipelineConfig(_Settings):
    # Plate detector
    det_conf: float = 0.25
    """Minimum plate score."""
    det_iou: float = 0.7
    """NMS IoU between plates (Ultralytics' default)."""
    max_plates: int = 50
    det_contained: float = 0.5
    """A plate box with at least this share of its area inside a more confident plate box is
    dropped: the shifted boxes along a large plate, a badge on its frame (NMS keeps them: their
    IoU is low). 0 = keep them (runtime.postprocess.suppress_contained; docs/runtime.md)."""

    # Character detector (OCR)
    ocr_conf: float = 0.25
    """Minimum character score."""
    ocr_iou: float = 0.5
    """Class-agnostic NMS IoU between characters: one box per place, other classes become alternatives."""
    max_chars: int = 24
    weak_char_score: float = 0.1
    """Characters scoring between this and ``ocr_conf`` are kept aside: region rules may insert one
    where the reading is a character short of every format (0 = never)."""
    alt_min_score: float = 0.05
    """A class is offered as an alternative for a character when it scores at least this."""
    max_alternatives: int = 3
    top_n: int = 5
    """Candidate texts reported per plate."""

    edge_char_score: float = 0.0
    """Off by default (0). When on (0.6 is the measured setting), an end character scoring below
    this ..."""
    edge_char_ratio: float = 0.6
    """... and below this share of the median score of the others is left out of the text: a
    sticker, tab or county number beside the number (runtime.reading.drop_weak_edge). The plate's
    ``raw_text`` keeps the model's reading, and region rules may put the character back. It reads
    US plates better and Brazilian ones worse (docs/runtime.md, "Weak end characters")."""
    edge_char_min_height: float = 16.0
    """Only on plates whose characters are at least this tall in the image (px)."""

    # Reading order
    dup_overlap: float = 0.7
    """Two characters whose intersection covers this much of the smaller one are one character."""
    line_overlap: float = 0.5
    """A character joins a line when their vertical overlap covers this much of the shorter height."""
    max_lines: int = 2
    """Plates have one or two lines; more groups (noise) are merged into the nearest line."""
    line_max_slope: float = 1.0
    """Steepest tilt (dy/dx; 1 = 45 degrees) a line is followed at across a gap between groups."""

    # Region rules (optional): a name under runtime/regions/ or a YAML file.
    region: str | None = None
    region_learn: int = 20
    """With an umbrella region (us, eu, auto): after this many plates fitted a format, the member
    fitting the most of them (at least ``region_learn_share``) is tried first (0 = never; see
    runtime.rules.RegionMemory)."""
    region_learn_share: float = 0.8

    # Second look (runtime/second_look.py): small or doubtful plates re-read from other cuts, voted
    second_look: bool = False
    """Off by default: measured on the benchmark before it may be on (docs/swap_scenes.md)."""
    second_look_width: float = 64.0
    """Plates narrower than this (image px) get a second look ..."""
    second_look_score: float = 0.5
    """... and so do plates whose reading scores below this (or reads nothing)."""
    second_look_crops: int = 2
    """Extra cuts per hard plate: an upscaled copy first, then grown, shrunk, shifted cuts."""
    second_look_jitter: float = 0.06
    """How far the extra cuts move each side, as a share of the plate's size."""

    # Zoomed-out look (runtime/zoom_out.py): frames that may hold a large plate detected again, shrunk
    zoom_out: bool = True
    """On by default (docs/runtime.md, "Large plates: the zoomed-out look", has what it costs)."""
    zoom_out_trigger: float = 200.0
    """A frame gets the second pass when the first found no plate, or one at least this wide in
    the detector's input (px) ..."""
    zoom_out_factor: float = 2.0
    """... shrunk this many times on a canvas of the first pass's input size ..."""
    zoom_out_min_width: float = 160.0
    """... and of what it finds, plates at least this wide (first-pass input px) are taken ..."""
    zoom_out_overlap: float = 0.5
    """... in place of the first-pass boxes they overlap this much (IoU, or the first box's share
    inside them)."""
    zoom_out_empty_every: int = 10
    """In a video or stream, of the frames whose first pass found no plate, the first after a plate
    and then every N-th get the pass (1 = all); a still photo always does. Bounds what an empty
    road costs: 1/N of a detection more per frame."""

    # Threads
    threads: int = 1
    """ONNX Runtime intra-op threads per session. On a small CPU several frames in flight use the
    cores better than one frame split across threads (see docs/benchmarks.md)."""
    workers: int = 0
    """Frames detected at once (ONNX backend); 0 = one per CPU core."""
    queue_depth: int = 4
    """Frames in flight beyond the workers (bounded: memory stays flat on long sources)."""
    max_image_pixels: int = 100_000_000
    """An image file whose header announces more pixels than this is an error for that image, not
    decoded (a small PNG can decode to tens of gigabytes); 0 = no limit but OpenCV's own."""

    # OCR batching across frames (streaming backends: degirum)
    ocr_batch: int = 0
    """Plate crops sent to the OCR model back to back, from the frames in flight, so a device that
    switches between the two models runs them before switching; 0 = the batch the OCR model was
    built for (its zoo JSON's ``EagerBatchSize``; 1 when it says nothing), 1 = each crop at once."""
    ocr_batch_wait_ms: float = 20.0
    """Latency bound: a crop waits at most this long for its batch to fill."""

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "det_conf",
            "det_iou",
            "det_contained",
            "ocr_conf",
            "weak_char_score",
            "ocr_iou",
            "alt_min_score",
            "region_learn_share",
            "dup_overlap",
            "line_overlap",
            "second_look_score",
            "second_look_jitter",
            "edge_char_score",
            "edge_char_ratio",
            "zoom_out_overlap",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name}={value} is not in [0, 1]")
        for name in (
            "max_plates",
            "max_chars",
            "max_lines",
            "threads",
            "queue_depth",
            "top_n",
            "zoom_out_empty_every",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be at least 1")
        if not 0.0 <= self.line_max_slope <= 10.0:
            problems.append(f"line_max_slope={self.line_max_slope} is not in [0, 10]")
        if self.second_look_crops < 0 or self.second_look_width < 0 or self.edge_char_min_height < 0:
            problems.append(
                "second_look_crops, second_look_width and edge_char_min_height must not be negative"
            )
        if (
            self.max_alternatives < 0
            or self.workers < 0
            or self.region_learn < 0
            or self.max_image_pixels < 0
            or self.ocr_batch < 0
        ):
            problems.append(
                "max_alternatives, workers, region_learn, max_image_pixels and ocr_batch must not be negative"
            )
        if not self.zoom_out_factor >= 1.0:
            problems.append(f"zoom_out_factor={self.zoom_out_factor} must be at least 1")
        if self.zoom_out_trigger < 0 or self.zoom_out_min_width < 0:
            problems.append("zoom_out_trigger and zoom_out_min_width must not be negative")
        if not self.ocr_batch_wait_ms >= 0:
            problems.append(f"ocr_batch_wait_ms={self.ocr_batch_wait_ms} must not be negative")
        if problems:
            raise InputError("pipeline config: " + "; ".join(problems))

    @property
    def ocr_decode_conf(self) -> float:
        """The threshold the OCR model's output is decoded at (weak characters included)."""
        return min(self.ocr_conf, self.weak_char_score) if self.weak_char_score > 0 else self.ocr_conf

    @property
    def detect_workers(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)


@dataclass
class TrackConfig(_Settings):
    """Video: how plates are followed across frames, when they are read, and when a reading counts.

    Defaults suit a camera at 25-30 FPS watching traffic: a plate stays in view for a second or
    more, so a handful of readings per plate is plenty and most frames need no OCR at all.
    """

    # Association (runtime/tracking.py)
    match_iou: float = 0.2
    """A detection continues a track when it overlaps the track's predicted box this much."""
    max_centre_shift: float = 1.0
    """... or, without overlap, when its centre is this near the prediction, counted in plate widths
    across and plate heights up and down (a plate does not jump lanes)."""
    gate_growth: float = 0.15
    """The centre gate widens by this many plate widths per frame the track went unseen ..."""
    max_gate: float = 4.0
    """... up to this many plate widths. A track predicted to have left the frame ends."""
    max_height_ratio: float = 1.5
    """A detection whose height differs from the track's by more than this factor is another plate."""
    partial_width: float = 0.85
    """A box narrower than this share of the plate's width (its height times the track's width /
    height ratio) shows part of the plate - sliding behind a pillar, cut by the frame edge: it moves
    the track but changes neither its speed nor its shape, since the centre of a part moves slower
    than the plate."""
    aspect_smoothing: float = 0.2
    """Weight of the newest whole box in the track's width / height ratio: slow, so a plate sliding
    behind something is caught within a frame or two rather than taken for a narrower plate."""
    high_score: float = 0.5
    """Detections scoring at least this start tracks; weaker ones only continue tracks seen in the
    previous frame, by overlap (ByteTrack's two stages: a plate fading in and out of confidence
    keeps its track, and a weak box elsewhere does not revive a lost one)."""
    duplicate_iou: float = 0.5
    """An unmatched detection overlapping a tracked plate's box this much is a second box on that
    plate, not a new plate."""
    max_missed: int = 30
    """Frames a track survives without a detection (a pole or a car in front for a moment)."""
    min_hits: int = 3
    """Frames with a detection before a track counts as a plate (shorter ones are flicker)."""
    velocity_smoothing: float = 0.5
    """Weight of the newest motion in the track's velocity (1 = last step only)."""

    # OCR on demand
    confirm_readings: int = 3
    """Readings of the voted length needed before a track's text is confirmed."""
    confirm_score: float = 0.6
    """... and the least-agreed character's share of the vote must reach this (and, with region
    rules, the voted text must match one of their patterns)."""
    read_every_unconfirmed: int = 2
    """An unconfirmed track with ``confirm_readings`` attempts is re-read after this many frames ..."""
    unconfirmed_backoff: float = 1.5
    """... and each further wait grows by this factor (up to ``read_every_confirmed``): a plate that
    will not agree with itself gains little from a reading every other frame, and a busy road
    would pay for it."""
    read_every_confirmed: int = 30
    """A confirmed track is re-read every this many frames (a wrong early consensus can still turn)."""
    max_reads_per_frame: int = 4
    """At most this many crops are read per frame; the tracks with the fewest readings go first."""
    max_readings: int = 40
    """Readings kept per track (the oldest go first); bounds memory on a parked car."""
    edge_margin: float = 0.02
    """Plates whose box comes this close to the frame edge (a fraction of the frame's width, or
    height, so 19 px across a 960 px frame) are not read: a plate cut by the edge misreads, and
    the detector's box often stops a few pixels short of the edge. A track that stays at the edge
    is read after ``edge_patience`` frames all the same."""
    edge_patience: int = 10
    event_at: str = "confirm"
    """When a plate's event is sent: "confirm" (as soon as its reading is confirmed, then an update
    with the same ``event_id`` and ``"update": true`` when a later vote changes the text) or "end"
    (when the track ends, with its final vote)."""
    scene_cut: float = 0.3
    """A frame whose small grey thumbnail differs from the previous frame's by this much on average
    (a share of full scale) is a scene cut - an edited video, a camera switched or moved, a stream
    back after an outage - and every track ends there: the next plate in the same place is another
    car. 0 turns it off."""
    report_unconfirmed: bool = False
    """Send events for tracks that end without a confirmed reading too (``"confirmed": false``).
    Off by default: such tracks are mostly badges, grilles and stickers; the summary counts them."""
    min_text_length: int = 4
    """A reading shorter than this never confirms (without region rules; with them, the shortest
    text their patterns allow)."""

    # Direction of travel (runtime/events/record.py), from the track's first and last boxes
    direction_min_growth: float = 0.15
    """The plate's height grew (shrank) by this share: "approaching" ("leaving")."""
    direction_min_shift: float = 0.5
    """... otherwise its centre moved this many plate widths sideways: "left" or "right"; less
    motion than both: no direction (a parked car)."""

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "match_iou",
            "high_score",
            "confirm_score",
            "velocity_smoothing",
            "duplicate_iou",
            "edge_margin",
            "scene_cut",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name}={getattr(self, name)} is not in [0, 1]")
        for name in ("max_missed", "max_centre_shift", "gate_growth", "max_gate"):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} must not be negative")
        for name in (
            "min_hits",
            "confirm_readings",
            "read_every_unconfirmed",
            "read_every_confirmed",
            "max_reads_per_frame",
            "max_readings",
            "edge_patience",
            "min_text_length",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be at least 1")
        if self.unconfirmed_backoff < 1:
            problems.append(f"unconfirmed_backoff={self.unconfirmed_backoff} must be at least 1")
        if self.max_height_ratio < 1:
            problems.append(f"max_height_ratio={self.max_height_ratio} must be at least 1")
        if not isinstance(self.report_unconfirmed, bool):
            problems.append(f"report_unconfirmed={self.report_unconfirmed!r} must be true or false")
        for name in ("direction_min_growth", "direction_min_shift"):
            if not getattr(self, name) > 0:
                problems.append(f"{name}={getattr(self, name)} must be positive")
        if self.event_at not in ("confirm", "end"):
            problems.append(f"event_at={self.event_at!r} is not 'confirm' or 'end'")
        if problems:
            raise InputError("track config: " + "; ".join(problems))


STREAM_DROP_MODES = ("auto", "always", "never")
RTSP_TRANSPORTS = ("tcp", "udp", "auto")


@dataclass
class StreamConfig(_Settings):
    """How video files, cameras and network streams are read (runtime/streams.py)."""

    reconnect_attempts: int = 8
    """Reopen attempts after a live stream is lost; then the source fails (StreamLostError)."""
    backoff_initial_s: float = 0.5
    """Wait before the first reopen attempt; doubled after each failed one ..."""
    backoff_max_s: float = 8.0
    """... up to this."""
    open_timeout_s: float = 10.0
    """A network stream that does not open within this fails the attempt (FFmpeg's open timeout)."""
    read_timeout_s: float = 10.0
    """A read that stalls this long counts as a lost stream (FFmpeg's read timeout), never a hang."""
    drop: str = "auto"
    """auto: newest frame wins for live sources (and realtime files), every frame of a file in order;
    always: newest wins for every source; never: every frame, the reader waits for the consumer."""
    realtime: bool = False
    """Pace a video file at its frame rate like a camera, so dropping applies (benchmarks, simulation)."""
    max_bad_frames: int = 250
    """Video files: frames that cannot be decoded are skipped (each reported by number, the rest
    read) up to this many in a row; after that the file counts as ended early (stream_truncated)."""
    rtsp_transport: str = "tcp"
    """RTP over the RTSP connection (tcp: survives NAT and lossy Wi-Fi), udp, or auto (FFmpeg's choice).
    Ignored when OPENCV_FFMPEG_CAPTURE_OPTIONS is set in the environment."""

    def __post_init__(self) -> None:
        problems = []
        if self.max_bad_frames < 0:
            problems.append(f"max_bad_frames={self.max_bad_frames} must not be negative")
        if self.reconnect_attempts < 0:
            problems.append(f"reconnect_attempts={self.reconnect_attempts} must not be negative")
        for name in ("backoff_initial_s", "backoff_max_s", "open_timeout_s", "read_timeout_s"):
            if not getattr(self, name) > 0:
                problems.append(f"{name}={getattr(self, name)} must be positive")
        if self.backoff_max_s < self.backoff_initial_s:
            problems.append(
                f"backoff_max_s={self.backoff_max_s} is below backoff_initial_s={self.backoff_initial_s}"
            )
        if self.drop not in STREAM_DROP_MODES:
            problems.append(f"drop={self.drop!r} is not one of {list(STREAM_DROP_MODES)}")
        if self.rtsp_transport not in RTSP_TRANSPORTS:
            problems.append(f"rtsp_transport={self.rtsp_transport!r} is not one of {list(RTSP_TRANSPORTS)}")
        if not isinstance(self.realtime, bool):
            problems.append(f"realtime={self.realtime!r} must be true or false")
        if problems:
            raise InputError("stream config: " + "; ".join(problems))


CROP_MODES = ("base64", "file", "none")


@dataclass
class EventsConfig(_Settings):
    """How plate events are built and delivered to their sinks (runtime/events/)."""

    queue_dir: str = "~/.local/state/lpr/queues"
    """Where MQTT and webhook sinks keep the events not yet delivered (one SQLite file per sink):
    a broker or receiver that is down loses nothing, and a restart delivers what was left."""
    queue_max_events: int = 10000
    """Events kept per sink during an outage; beyond this the oldest go, counted and reported."""
    backoff_initial_s: float = 0.5
    """Wait before retrying a failed delivery (or reconnecting); doubled after each failure ..."""
    backoff_max_s: float = 30.0
    """... up to this."""
    http_timeout_s: float = 5.0
    """A webhook POST that has not answered within this failed (and is retried)."""
    publish_timeout_s: float = 10.0
    """An MQTT publish the broker has not acknowledged (QoS 1 PUBACK) within this is sent again."""
    mqtt_keepalive_s: int = 30
    """MQTT keep-alive: the broker publishes the last will ("offline") when it hears nothing for 1.5x this."""
    mqtt_client_id: str = ""
    """MQTT client id; empty: ``lpr-<host name>-<process id>``."""
    drain_timeout_s: float = 10.0
    """At the end of a run, wait this long for the queues to empty; what is left stays on disk."""
    crop: str = "base64"
    """The best frame's plate crop in the event: "base64" (JPEG in ``crop_jpeg``), "file" (a JPEG
    under the crops folder, its path in ``crop_path``; set by ``--crops DIR``) or "none"."""
    crops_dir: str = ""
    """Folder for crop="file"."""
    crop_padding: float = 0.15
    """Margin around the plate box in the crop, as a share of the box's width and height."""
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        problems = []
        for name in ("queue_max_events", "mqtt_keepalive_s"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be at least 1")
        for name in ("backoff_initial_s", "backoff_max_s", "http_timeout_s", "publish_timeout_s"):
            if not getattr(self, name) > 0:
                problems.append(f"{name}={getattr(self, name)} must be positive")
        if self.backoff_max_s < self.backoff_initial_s:
            problems.append(
                f"backoff_max_s={self.backoff_max_s} is below backoff_initial_s={self.backoff_initial_s}"
            )
        if self.drain_timeout_s < 0 or self.crop_padding < 0:
            problems.append("drain_timeout_s and crop_padding must not be negative")
        if self.crop is None:  # `--delivery crop=none` parses as None
            self.crop = "none"
        if self.crop not in CROP_MODES:
            problems.append(f"crop={self.crop!r} is not one of {list(CROP_MODES)}")
        if self.crop == "file" and not self.crops_dir:
            problems.append('crop="file" needs crops_dir (--crops DIR)')
        if not 1 <= self.jpeg_quality <= 100:
            problems.append(f"jpeg_quality={self.jpeg_quality} is not in [1, 100]")
        if problems:
            raise InputError("events config: " + "; ".join(problems))
