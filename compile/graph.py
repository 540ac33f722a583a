"""What the Hailo parser needs from an exported YOLOv8 ONNX graph, read from the graph itself.

The Dataflow Compiler cannot run Ultralytics' Detect post-processing (DFL softmax, anchor decode,
concat) efficiently, so the network is cut at the six head convolutions - for each stride the last
conv of the box branch (``cv2``: 4 x reg_max channels) and of the class branch (``cv3``: nc
channels) - exactly as the Hailo model zoo does for yolov8n. This module finds those six nodes,
the start node and input shape, reg_max and the strides in the graph and checks each against the
inferred tensor shapes and against what the graph does downstream (class outputs reach the
Sigmoid, box outputs reach the DFL Softmax), so a bundle is right for the model by construction
instead of by copying node names by hand.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from compile.errors import GraphError

# Ultralytics names a module's ONNX nodes after its position in the model yaml: the Detect head of
# yolov8n is module 22, but another yaml (p2/p6 heads, extra layers) moves it. The index is read
# from these names, never assumed.
HEAD_CONV = re.compile(
    r"^(?P<prefix>.*?)model\.(?P<index>\d+)/cv(?P<branch>[23])\.(?P<scale>\d+)/cv(?P=branch)\.(?P=scale)\.2/Conv$"
)
BRANCH_ROLE = {"2": "box", "3": "cls"}
# Ops that only move or regroup values between a head conv and the decode; walking through them
# forward from a head conv must reach the Sigmoid (class) or the DFL Softmax (box).
ACTIVATION_OPS = {"Sigmoid", "Clip", "Relu", "Mul", "HardSwish", "LeakyRelu", "Elu", "Selu", "Tanh"}


@dataclass(frozen=True)
class EndNode:
    """One of the six head convolutions the parser stops at."""

    key: str  # placeholder name in the bundle's templates, e.g. reg_s8 / cls_s16
    onnx_node: str  # ONNX node name, e.g. /model.22/cv2.0/cv2.0.2/Conv
    output: str  # the node's output tensor name
    branch: str  # "box" (regression, DFL bins) or "cls" (class logits)
    stride: int
    channels: int
    shape: tuple[int, int, int, int]  # NCHW as inferred by ONNX shape inference


@dataclass(frozen=True)
class StemNode:
    """The convolution reading the image: the one layer besides the head the int8 proxy may keep
    float (export ``int8.float_input_conv``), 16-bit on Hailo with ``model_script.a16_stem``."""

    key: str  # placeholder name in the model script template: stem
    onnx_node: str
    output: str
    channels: int
    shape: tuple[int, int, int, int]


@dataclass
class HeadSpec:
    """Everything about the graph that the model script, NMS config and runner derive from."""

    path: str
    start_node: str
    input_shape: tuple[int, int, int, int]  # NCHW
    detect_index: int
    reg_max: int
    num_classes: int
    strides: list[int]
    end_nodes: list[EndNode] = field(default_factory=list)  # per stride: box then class
    activation: str = "unknown"
    opset: int = 0
    output_name: str = ""
    output_shape: tuple[int, ...] = ()
    stem: StemNode | None = None

    @property
    def input_height(self) -> int:
        return self.input_shape[2]

    @property
    def input_width(self) -> int:
        return self.input_shape[3]

    def node(self, branch: str, stride: int) -> EndNode:
        for n in self.end_nodes:
            if n.branch == branch and n.stride == stride:
                return n
        raise KeyError(f"no {branch} end node for stride {stride}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["end_nodes"] = [asdict(n) for n in self.end_nodes]
        return d


def _dims(value_info: Any) -> tuple[int, ...] | None:
    """Static dims of a tensor, or None when any dim is symbolic/unknown."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if not d.HasField("dim_value") or d.dim_value <= 0:
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def _activation(op_counts: dict[str, int]) -> str:
    """Name the backbone activation from the ops it exports to: ReLU6 -> Clip, SiLU -> Sigmoid * x."""
    if op_counts.get("Clip", 0) > 10:
        return "relu6"
    if op_counts.get("Sigmoid", 0) > 10 and op_counts.get("Mul", 0) > 10:
        return "silu"
    if op_counts.get("Relu", 0) > 10:
        return "relu"
    return "unknown"


