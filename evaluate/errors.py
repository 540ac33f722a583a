"""The evaluate stage's error family (each a :class:`runtime.errors.LprError`)."""

from __future__ import annotations

from runtime.errors import LprError


class EvaluateError(LprError, ValueError):
    """An evaluation that cannot run as asked: a bad report, predictions file or option."""


class BaselineUnavailable(LprError):
    """The baseline's engine is not installed here (the message says how to install it)."""


class PredictorError(LprError, RuntimeError):
    """A predictor or baseline that fails while running (every image tried first, or an engine's crash)."""
