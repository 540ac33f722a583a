"""The Hailo model script (.alls): written from config and the model, and checked line by line.

A model script is a list of commands, one per line, optionally assigned to a layer name
(``normalization1 = normalization(...)``). We write every command with a ``#`` comment above it
saying why it is there; the runner strips comments before handing the script to the DFC (the zoo's
own scripts carry none, so we do not rely on the DFC accepting them).

Layer names such as ``conv42`` are assigned by the DFC parser and only known after translation, so
the bundle ships a template where they are ``{{reg_s8}}``/``{{cls_s8}}`` placeholders (keys of the
ONNX end nodes, see :mod:`compile.graph`); ``run_dfc.py`` fills them from the parsed network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from compile.errors import ModelScriptError
from compile.graph import HeadSpec
from runtime.metadata import ModelMetadata

# Commands a DFC 3.x model script knows, with where each is documented or used. The validator
# rejects anything else: a typo in a command name otherwise surfaces only on the DFC machine.
ZOO = "hailo-ai/hailo_model_zoo hailo_model_zoo/cfg/alls"
KNOWN_COMMANDS: dict[str, str] = {
    "normalization": f"{ZOO}/generic/yolov8n.alls; DFC user guide 5.2 (model modification commands)",
    "change_output_activation": f"{ZOO}/generic/yolov8n.alls; DFC user guide 5.2",
    "nms_postprocess": f"{ZOO}/generic/yolov8n.alls; DFC user guide 5.2",
    "input_conversion": f"{ZOO}/generic/lprnet.alls; DFC user guide 5.2",
    "resize": "DFC user guide 5.2 (model modification commands); zoo core/main_utils.py",
    "transpose": "DFC user guide 5.2 (model modification commands)",
    "logits_layer": "DFC user guide 5.2 (model modification commands)",
    "set_seed": "DFC user guide 5.2 (model modification commands)",
    "model_optimization_flavor": f"{ZOO}/hailo8l/base/yolov12n.alls; DFC user guide 5.3",
    "model_optimization_config": f"{ZOO}/hailo8l/base/yolov8m.alls; DFC user guide 5.3",
    "quantization_param": "DFC user guide 5.3; ultralytics engine/exporter.py export_hailo",
    "pre_quantization_optimization": f"{ZOO}/generic/lprnet.alls; DFC user guide 5.3",
    "post_quantization_optimization": f"{ZOO}/hailo8l/base/yolov8m.alls; DFC user guide 5.3",
    "allocator_param": f"{ZOO}/generic/yolov8n.alls; DFC user guide 5.4",
    "performance_param": "hailo_model_zoo core/main_utils.py compile_model; DFC user guide 5.4",
    "resources_param": f"{ZOO}/hailo8l/base/yolov8m.alls; DFC user guide 5.4",
    "buffers": f"{ZOO}/hailo8l/base/yolov12n.alls; DFC user guide 5.4",
    "context_switch_param": "DFC user guide 5.4",
    "compilation_param": "DFC user guide 5.4",
    "platform_param": "DFC user guide 5.4",
}
ACTIVATIONS = {"sigmoid", "linear", "relu", "relu6", "leaky", "tanh", "exp", "silu", "hardsigmoid", "softmax"}
META_ARCHS = {
    "yolov5",
    "yolov8",
    "yolox",
    "yolov6",
    "ssd",
    "centernet",
    "nanodet",
    "yolov5_seg",
    "yolo_seg",
    "efficientdet",
    "damoyolo",
    "yolov10",
}
NMS_ENGINES = {"cpu", "nn_core", "auto"}
PRECISION_MODES = {"a8_w8", "a8_w4", "a16_w16", "a16_w8", "a16_w4"}
OPTIMIZATION_LEVELS = range(0, 5)  # DFC 3.x: 0 (no GPU) .. 4
COMPRESSION_LEVELS = range(0, 6)  # 0 (none) .. 5 (most 4-bit weights)
COMPILER_LEVELS = {"0", "1", "2", "max"}

PLACEHOLDER = re.compile(r"\{\{([a-z0-9_]+)\}\}")
LINE = re.compile(r"^(?:(?P<lhs>[A-Za-z0-9_/{}, ]+?)\s*=\s*)?(?P<name>[a-z][a-z0-9_]*)\s*\((?P<args>.*)\)$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_/]*$")


@dataclass
class ScriptCommand:
    line: int
    name: str
    lhs: str | None
    args: list[str]
    kwargs: dict[str, str]
    comment: list[str] = field(default_factory=list)
    text: str = ""


def split_args(text: str) -> list[str]:
    """Split a command's argument list at top-level commas (brackets and quotes nest)."""
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise ModelScriptError(f"unbalanced {ch!r}")
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if quote or depth:
        raise ModelScriptError("unterminated quote or bracket")
    tail = "".join(cur).strip()
    if tail or parts:
        parts.append(tail)
    return parts


