"""The train stage's error family (each a :class:`runtime.errors.LprError`)."""

from __future__ import annotations

from runtime.errors import LprError


class TrainError(LprError, RuntimeError):
    """Training cannot start as configured (bad weights, nothing to resume)."""


class DataMixError(LprError, ValueError):
    """The training data cannot be assembled as configured."""
