"""The toolchain stages' usage error; every stage error derives from :class:`runtime.errors.LprError`."""

from __future__ import annotations

from runtime.errors import LprError


class UsageError(LprError):
    """A stage command cannot run as asked (exit code 2)."""