def analyse(path: str | Path, num_classes: int | None = None) -> HeadSpec:
    """Find and check the start node, input shape and the six end nodes of a YOLOv8 ONNX model.

    ``num_classes`` (from the model's metadata) must equal the class branch's channel count.
    Raises :class:`GraphError` naming the file and what does not fit.
    """
    import onnx
    from onnx import numpy_helper, shape_inference

    p = Path(path)
    try:
        model = onnx.load(str(p))
    except Exception as e:  # protobuf raises its own DecodeError types
        raise GraphError(f"{p}: not a readable ONNX model ({e})") from None
    try:
        model = shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as e:
        raise GraphError(f"{p}: ONNX shape inference failed ({e})") from None
    graph = model.graph
    where = str(p)

    initializers = {t.name: t for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise GraphError(f"{where}: expected one image input, found {[i.name for i in inputs]}")
    start = inputs[0]
    input_shape = _dims(start)
    if input_shape is None or len(input_shape) != 4 or input_shape[0] != 1 or input_shape[1] != 3:
        raise GraphError(
            f"{where}: input {start.name!r} must be static [1, 3, H, W] for the DFC, "
            f"got {input_shape}; export with a fixed imgsz and batch 1"
        )
    _, _, in_h, in_w = input_shape
    if len(graph.output) != 1:
        raise GraphError(
            f"{where}: expected Ultralytics' single detection output, found {[o.name for o in graph.output]}"
        )
    output_shape = _dims(graph.output[0]) or ()

    shapes: dict[str, tuple[int, ...]] = {}
    for vi in list(graph.value_info) + list(graph.output) + list(graph.input):
        dims = _dims(vi)
        if dims is not None:
            shapes[vi.name] = dims
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def downstream_ops(node: Any) -> list[Any]:
        """Every node reachable from ``node``'s outputs (the graph is a DAG)."""
        seen: set[int] = set()
        out = []
        queue = deque(node.output)
        while queue:
            for nxt in consumers.get(queue.popleft(), []):
                if id(nxt) in seen:
                    continue
                seen.add(id(nxt))
                out.append(nxt)
                queue.extend(nxt.output)
        return out

    candidates: dict[int, list[tuple[Any, re.Match]]] = {}
    for node in graph.node:
        m = HEAD_CONV.match(node.name)
        if m and node.op_type == "Conv":
            candidates.setdefault(int(m["index"]), []).append((node, m))
    if not candidates:
        raise GraphError(
            f"{where}: no Ultralytics Detect head convs (…/model.N/cv2.i/cv2.i.2/Conv, "
            "…/cv3.i/cv3.i.2/Conv) in the graph; is this a YOLOv8 detection export?"
        )
    if len(candidates) > 1:
        raise GraphError(
            f"{where}: head convs found under several modules {sorted(candidates)}; cannot tell the Detect "
            "layer"
        )
    detect_index, found = next(iter(candidates.items()))

    # The DFL: Softmax over reg_max bins, then a fixed 1x1 conv with weights 0..reg_max-1 whose
    # weight tensor is [1, reg_max, 1, 1]. Its input channels are reg_max, read from the graph.
    dfl_convs = [n for n in graph.node if n.op_type == "Conv" and f"model.{detect_index}/dfl" in n.name]
    if len(dfl_convs) != 1 or dfl_convs[0].input[1] not in initializers:
        raise GraphError(
            f"{where}: no DFL conv under model.{detect_index}/dfl; a head without DFL "
            "(reg_max 1) does not fit the yolov8 NMS decoder"
        )
    dfl_weight = numpy_helper.to_array(initializers[dfl_convs[0].input[1]])
    reg_max = int(dfl_weight.shape[1])

    end_nodes: list[EndNode] = []
    problems: list[str] = []
    for node, m in found:
        role = BRANCH_ROLE[m["branch"]]
        out = node.output[0]
        shape = shapes.get(out)
        if shape is None or len(shape) != 4:
            problems.append(f"{node.name}: no static 4-D output shape after shape inference")
            continue
        _, ch, fh, fw = shape
        if in_h % fh or in_w % fw or in_h // fh != in_w // fw:
            problems.append(
                f"{node.name}: feature map {fh}x{fw} is not an integer stride of the input {in_h}x{in_w}"
            )
            continue
        stride = in_h // fh
        reach = {n.op_type for n in downstream_ops(node)}
        direct = {n.op_type for n in consumers.get(out, [])}
        if direct & ({"Conv"} | ACTIVATION_OPS):
            problems.append(
                f"{node.name}: its output feeds {sorted(direct)} directly; it is not the last conv of its "
                "branch"
            )
        if role == "box":
            expected = 4 * reg_max
            if "Softmax" not in reach:
                problems.append(f"{node.name}: box branch output never reaches the DFL Softmax")
        else:
            expected = num_classes if num_classes is not None else ch
            if "Sigmoid" not in reach or "Softmax" in reach:
                problems.append(
                    f"{node.name}: class branch output should reach the class Sigmoid and not the DFL"
                )
        if ch != expected:
            what = f"4 x reg_max ({reg_max})" if role == "box" else "the model's class count (metadata names)"
            problems.append(f"{node.name}: {ch} output channels, expected {expected} = {what}")
        key = f"{'reg' if role == 'box' else 'cls'}_s{stride}"
        end_nodes.append(
            EndNode(
                key=key,
                onnx_node=node.name,
                output=out,
                branch=role,
                stride=stride,
                channels=ch,
                shape=(shape[0], ch, fh, fw),
            )
        )
    if problems:
        raise GraphError(
            f"{where}: the Detect head (model.{detect_index}) does not check out:\n  " + "\n  ".join(problems)
        )
    stem_convs = [n for n in consumers.get(start.name, []) if n.op_type == "Conv"]
    stem = None
    if len(stem_convs) == 1 and len(shapes.get(stem_convs[0].output[0]) or ()) == 4:
        node = stem_convs[0]
        shape = tuple(shapes[node.output[0]])
        stem = StemNode(
            key="stem", onnx_node=node.name, output=node.output[0], channels=int(shape[1]), shape=shape
        )

    strides = sorted({n.stride for n in end_nodes})
    for s in strides:
        roles = sorted(n.branch for n in end_nodes if n.stride == s)
        if roles != ["box", "cls"]:
            raise GraphError(
                f"{where}: stride {s} has head convs {roles}, expected one box and one class conv"
            )
    if len(strides) != 3:
        raise GraphError(
            f"{where}: found strides {strides}; the yolov8 NMS decoder expects three (8, 16, 32)"
        )
    end_nodes.sort(key=lambda n: (n.stride, n.branch != "box"))
    nc = next(n.channels for n in end_nodes if n.branch == "cls")
    anchors = sum((in_h // s) * (in_w // s) for s in strides)
    if output_shape and output_shape != (1, 4 + nc, anchors):
        raise GraphError(
            f"{where}: output {graph.output[0].name} is {list(output_shape)}, expected "
            f"[1, {4 + nc}, {anchors}] for {nc} classes at strides {strides}"
        )

    op_counts: dict[str, int] = {}
    for node in graph.node:
        op_counts[node.op_type] = op_counts.get(node.op_type, 0) + 1
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return HeadSpec(
        path=str(p),
        start_node=start.name,
        input_shape=tuple(input_shape),
        detect_index=detect_index,
        reg_max=reg_max,
        num_classes=nc,
        strides=strides,
        end_nodes=end_nodes,
        activation=_activation(op_counts),
        opset=int(opset),
        output_name=graph.output[0].name,
        output_shape=tuple(output_shape),
        stem=stem,
    )
