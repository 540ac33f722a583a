"""Whether DeGirum's PySDK can run our ONNX models here (its ONNX/CPU agent)."""

from __future__ import annotations


def degirum_unavailable() -> str | None:
    """Why the DeGirum tests cannot run on this machine, or None."""
    try:
        import degirum as dg
    except ImportError:
        return "degirum is not installed"
    if "ONNX/CPU" not in dg.get_supported_devices("@local"):
        return "DeGirum's ONNX/CPU agent is not enabled (run: python -m runtime.degirum_setup)"
    return None
