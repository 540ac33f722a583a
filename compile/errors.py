"""The compile stage's error family: :class:`CompileError` (a :class:`runtime.errors.LprError`).

``run_dfc.py`` (compile/dfc_runner.py) travels alone to the DFC machine and keeps its own error.
"""

from __future__ import annotations

from runtime.errors import LprError


class CompileError(LprError, ValueError):
    """A model or option the compile stage cannot turn into a bundle (the message says why)."""


class BundleError(CompileError):
    """The model or the bundle does not check out."""


class CalibrationError(CompileError):
    """Not enough usable calibration images."""


class NmsConfigError(CompileError):
    """The NMS config does not match the model."""


class GraphError(CompileError):
    """The ONNX graph is not an Ultralytics YOLOv8 detector this stage can cut for the DFC."""


class ModelScriptError(CompileError):
    """A model script line is not a known command with sensible arguments."""
