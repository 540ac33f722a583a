"""Zones: the parts of a camera's picture whose plates count (``--zones FILE.yaml``).

    # zones.yaml
    zones:                      # for every camera not listed below (and a single --source)
      - name: gate
        points: [[0.05, 0.45], [0.95, 0.45], [0.95, 1.0], [0.05, 1.0]]
        coords: relative        # shares of the frame's width and height; "pixel" for pixels
    cameras:
      street:                   # a camera's name (--cameras); its own zones
        - {name: lane-in, points: [[0, 300], [960, 300], [960, 540], [0, 540]], coords: pixel}
        - {name: parked, points: [[600, 300], [960, 300], [960, 400]], type: exclude}

A plate counts when the centre of its box lies inside an include zone (``type: include``, the
default) and inside no exclude zone; with only exclude zones, everywhere else counts. Plates that do
not count are dropped before tracking (never read, no event). An event names its zone (the include
zone of the plate's best box). ``coords`` may be left out: then every value within [0, 1] means
relative, anything else pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import InputError

ZONE_TYPES = ("include", "exclude")


class ZoneError(InputError):
    """A zones file that cannot be used (the message names the file, camera and zone)."""


@dataclass
class Zone:
    name: str
    points: np.ndarray
    """[N, 2] x, y: pixels, or shares of the frame's width and height when ``relative``."""
    relative: bool
    kind: str = "include"

    def polygon(self, width: int, height: int) -> np.ndarray:
        return self.points * np.array([width, height], np.float64) if self.relative else self.points

    def contains(self, x: float, y: float, width: int, height: int) -> bool:
        """Whether the point (pixels) is inside (even-odd rule; on an edge counts as inside)."""
        poly = self.polygon(width, height)
        inside = False
        n = len(poly)
        for i in range(n):
            x1, y1 = poly[i]
            x2, y2 = poly[(i + 1) % n]
            if _on_segment(x, y, x1, y1, x2, y2):
                return True
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        return inside


def _on_segment(x: float, y: float, x1: float, y1: float, x2: float, y2: float) -> bool:
    cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
    if abs(cross) > 1e-9 * max(1.0, abs(x2 - x1) + abs(y2 - y1)):
        return False
    return min(x1, x2) - 1e-9 <= x <= max(x1, x2) + 1e-9 and min(y1, y2) - 1e-9 <= y <= max(y1, y2) + 1e-9


@dataclass
class CameraZones:
    """One camera's zones."""

    zones: list[Zone]

    @property
    def includes(self) -> list[Zone]:
        return [z for z in self.zones if z.kind == "include"]

    def zone_of(
        self, box: tuple[float, ...] | np.ndarray, width: int, height: int
    ) -> tuple[bool, str | None]:
        """(counts, zone name) for a plate box (x1, y1, x2, y2 in pixels)."""
        x, y = (float(box[0]) + float(box[2])) / 2, (float(box[1]) + float(box[3])) / 2
        if any(z.contains(x, y, width, height) for z in self.zones if z.kind == "exclude"):
            return False, None
        includes = self.includes
        if not includes:
            return True, None
        for zone in includes:
            if zone.contains(x, y, width, height):
                return True, zone.name
        return False, None

    def keep(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """Indexes of ``boxes`` [N, 4] that count."""
        return np.array([i for i, b in enumerate(boxes) if self.zone_of(b, width, height)[0]], np.int64)


@dataclass
class Zones:
    """A zones file: default zones and per-camera ones."""

    path: str
    default: CameraZones | None
    cameras: dict[str, CameraZones]

    def for_camera(self, camera: str | None) -> CameraZones | None:
        if camera is not None and camera in self.cameras:
            return self.cameras[camera]
        return self.default


def load_zones(path: str | Path) -> Zones:
    """Read a zones file (see the module docstring); ZoneError naming what is wrong."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ZoneError(f"{path}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise ZoneError(f"{path}: not valid YAML ({e})") from None
    return zones_from_dict(data, str(path))


def zones_from_dict(data: Any, source: str = "zones") -> Zones:
    if isinstance(data, list):  # a bare list: the default zones
        data = {"zones": data}
    if not isinstance(data, dict):
        raise ZoneError(f"{source}: expected a mapping with 'zones' and/or 'cameras'")
    unknown = sorted(set(data) - {"zones", "cameras"})
    if unknown:
        raise ZoneError(f"{source}: unknown keys {unknown} (known: ['cameras', 'zones'])")
    default = _camera_zones(data["zones"], f"{source}: zones") if data.get("zones") is not None else None
    cameras_raw = data.get("cameras") or {}
    if not isinstance(cameras_raw, dict):
        raise ZoneError(f"{source}: 'cameras' must map camera names to lists of zones")
    cameras = {str(name): _camera_zones(z, f"{source}: camera {name!r}") for name, z in cameras_raw.items()}
    if default is None and not cameras:
        raise ZoneError(f"{source}: no zones")
    return Zones(path=source, default=default, cameras=cameras)


def _camera_zones(raw: Any, where: str) -> CameraZones:
    if not isinstance(raw, list) or not raw:
        raise ZoneError(f"{where}: expected a non-empty list of zones")
    zones, names = [], set()
    for n, item in enumerate(raw, 1):
        label = f"{where} zone {n}"
        if not isinstance(item, dict):
            raise ZoneError(f"{label}: expected a mapping with name and points")
        unknown = sorted(set(item) - {"name", "points", "coords", "type"})
        if unknown:
            raise ZoneError(f"{label}: unknown keys {unknown} (known: ['coords', 'name', 'points', 'type'])")
        name = str(item.get("name") or f"zone{n}")
        label = f"{where} zone {n} ({name!r})"
        if name in names:
            raise ZoneError(f"{label}: a second zone of that name")
        names.add(name)
        try:
            points = np.asarray(item.get("points"), np.float64)
        except (TypeError, ValueError):
            raise ZoneError(f"{label}: points must be a list of [x, y] numbers") from None
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
            raise ZoneError(f"{label}: points must be at least 3 [x, y] pairs")
        if not np.isfinite(points).all() or (points < 0).any():
            raise ZoneError(f"{label}: points must be finite and not negative")
        coords = item.get("coords")
        if coords is None:
            relative = bool((points <= 1.0).all())
        elif coords in ("relative", "pixel"):
            relative = coords == "relative"
        else:
            raise ZoneError(f"{label}: coords {coords!r} is not 'relative' or 'pixel'")
        if relative and (points > 1.0).any():
            raise ZoneError(f"{label}: relative points must be within [0, 1]")
        kind = item.get("type", "include")
        if kind not in ZONE_TYPES:
            raise ZoneError(f"{label}: type {kind!r} is not 'include' or 'exclude'")
        zones.append(Zone(name=name, points=points, relative=relative, kind=kind))
    return CameraZones(zones)
