"""A bounded first-in first-out queue of events on disk (SQLite, from the standard library).

Each network sink keeps its undelivered events here: pushed when the event is made, removed only
once the broker or receiver has acknowledged it. A broker that is down, a receiver that fails, a
process that is stopped or crashes: the events wait on disk and go out, in order, when delivery
works again. Bounded: beyond ``max_events`` the oldest are dropped, counted and reported (an
outage of days must not fill the device's disk).

One process at a time owns a queue file (an exclusive lock beside it): two processes delivering
the same rows would send every event twice.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from pathlib import Path

from runtime.errors import LprError


class QueueError(LprError, OSError):
    """A queue file cannot be opened or is owned by another process (the message names it)."""


class DiskQueue:
    """Events (JSON text) in the order pushed; ``peek`` the oldest, ``ack`` it once delivered."""

    def __init__(self, path: str | Path, max_events: int) -> None:
        self.path = Path(path)
        self.max_events = max_events
        self.dropped = 0
        """Events dropped because the queue was full (this run)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "w")
        except OSError as e:
            raise QueueError(f"event queue {self.path}: {e.strerror or e}") from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise QueueError(
                f"event queue {self.path} is in use by another process (give each process its own queue_dir)"
            ) from None
        try:
            # isolation_level=None: every statement commits at once; FULL: on disk before we return.
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS events "
                "(seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)"
            )
        except sqlite3.Error as e:
            self._lock_file.close()
            raise QueueError(f"event queue {self.path}: {e}") from None
        self._cond = threading.Condition(threading.RLock())
        self._closed = False
        self._left = 0

    def put(self, body: str) -> int:
        """Append ``body``; returns how many old events had to go to make room (0 normally)."""
        with self._cond:
            self._db.execute("INSERT INTO events (body) VALUES (?)", (body,))
            excess = len(self) - self.max_events
            if excess > 0:
                self._db.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)", (excess,)
                )
                self.dropped += excess
            self._cond.notify_all()
            return max(0, excess)

    def peek(self, timeout: float | None = None) -> tuple[int, str] | None:
        """The oldest event (sequence number, body), waiting up to ``timeout`` s for one; None if none."""
        with self._cond:
            row = self._oldest()
            if row is None and timeout:
                self._cond.wait(timeout)
                row = self._oldest()
            return row

    def ack(self, seq: int) -> None:
        """The event ``seq`` was delivered: remove it."""
        with self._cond:
            self._db.execute("DELETE FROM events WHERE seq = ?", (seq,))
            self._cond.notify_all()

    def wait_empty(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every event to be delivered; whether the queue is empty."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self) == 0, timeout)

    def __len__(self) -> int:
        with self._cond:  # a re-entrant lock: one connection, used by one thread at a time
            if self._closed:
                return self._left
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def _oldest(self) -> tuple[int, str] | None:
        row = self._db.execute("SELECT seq, body FROM events ORDER BY seq LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._left = len(self)  # still reported (the run's summary) once closed
            self._closed = True
            self._db.close()
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    def __repr__(self) -> str:
        return f"DiskQueue({os.fspath(self.path)!r}, max_events={self.max_events})"
