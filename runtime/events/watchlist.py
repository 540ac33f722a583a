"""Watch lists: plates to recognise, allowed or denied (``--watchlist FILE``, CSV or YAML).

CSV, a header line naming the columns, ``plate`` required, ``label`` and ``list`` (``allow`` or
``deny``; ``allow`` when left out) optional::

    plate,label,list
    ABC1D23,Ana's car,allow
    XYZ9876,reported stolen,deny

YAML::

    max_distance: 1          # optional (default 1)
    lookalike_cost: 0.5      # optional: O/0, B/8, ... swaps cost this much instead of 1
    allow: [ABC1D23, {plate: DEF4567, label: visitor}]
    deny:
      - {plate: XYZ9876, label: reported stolen}

A read text matches an entry when their edit distance (insertions, deletions, substitutions; a
swap between look-alike characters - the region rules' table, or O/0 I/1 B/8 S/5 Z/2 G/6 - costs
``lookalike_cost``) is at most ``max_distance``. Plates are compared in upper case without spaces,
dashes or dots. The closest entry wins; on a tie, ``deny`` before ``allow`` (an alert must not be
hidden by a similar allowed plate). The event carries ``watchlist: {plate, label, list, distance}``
and ``"denied": true`` for a deny match.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.errors import InputError
from runtime.rules import DEFAULT_LOOKALIKES

LISTS = ("allow", "deny")


class WatchlistError(InputError):
    """A watch list that cannot be used (the message names the file and line or entry)."""


def normalize_plate(text: str) -> str:
    return re.sub(r"[\s\-.·]", "", str(text)).upper()


@dataclass
class Entry:
    plate: str
    label: str = ""
    list: str = "allow"


@dataclass
class Watchlist:
    entries: list[Entry]
    max_distance: float = 1.0
    lookalike_cost: float = 0.5
    lookalikes: list[tuple[str, str]] = field(default_factory=lambda: list(DEFAULT_LOOKALIKES))
    source: str = "watchlist"

    def __post_init__(self) -> None:
        if self.max_distance < 0:
            raise WatchlistError(f"{self.source}: max_distance {self.max_distance} must not be negative")
        if not 0 <= self.lookalike_cost <= 1:
            raise WatchlistError(f"{self.source}: lookalike_cost {self.lookalike_cost} is not in [0, 1]")
        self._pairs = {frozenset(p) for p in self.lookalikes}

    def with_lookalikes(self, pairs: Iterable[tuple[str, str]]) -> Watchlist:
        """The same list using another look-alike table (the camera's region rules)."""
        return Watchlist(self.entries, self.max_distance, self.lookalike_cost, list(pairs), self.source)

    def distance(self, a: str, b: str) -> float:
        """Weighted Levenshtein distance (look-alike swaps cost ``lookalike_cost``)."""
        prev = [float(j) for j in range(len(b) + 1)]
        for i, ca in enumerate(a, 1):
            row = [float(i)]
            for j, cb in enumerate(b, 1):
                if ca == cb:
                    sub = 0.0
                elif frozenset((ca, cb)) in self._pairs:
                    sub = self.lookalike_cost
                else:
                    sub = 1.0
                row.append(min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + sub))
            prev = row
        return prev[-1]

    def match(self, text: str) -> dict[str, Any] | None:
        """The closest entry within ``max_distance`` of ``text`` as the event's ``watchlist`` field."""
        read = normalize_plate(text)
        if not read:
            return None
        best: tuple[float, int, Entry] | None = None
        for entry in self.entries:
            if abs(len(entry.plate) - len(read)) > self.max_distance:
                continue  # cheaper than the distance, and never within it
            d = self.distance(read, entry.plate)
            if d <= self.max_distance + 1e-9:
                key = (d, 0 if entry.list == "deny" else 1, entry)
                if best is None or key[:2] < best[:2]:
                    best = key
        if best is None:
            return None
        d, _, entry = best
        return {"plate": entry.plate, "label": entry.label, "list": entry.list, "distance": round(d, 3)}