def parse(text: str) -> list[ScriptCommand]:
    """Every command line of a script, with the ``#`` comment lines just above it."""
    commands, comment, problems = [], [], []
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            comment = []
            continue
        if line.startswith("#"):
            comment.append(line.lstrip("#").strip())
            continue
        m = LINE.match(line)
        if not m:
            problems.append(f"line {no}: not a command `name(args)`: {line!r}")
            comment = []
            continue
        try:
            parts = split_args(m["args"])
        except ModelScriptError as e:
            problems.append(f"line {no}: {e}: {line!r}")
            comment = []
            continue
        args, kwargs = [], {}
        for part in parts:
            key, eq, value = part.partition("=")
            if eq and IDENT.match(key.strip()) and not part.strip().startswith(("[", "{", '"')):
                kwargs[key.strip()] = value.strip()
            else:
                args.append(part)
        # A comment block explains every command after it up to the next blank line.
        commands.append(
            ScriptCommand(
                no, m["name"], (m["lhs"] or None) and m["lhs"].strip(), args, kwargs, list(comment), line
            )
        )
    if problems:
        raise ModelScriptError("; ".join(problems))
    return commands


def _number_list(value: str) -> list[float] | None:
    if not (value.startswith("[") and value.endswith("]")):
        return None
    try:
        return [float(v) for v in split_args(value[1:-1])]
    except ValueError:
        return None


def _layer_ref(value: str, allow_placeholders: bool) -> bool:
    """A layer name, a [list] of them, or a {glob}; placeholders only in templates."""
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        items = split_args(value[1:-1])
        return bool(items) and all(_layer_ref(v, allow_placeholders) for v in items)
    if value.startswith("{") and value.endswith("}") and not PLACEHOLDER.fullmatch(value):
        return bool(re.fullmatch(r"\{[A-Za-z0-9_/*]+\}", value))
    if PLACEHOLDER.fullmatch(value):
        return allow_placeholders
    return bool(IDENT.match(value))


def _check(cmd: ScriptCommand, allow_placeholders: bool) -> list[str]:
    """Argument checks for the commands this stage writes; other known commands pass by name."""
    a, kw, out = cmd.args, cmd.kwargs, []
    if cmd.name == "normalization":
        lists = [_number_list(v) for v in a[-2:]]
        if cmd.lhs is None:
            out.append("normalization must be assigned to a layer name (normalization1 = ...)")
        if len(a) not in (2, 3) or any(v is None or len(v) != 3 for v in lists):
            out.append("normalization takes [mean x3], [std x3] (and optionally an input layer)")
        elif any(s == 0 for s in lists[1]):
            out.append("normalization std must not be 0")
    elif cmd.name == "change_output_activation":
        if len(a) != 2 or not _layer_ref(a[0], allow_placeholders) or a[1] not in ACTIVATIONS:
            out.append(f"change_output_activation takes (layer, activation in {sorted(ACTIVATIONS)})")
    elif cmd.name == "nms_postprocess":
        path = a[0] if a else kw.get("config_path")
        templated = allow_placeholders and path is not None and PLACEHOLDER.fullmatch(path.strip('"'))
        if not path or not re.fullmatch(r"\"[^\"]+\"", path) or not (path.endswith('.json"') or templated):
            out.append('nms_postprocess needs the config JSON path in double quotes ("...json")')
        if kw.get("meta_arch") not in META_ARCHS:
            out.append(f"nms_postprocess meta_arch must be one of {sorted(META_ARCHS)}")
        if "engine" in kw and kw["engine"] not in NMS_ENGINES:
            out.append(f"nms_postprocess engine must be one of {sorted(NMS_ENGINES)}")
    elif cmd.name == "model_optimization_flavor":
        for key, allowed in (
            ("optimization_level", OPTIMIZATION_LEVELS),
            ("compression_level", COMPRESSION_LEVELS),
        ):
            if key in kw and (not kw[key].isdigit() or int(kw[key]) not in allowed):
                out.append(f"{key} must be in {allowed.start}..{allowed.stop - 1}, got {kw[key]}")
        if set(kw) - {"optimization_level", "compression_level", "batch_size"}:
            out.append(
                "model_optimization_flavor: unknown keys "
                f"{sorted(set(kw) - {'optimization_level', 'compression_level', 'batch_size'})}"
            )
    elif cmd.name == "model_optimization_config":
        if not a:
            out.append("model_optimization_config needs a feature name first (e.g. calibration)")
        elif a[0] == "calibration":
            for key in ("batch_size", "calibset_size"):
                if key in kw and (not kw[key].isdigit() or int(kw[key]) <= 0):
                    out.append(f"calibration {key} must be a positive integer, got {kw[key]}")
    elif cmd.name == "quantization_param":
        if not a or not _layer_ref(a[0], allow_placeholders):
            out.append("quantization_param needs a layer, [layers] or {glob} first")
        if "precision_mode" in kw and kw["precision_mode"] not in PRECISION_MODES:
            out.append(f"precision_mode must be one of {sorted(PRECISION_MODES)}")
    elif cmd.name == "performance_param":
        level = kw.get("compiler_optimization_level")
        if level is not None and level not in COMPILER_LEVELS:
            out.append(f"compiler_optimization_level must be one of {sorted(COMPILER_LEVELS)}")
    elif cmd.name == "allocator_param":
        if not kw or any(
            v not in ("enabled", "disabled") and not v.replace(".", "").isdigit() for v in kw.values()
        ):
            out.append("allocator_param takes key=enabled|disabled|number")
    return out


