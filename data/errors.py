"""The data stage's error family (a :class:`runtime.errors.LprError`)."""

from __future__ import annotations

from runtime.errors import LprError


class DataError(LprError, ValueError):
    """A manifest, dataset, style or synthetic set that cannot be used as given (the message names it)."""
