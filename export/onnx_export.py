"""Trained weights -> an ONNX model that carries its own metadata.

Ultralytics' exporter writes the graph (static input, opset from config, onnxslim); we check it
with the ONNX checker, confirm its output is the layout the runtime decodes ([1, 4 + nc, N]) and
store a :class:`runtime.metadata.ModelMetadata` in ``metadata_props``. Weights are checked against
the model config first: task, class names and input size must fit, or the error names the file.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from export.errors import ExportError
from runtime.metadata import ModelMetadata
from stage.config import CONF_DIR


@dataclass
class LoadedWeights:
    path: Path
    model: Any  # ultralytics.YOLO
    info: dict[str, Any]  # the `lpr` block the training stage stored in the weights (or {})
    model_cfg: DictConfig

    @property
    def strides(self) -> list[int]:
        return [int(s) for s in self.model.model.stride.tolist()]

    @property
    def activation(self) -> str:
        """The activation the network really uses (its first convolution's), e.g. relu6 or silu."""
        for m in self.model.model.modules():
            if hasattr(m, "conv") and hasattr(m, "act"):
                return type(m.act).__name__.lower()
        return "unknown"


def model_config(task: str) -> DictConfig:
    file = CONF_DIR / "model" / f"{task}.yaml"
    if not file.is_file():
        raise ExportError(f"no model config for task {task!r} ({file})")
    return OmegaConf.load(file)


def load_weights(path: str | Path, model_cfg: DictConfig | None) -> LoadedWeights:
    """Load Ultralytics weights and check they fit ``model_cfg`` (None: the task stored in them)."""
    from ultralytics import YOLO

    from train.architecture import lpr_info

    p = Path(path)
    if not p.is_file():
        raise ExportError(f"{p}: no such weights file")
    if p.suffix.lower() == ".onnx":
        raise ExportError(
            f"{p}: an ONNX file; export takes PyTorch weights (.pt) from `python -m train` "
            "(to verify an exported model use action=check onnx=...)"
        )
    try:
        model = YOLO(str(p), task="detect")
    except Exception as e:  # Ultralytics raises many types for bad files
        raise ExportError(f"{p}: not loadable Ultralytics weights ({type(e).__name__}: {e})") from None
    if model.task != "detect" or not hasattr(model.model, "stride"):
        raise ExportError(f"{p}: a {model.task} model; the plate models are detection models")
    info = lpr_info(model) or {}
    if model_cfg is None:
        if "task" not in info:
            raise ExportError(
                f"{p}: the weights do not say which model they are (no 'lpr' block, not trained by "
                "`python -m train`); give model=plate_det or model=plate_ocr"
            )
        model_cfg = model_config(info["task"])
    problems = []
    task = str(model_cfg.task)
    if info.get("task") and info["task"] != task:
        problems.append(
            f"weights of a {info['task']} model, but model={model_cfg.name} ({task}) was asked for"
        )
    names = [str(n) for n in model_cfg.names]
    have = [str(model.names[i]) for i in sorted(model.names)]
    if have != names:
        problems.append(
            f"{len(have)} classes {_short(have)} do not fit {model_cfg.name}'s {len(names)} classes "
            f"{_short(names)}"
        )
    size = (int(model_cfg.input_height), int(model_cfg.input_width))
    if info.get("input_height") and (info["input_height"], info["input_width"]) != size:
        problems.append(
            f"trained for a {info['input_height']}x{info['input_width']} input, the config says "
            f"{size[0]}x{size[1]}"
        )
    if problems:
        raise ExportError(f"{p}: " + "; ".join(problems))
    return LoadedWeights(path=p, model=model, info=info, model_cfg=model_cfg)


def _short(names: list[str]) -> str:
    return str(names) if len(names) <= 5 else f"[{', '.join(names[:3])}, ..., {names[-1]}]"


def build_metadata(w: LoadedWeights, model_name: str, precision: str = "fp32") -> ModelMetadata:
    cfg = w.model_cfg
    crop = cfg.get("crop")
    return ModelMetadata(
        task=str(cfg.task),
        names=[str(n) for n in cfg.names],
        input_height=int(cfg.input_height),
        input_width=int(cfg.input_width),
        letterbox_fill=int(cfg.letterbox_fill),
        strides=w.strides,
        output_layout="yolov8_xywh_scores",
        crop_pad_x=float(crop.pad_x) if crop is not None else None,
        crop_pad_y=float(crop.pad_y) if crop is not None else None,
        activation=w.activation,
        precision=precision,
        model_name=model_name,
    )


def write_metadata(onnx_path: Path, meta: ModelMetadata) -> None:
    """Add (or replace) our keys in the model's metadata_props; Ultralytics' own keys stay (without
    absolute paths)."""
    import onnx

    from export.zoo import strip_machine_paths

    model = onnx.load(str(onnx_path))
    props = meta.to_props()
    kept = [p for p in model.metadata_props if p.key not in props]
    # Ultralytics' description names the training data.yaml by its absolute path: shipped models
    # carry nothing of the build machine.
    for p in kept:
        p.value = strip_machine_paths(p.value)
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))


def expected_anchors(height: int, width: int, strides: list[int]) -> int:
    return sum((height // s) * (width // s) for s in strides)


def check_graph(onnx_path: Path, meta: ModelMetadata) -> None:
    """The ONNX checker, plus: one input [1, 3, H, W], one output [1, 4 + nc, N] as the metadata says."""
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(str(onnx_path), full_check=True)
    except Exception as e:
        raise ExportError(f"{onnx_path}: the ONNX checker rejects the model ({e})") from None
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    want_in = [1, 3, meta.input_height, meta.input_width]
    want_out = [1, 4 + meta.num_classes, expected_anchors(meta.input_height, meta.input_width, meta.strides)]
    if len(inputs) != 1 or list(inputs[0].shape) != want_in:
        raise ExportError(f"{onnx_path}: input {[(i.name, i.shape) for i in inputs]}, expected one {want_in}")
    if len(outputs) != 1 or list(outputs[0].shape) != want_out:
        raise ExportError(
            f"{onnx_path}: output {[(o.name, o.shape) for o in outputs]}, expected one {want_out} "
            f"(layout {meta.output_layout})"
        )


def export_onnx(w: LoadedWeights, out_path: Path, meta: ModelMetadata, opset: int, simplify: bool) -> Path:
    """Export through Ultralytics into ``out_path`` (working on a copy: Ultralytics writes next to
    the weights, and the training run folder must stay as it was)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent) as tmp:
        work = Path(tmp) / "model.pt"
        shutil.copyfile(w.path, work)
        from ultralytics import YOLO

        model = YOLO(str(work), task="detect")
        produced = model.export(
            format="onnx",
            imgsz=[meta.input_height, meta.input_width],
            opset=int(opset),
            simplify=bool(simplify),
            dynamic=False,
            half=False,
            nms=False,
            batch=1,
            device="cpu",
            verbose=False,
        )
        if not produced or not Path(produced).is_file():
            raise ExportError(f"{w.path}: Ultralytics' ONNX export produced no file")
        shutil.move(str(produced), out_path)
    write_metadata(out_path, meta)
    check_graph(out_path, meta)
    return out_path