def validate(
    text: str,
    allow_placeholders: bool = False,
    placeholders: Sequence[str] | None = None,
    require_comments: bool = False,
) -> list[ScriptCommand]:
    """Parse and check a script; raises :class:`ModelScriptError` listing every bad line.

    ``placeholders``: the names a template may use (anything else is an error).
    ``require_comments``: every command must have a ``#`` line above it saying why.
    """
    commands = parse(text)
    problems = []
    for cmd in commands:
        where = f"line {cmd.line} ({cmd.text})"
        if cmd.name not in KNOWN_COMMANDS:
            problems.append(f"{where}: unknown command {cmd.name!r}")
            continue
        used = PLACEHOLDER.findall(cmd.text)
        if used and not allow_placeholders:
            problems.append(f"{where}: unresolved placeholders {used}")
        elif placeholders is not None and set(used) - set(placeholders):
            problems.append(f"{where}: unknown placeholders {sorted(set(used) - set(placeholders))}")
        if require_comments and not cmd.comment:
            problems.append(f"{where}: no comment saying why")
        problems += [f"{where}: {p}" for p in _check(cmd, allow_placeholders)]
    if not commands:
        problems.append("no commands")
    if problems:
        raise ModelScriptError("model script problems:\n  " + "\n  ".join(problems))
    return commands


