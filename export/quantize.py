"""The int8 proxy: static QDQ quantisation with ONNX Runtime, a stand-in for the accelerator's int8.

Weights per channel (int8), activations per tensor (uint8), calibrated on images letterboxed
exactly like the model's inputs. As on Hailo, where the graph ends at the six head convolutions
and the box decoding runs on the host, everything after those convolutions (DFL, anchor decoding,
sigmoid, the concat of pixel boxes with 0..1 scores) stays float: one int8 scale cannot hold
both box coordinates in pixels and class scores.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from export.errors import ExportError

QDQ_MIN_OPSET = 13
HEAD_CONV = re.compile(r"^/model\.(\d+)/cv[23]\.(\d+)/cv[23]\.\2\.2/Conv$")


def head_convs(model) -> list[str]:
    """The Detect head's six output convolutions (box and class branch per stride), from the graph."""
    names = [n.name for n in model.graph.node if n.op_type == "Conv" and HEAD_CONV.match(n.name)]
    layers = {HEAD_CONV.match(n).group(1) for n in names}
    if len(names) != 6 or len(layers) != 1:
        raise ExportError(f"expected the 6 head convolutions of one Detect layer, found {names}")
    return names


def downstream_of(model, start: Iterable[str]) -> list[str]:
    """Names of every node fed (directly or not) by the outputs of the ``start`` nodes."""
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for inp in node.input:
            consumers.setdefault(inp, []).append(node)
    by_name = {n.name: n for n in model.graph.node}
    seen: set[str] = set()
    frontier = [out for s in start for out in by_name[s].output]
    while frontier:
        tensor = frontier.pop()
        for node in consumers.get(tensor, []):
            if node.name not in seen:
                seen.add(node.name)
                frontier.extend(node.output)
    return sorted(seen)


class _Reader:
    """CalibrationDataReader over prepared input tensors."""

    def __init__(self, input_name: str, tensors: list[np.ndarray]):
        self._it = iter([{input_name: t} for t in tensors])

    def get_next(self):
        return next(self._it, None)


def input_convs(model) -> list[str]:
    """The convolutions reading the graph input (the stem: one in YOLOv8)."""
    inputs = {i.name for i in model.graph.input}
    names = [n.name for n in model.graph.node if n.op_type == "Conv" and inputs & set(n.input)]
    if not names:
        raise ExportError("no convolution reads the model input")
    return names


def quantize_int8(
    fp32: Path,
    out: Path,
    calibration: list[np.ndarray],
    per_channel: bool = True,
    method: str = "minmax",
    float_head: bool = False,
    float_input_conv: bool = False,
) -> dict:
    """Write the int8 QDQ model to ``out``; returns what was kept float and how it was calibrated.

    ``float_head``: keep the six head convolutions float too (as Hailo's 16-bit output layers
    would), to see how much of the loss they cause. ``float_input_conv``: the same for the stem
    convolution (Hailo: ``quantization_param(<conv>, precision_mode=a16_w16)`` on that layer)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise ExportError(f"int8.method={method!r} is not one of {sorted(methods)}")
    if not calibration:
        raise ExportError("int8 calibration needs at least one image")
    model = onnx.load(str(fp32))
    heads = head_convs(model)
    float_tail = (
        downstream_of(model, heads)
        + (heads if float_head else [])
        + (input_convs(model) if float_input_conv else [])
    )
    input_name = model.graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        source = fp32
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        if opset < QDQ_MIN_OPSET:
            # The fp32 model keeps the opset the Hailo DFC parses; this ONNX Runtime proxy alone is
            # converted, since per-channel DequantizeLinear (its axis attribute) needs opset 13.
            from onnx import version_converter

            source = Path(tmp) / "opset13.onnx"
            onnx.save(version_converter.convert_version(model, QDQ_MIN_OPSET), str(source))
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out),
            _Reader(input_name, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            nodes_to_exclude=float_tail,
        )
    return {
        "calibration_images": len(calibration),
        "method": method,
        "per_channel": per_channel,
        "float_head": float_head,
        "float_input_conv": float_input_conv,
        "float_nodes": len(float_tail),
        "fp32_opset": opset,
        "opset": max(opset, QDQ_MIN_OPSET),
    }