def load_watchlist(path: str | Path) -> Watchlist:
    """Read a CSV or YAML watch list (by suffix; see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise WatchlistError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise WatchlistError(f"{path}: not UTF-8 text") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        return _from_yaml(text, str(path))
    if path.suffix.lower() in (".csv", ".txt"):
        return _from_csv(text, str(path))
    raise WatchlistError(f"{path}: expected a .csv or .yaml watch list")


def _entry(plate: Any, label: Any, which: Any, where: str) -> Entry:
    norm = normalize_plate(plate if plate is not None else "")
    if not norm:
        raise WatchlistError(f"{where}: no plate")
    if not re.fullmatch(r"[A-Z0-9]+", norm):
        raise WatchlistError(f"{where}: plate {plate!r} has characters a plate cannot have")
    which = str(which or "allow").strip().lower()
    if which not in LISTS:
        raise WatchlistError(f"{where}: list {which!r} is not 'allow' or 'deny'")
    return Entry(plate=norm, label=str(label or "").strip(), list=which)


def _from_csv(text: str, source: str) -> Watchlist:
    rows = list(csv.reader(text.splitlines()))
    while rows and not any(c.strip() for c in rows[0]):
        rows.pop(0)
    if not rows:
        raise WatchlistError(f"{source}: empty")
    header = [c.strip().lower() for c in rows[0]]
    if "plate" not in header:
        raise WatchlistError(f"{source}: line 1: the header must name a 'plate' column (plate,label,list)")
    unknown = sorted(set(header) - {"plate", "label", "list"} - {""})
    if unknown:
        raise WatchlistError(f"{source}: line 1: unknown columns {unknown} (known: plate, label, list)")
    col: dict[str, int] = {name: header.index(name) for name in ("plate", "label", "list") if name in header}
    entries = []
    for n, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) > len(header):
            raise WatchlistError(f"{source}: line {n}: {len(row)} fields, the header has {len(header)}")

        def get(name: str, row: list[str] = row) -> str | None:
            i = col.get(name)
            return row[i] if i is not None and i < len(row) else None

        entries.append(_entry(get("plate"), get("label"), get("list"), f"{source}: line {n}"))
    return _checked(Watchlist(entries, source=source))


def _from_yaml(text: str, source: str) -> Watchlist:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise WatchlistError(f"{source}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise WatchlistError(f"{source}: expected a mapping with allow and/or deny lists")
    unknown = sorted(set(data) - {"allow", "deny", "max_distance", "lookalike_cost"})
    if unknown:
        raise WatchlistError(
            f"{source}: unknown keys {unknown} (known: allow, deny, max_distance, lookalike_cost)"
        )
    entries = []
    for which in LISTS:
        items = data.get(which) or []
        if not isinstance(items, list):
            raise WatchlistError(f"{source}: {which} must be a list")
        for n, item in enumerate(items, 1):
            where = f"{source}: {which} entry {n}"
            if isinstance(item, dict):
                extra = sorted(set(item) - {"plate", "label"})
                if extra:
                    raise WatchlistError(f"{where}: unknown keys {extra} (known: plate, label)")
                entries.append(_entry(item.get("plate"), item.get("label"), which, where))
            else:
                entries.append(_entry(item, "", which, where))
    try:
        max_distance = float(data.get("max_distance", 1))
        lookalike_cost = float(data.get("lookalike_cost", 0.5))
    except (TypeError, ValueError):
        raise WatchlistError(f"{source}: max_distance and lookalike_cost must be numbers") from None
    return _checked(Watchlist(entries, max_distance, lookalike_cost, source=source))


def _checked(watchlist: Watchlist) -> Watchlist:
    if not watchlist.entries:
        raise WatchlistError(f"{watchlist.source}: no plates")
    seen: dict[str, str] = {}
    for e in watchlist.entries:
        if seen.get(e.plate, e.list) != e.list:
            raise WatchlistError(f"{watchlist.source}: {e.plate} is on both the allow and the deny list")
        seen[e.plate] = e.list
    return watchlist
