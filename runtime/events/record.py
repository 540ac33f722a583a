"""The plate event as users' automations get it: what the track says, plus who, where and which way.

A plate event (``{"event": "plate", ...}``) carries, besides the track's reading (``text``,
``score``, ``confirmed``, frames, ``best_box``, ``readings``; runtime/tracking.py):

* ``event_id`` - unique (a UUID); an update of the same plate keeps it, with ``"update": true``
  and ``revision`` 1, 2, ... (the first message is revision 0). ``(event_id, revision)`` identifies
  a message: a consumer that sees it twice (MQTT QoS 1 may deliver twice) drops the copy.
* ``time`` - when the event was made (UTC, ISO 8601), ``camera`` - the camera's name (or null).
* ``zone`` - the include zone of the best box (null without zones), ``direction`` -
  ``approaching`` / ``leaving`` / ``left`` / ``right`` / null (see :func:`direction_of`).
* ``watchlist`` - ``{plate, label, list, distance}`` of the closest watch-list entry, or null;
  ``denied`` - true for a deny match.
* ``crop_jpeg`` (base64 JPEG of the best frame's plate) or ``crop_path`` (a file under ``--crops``).
"""

from __future__ import annotations

import base64
import math
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from runtime.config import EventsConfig, TrackConfig
from runtime.events.watchlist import Watchlist
from runtime.events.zones import CameraZones

DIRECTIONS = ("approaching", "leaving", "left", "right")


def new_event_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def direction_of(
    first_box: tuple[float, ...] | None,
    last_box: tuple[float, ...] | None,
    min_growth: float,
    min_shift: float,
) -> str | None:
    """Which way a plate went between two boxes (x1, y1, x2, y2): its height grew by ``min_growth``
    or more - approaching; shrank as much - leaving; otherwise its centre moved ``min_shift`` plate
    widths or more sideways - left / right (in the picture); else None (it hardly moved).

    The height, not the width: a plate cut by the frame's side keeps its height."""
    if first_box is None or last_box is None:
        return None
    h0, h1 = first_box[3] - first_box[1], last_box[3] - last_box[1]
    if h0 > 0 and h1 > 0:
        growth = math.log(h1 / h0)
        if abs(growth) >= math.log1p(min_growth):
            return "approaching" if growth > 0 else "leaving"
    width = max(first_box[2] - first_box[0], last_box[2] - last_box[0], 1.0)
    shift = ((last_box[0] + last_box[2]) - (first_box[0] + first_box[2])) / 2 / width
    if abs(shift) >= min_shift:
        return "right" if shift > 0 else "left"
    return None


def crop_plate(image: np.ndarray, box: tuple[float, ...], padding: float) -> np.ndarray:
    """The plate's box with a margin of ``padding`` x its size, clipped to the image (a copy)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    px, py = (x2 - x1) * padding, (y2 - y1) * padding
    ix1, iy1 = max(0, int(math.floor(x1 - px))), max(0, int(math.floor(y1 - py)))
    ix2, iy2 = min(w, int(math.ceil(x2 + px))), min(h, int(math.ceil(y2 + py)))
    return image[iy1 : max(iy1 + 1, iy2), ix1 : max(ix1 + 1, ix2)].copy()


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("the plate crop cannot be encoded as JPEG")
    return data.tobytes()


class EventBuilder:
    """Completes a camera's plate events: id, time, camera, zone, direction, watch list, crop."""

    def __init__(
        self,
        camera: str | None = None,
        zones: CameraZones | None = None,
        watchlist: Watchlist | None = None,
        config: EventsConfig | None = None,
        track_config: TrackConfig | None = None,
    ) -> None:
        self.camera = camera
        self.zones = zones
        self.watchlist = watchlist
        self.config = config or EventsConfig()
        self.track_config = track_config or TrackConfig()

    @property
    def wants_crops(self) -> bool:
        return self.config.crop != "none"

    def plate_event(
        self,
        data: dict[str, Any],
        *,
        event_id: str,
        revision: int,
        first_box: tuple[float, ...] | None,
        last_box: tuple[float, ...] | None,
        size: tuple[int, int] | None,
        crop: np.ndarray | None,
    ) -> dict[str, Any]:
        """``data`` (a track's event) with the fields above; ``size`` is the frame's (width, height)."""
        out = dict(data)
        out["event_id"] = event_id
        out["revision"] = revision
        out["update"] = revision > 0
        out["time"] = utc_now()
        out["camera"] = self.camera
        zone = None
        if self.zones is not None and size is not None and out.get("best_box"):
            zone = self.zones.zone_of(out["best_box"], *size)[1]
        out["zone"] = zone
        out["direction"] = direction_of(
            first_box, last_box, self.track_config.direction_min_growth, self.track_config.direction_min_shift
        )
        match = self.watchlist.match(out.get("text", "")) if self.watchlist is not None else None
        out["watchlist"] = match
        out["denied"] = bool(match and match["list"] == "deny")
        if crop is not None and crop.size and self.wants_crops:
            jpeg = encode_jpeg(crop, self.config.jpeg_quality)
            if self.config.crop == "file":
                folder = Path(self.config.crops_dir)
                if self.camera:
                    folder = folder / _safe_name(self.camera)
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{event_id}.jpg"
                path.write_bytes(jpeg)  # an update overwrites: the file is the event's best crop
                out["crop_path"] = str(path)
            else:
                out["crop_jpeg"] = base64.b64encode(jpeg).decode("ascii")
        return out


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "camera"
