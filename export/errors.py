"""The export stage's error family (each a :class:`runtime.errors.LprError`)."""

from __future__ import annotations

from runtime.errors import LprError


class ExportError(LprError, ValueError):
    """The input cannot be exported (or checked) as asked; the message names the file."""


class ParityError(LprError, RuntimeError):
    """The ONNX model does not reproduce its PyTorch weights within tolerance."""
