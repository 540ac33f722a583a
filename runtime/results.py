"""What the pipeline gives back, in one module: a frame's plates (:class:`FrameResult`), a tracked
video frame (:class:`TrackedFrame`), an event (:class:`Event`) and a video run's counts
(:class:`VideoStats`). Image and video paths both produce these; nothing here runs a model.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runtime.records import Plate

FRAME_UNREAD = "the frame was not read"
"""The error of a frame that came back with neither plates nor an error (never expected)."""


@dataclass
class FrameResult:
    """What one frame gave: its plates, or the error that stopped it."""

    source: str
    frame: int
    plates: list[Plate] = field(default_factory=list)
    error: str | None = None
    image: np.ndarray | None = None
    """The frame's pixels, kept only when asked (for drawing)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` line: {"source", "frame", "plates": [...]} (+ "error" when it failed)."""
        out: dict[str, Any] = {
            "source": self.source,
            "frame": self.frame,
            "plates": [p.to_dict() for p in self.plates],
        }
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class Event:
    """Something that happened in the video: a plate (``{"event": "plate", ...}``) or a stream
    event from the source (``stream_lost``, ``stream_restored``, ...)."""

    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.data.get("event"))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


@dataclass
class TrackedFrame(FrameResult):
    """One video frame's result: its plates carry ``track_id`` and their track's voted text."""

    reads: int = 0
    """Plate crops the OCR model read for this frame."""
    events: list[Event] = field(default_factory=list)
    """Events this frame produced (yielded after it; not part of its JSON line)."""

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["reads"] = self.reads
        return out


@dataclass
class VideoStats:
    """Counts of one video run (printed at the end, kept by the benchmark)."""

    frames: int = 0
    errors: int = 0
    plates: int = 0
    """Plate detections that belong to a track, summed over frames."""
    reads: int = 0
    """Crops the OCR model read."""
    read_batches: int = 0
    """OCR calls (one batch per frame that read anything)."""
    events: int = 0
    """Plate events sent (updates not counted)."""
    confirmed: int = 0
    updates: int = 0
    """Updates sent (``event_at=confirm``: a later vote turned a confirmed text into another)."""
    unconfirmed: int = 0
    """Tracks that ended without a confirmed reading: no event unless ``report_unconfirmed``."""
    unread_tracks: int = 0
    """Tracks long enough to be plates whose crops never gave a text (no event sent)."""
    scene_cuts: int = 0
    """Frames where the picture changed completely (every track ended there)."""
    outside_zones: int = 0
    """Plate detections dropped because their centre lies outside the zones (``--zones``)."""
    seconds: float = 0.0
    source: dict[str, Any] = field(default_factory=dict)
    """The source's own counts (frames dropped or missed, outages) when it keeps any."""

    def to_dict(self) -> dict[str, Any]:
        n = max(1, self.frames)
        return {
            "frames": self.frames,
            "errors": self.errors,
            "events": self.events,
            "confirmed": self.confirmed,
            "updates": self.updates,
            "unconfirmed": self.unconfirmed,
            "unread_tracks": self.unread_tracks,
            **({"outside_zones": self.outside_zones} if self.outside_zones else {}),
            **({"scene_cuts": self.scene_cuts} if self.scene_cuts else {}),
            "plates_per_frame": round(self.plates / n, 3),
            "reads": self.reads,
            "reads_per_frame": round(self.reads / n, 3),
            "read_batches_per_frame": round(self.read_batches / n, 3),
            "fps": round(self.frames / self.seconds, 2) if self.seconds > 0 else None,
            **({"source": self.source} if self.source else {}),
        }


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB. /proc's VmHWM where there is one: ru_maxrss
    survives exec on Linux, so a process started from a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
