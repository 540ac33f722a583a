"""The command line's result lines (stdout): written whole, and a full disk counted, not fatal.

``print`` to a redirected stdout raises in the middle of a run when the disk fills (``> /dev/full``)
and, buffered, may later write half a line. :class:`LineWriter` writes each line with one
``os.write`` loop on the file descriptor (no Python buffer to leave a fragment in), counts lines
that could not be written with the reason, and lets the run go on; the command's summary reports
the count and the exit status says so. A reader that left (``| head``) ends the output quietly.
"""

from __future__ import annotations

import errno
import os
import sys


class LineWriter:
    def __init__(self, fd: int | None = None) -> None:
        self.fd = sys.stdout.fileno() if fd is None else fd
        self.written = 0
        self.failed = 0
        self.reason: str | None = None
        self.closed = False
        """The reader went away (EPIPE): nothing more is written, and that is not an error."""

    def line(self, text: str) -> bool:
        """Write ``text`` and a newline; False when it could not be written (counted)."""
        if self.closed:
            return False
        sys.stdout.flush()  # anything print()ed before stays in order
        # A file name that is not UTF-8 (surrogate escapes) shows its bytes as \xNN: stdout stays UTF-8.
        data = (
            (text + "\n")
            .encode("utf-8", "surrogateescape")
            .decode("utf-8", "backslashreplace")
            .encode("utf-8", "backslashreplace")
        )
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
        except BrokenPipeError:
            self.closed = True
            return False
        except OSError as e:
            if e.errno == errno.EPIPE:
                self.closed = True
                return False
            self.failed += 1
            self.reason = e.strerror or str(e)
            return False
        self.written += 1
        return True

    def summary(self) -> str | None:
        """One line for stderr when lines were lost, else None."""
        if not self.failed:
            return None
        return f"error: {self.failed} output lines could not be written to stdout ({self.reason})"