def strip_comments(text: str) -> str:
    """The commands only, as the DFC gets them."""
    return (
        "\n".join(
            line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")
        )
        + "\n"
    )


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{{name}}`` placeholders; every placeholder must have a value."""
    missing = sorted(set(PLACEHOLDER.findall(template)) - set(values))
    if missing:
        raise ModelScriptError(f"no value for placeholders {missing}")
    return PLACEHOLDER.sub(lambda m: values[m[1]], template)


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" if v != int(v) else f"{v:.1f}" for v in values) + "]"


def pixel_normalization(meta: ModelMetadata) -> tuple[list[float], list[float]]:
    """Hailo's normalization works on raw pixels: out = (pixel - mean_px) / std_px. The model's
    metadata says input = (pixel * scale - mean) / std, so mean_px = mean / scale, std_px = std / scale."""
    if meta.scale <= 0:
        raise ModelScriptError(f"metadata scale {meta.scale} must be positive")
    return [m / meta.scale for m in meta.mean], [s / meta.scale for s in meta.std]


def build(
    meta: ModelMetadata, head: HeadSpec, script_cfg: Mapping[str, Any], nms_on_chip: bool, calib_count: int
) -> str:
    """The annotated model script template for this model and config (placeholders for HN names)."""
    if meta.channel_order.upper() != "RGB":
        raise ModelScriptError(
            f"metadata channel_order {meta.channel_order!r}: only RGB models are supported "
            "(HailoRT and DeGirum feed RGB frames)"
        )
    mean_px, std_px = pixel_normalization(meta)
    cls_keys = [head.node("cls", s).key for s in head.strides]
    reg_keys = [head.node("box", s).key for s in head.strides]
    lines = [
        f"# Model script for {meta.task} ({head.input_height}x{head.input_width}, {meta.num_classes} "
        "class(es)), written by",
        "# `python -m compile` from the model's ONNX graph and metadata and conf/compile.yaml. {{...}} are",
        "# the DFC parser's layer names for the ONNX end nodes listed in bundle.json; run_dfc.py fills them",
        "# in after translating the ONNX, then strips these comments before loading the script.",
        "",
        "# Frames arrive as RGB 0..255 (calib.npy and HailoRT alike); the network was trained on",
        f"# (pixel * {meta.scale:.6g} - {meta.mean}) / {meta.std} (ONNX metadata), i.e. (pixel - mean) / "
        "std below.",
        f"normalization1 = normalization({_fmt(mean_px)}, {_fmt(std_px)})",
    ]
    activation = script_cfg["class_activation"]
    if activation:
        lines += [
            "",
            f"# The class {activation} runs after the head convs in Ultralytics' graph, outside the cut: on "
            "the chip it",
            "# keeps class scores in 0..1 for int8 and gives the NMS decoder and DeGirum probabilities.",
        ]
        lines += [f"change_output_activation({{{{{k}}}}}, {activation})" for k in cls_keys]
    a16 = list(script_cfg.get("a16_outputs") or [])
    unknown = set(a16) - {"box", "cls"}
    if unknown:
        raise ModelScriptError(f"model_script.a16_outputs: {sorted(unknown)} not in [box, cls]")
    if a16:
        keys = [k for branch, ks in (("box", reg_keys), ("cls", cls_keys)) if branch in a16 for k in ks]
        lines += [
            "",
            f"# 16-bit activations on the {'/'.join(a16)} head outputs (config model_script.a16_outputs): "
            "less",
            "# quantisation noise where the outputs are decoded, at some throughput cost.",
            "quantization_param([" + ", ".join(f"{{{{{k}}}}}" for k in keys) + "], precision_mode=a16_w16)",
        ]
    if script_cfg.get("a16_stem"):
        if head.stem is None:
            raise ModelScriptError(
                "model_script.a16_stem: the graph has no single convolution reading the input"
            )
        lines += [
            "",
            f"# 16-bit on the stem convolution ({head.stem.onnx_node}, {head.stem.channels} channels at "
            f"{head.stem.shape[2]}x{head.stem.shape[3]}; config model_script.a16_stem):",
            "# the int8 proxy lost a quarter of the detector's plates with this layer in 8 bits "
            "(runtime/zoo/MODEL_CARD.md).",
            "quantization_param({{stem}}, precision_mode=a16_w16)",
        ]
    if nms_on_chip:
        lines += [
            "",
            f"# Box decoding (DFL, {head.reg_max} bins) and per-class NMS inside the HEF, configured by the "
            "JSON written from",
            f"# this model (classes={head.num_classes}, image_dims=[{head.input_height}, "
            f"{head.input_width}], strides {head.strides});",
            f"# engine={script_cfg['nms_engine']} as in the model zoo's yolov8 scripts.",
            f'nms_postprocess("{{{{nms_config}}}}", meta_arch=yolov8, engine={script_cfg["nms_engine"]})',
        ]
    lines += [
        "",
        f"# Optimisation level {script_cfg['optimization_level']} (0 = plain calibration .. 4 = most "
        "fine-tuning; >= 2 needs a GPU,",
        "# without one the DFC falls back to 0 and says so in its log); compression 0 keeps every weight "
        "8-bit.",
        f"model_optimization_flavor(optimization_level={script_cfg['optimization_level']}, "
        f"compression_level={script_cfg['compression_level']})",
        "",
        f"# Calibrate on all {calib_count} images of calib.npy (letterboxed like training), "
        f"{script_cfg['calib_batch_size']} at a time.",
        f"model_optimization_config(calibration, batch_size={script_cfg['calib_batch_size']}, "
        f"calibset_size={calib_count})",
    ]
    if script_cfg.get("width_splitter_defuse"):
        lines += [
            "",
            "# As the model zoo's yolov8 scripts: keep the allocator from splitting wide layers apart again.",
            f"allocator_param(width_splitter_defuse={script_cfg['width_splitter_defuse']})",
        ]
    if script_cfg.get("compiler_optimization_level") is not None:
        lines += [
            "",
            "# Compiler effort: 'max' searches longer for a faster placement (the DFC suggests it in its "
            "log).",
            f"performance_param(compiler_optimization_level={script_cfg['compiler_optimization_level']})",
        ]
    return "\n".join(lines) + "\n"
