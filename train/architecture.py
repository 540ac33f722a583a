"""The model definitions: Ultralytics' own yolov8n.yaml with our activation, class count and a
record of what the model is for.

The yaml is loaded from the installed Ultralytics package (never copied by hand), so the network
is exactly the stock YOLOv8n; ``activation: nn.ReLU6()`` (which Ultralytics honours for every
Conv) is the int8-friendly variant DeGirum trains its edge models with. The ``lpr`` block rides
along in the model's yaml dict, which Ultralytics stores inside every checkpoint: export reads the
task, input size and crop padding from the weights themselves.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from stage.errors import UsageError

ACTIVATIONS = {"relu6": "nn.ReLU6()", "silu": "nn.SiLU()"}
ARCHITECTURES = {"yolov8n": "yolov8n.yaml"}


def lpr_block(model_cfg: DictConfig) -> dict[str, Any]:
    """What the model is, as stored in its yaml (and therefore in its checkpoints)."""
    block: dict[str, Any] = {
        "name": str(model_cfg.name),
        "task": str(model_cfg.task),
        "input_height": int(model_cfg.input_height),
        "input_width": int(model_cfg.input_width),
        "letterbox_fill": int(model_cfg.letterbox_fill),
        "activation": str(model_cfg.activation),
        "architecture": str(model_cfg.architecture),
        "names": [str(n) for n in model_cfg.names],
    }
    crop = model_cfg.get("crop")
    if crop is not None:
        block["crop"] = {"pad_x": float(crop.pad_x), "pad_y": float(crop.pad_y)}
    return block


def model_yaml(model_cfg: DictConfig) -> dict[str, Any]:
    """Ultralytics' architecture dict for this model config."""
    from ultralytics.nn.tasks import yaml_model_load

    arch = str(model_cfg.architecture)
    if arch not in ARCHITECTURES:
        raise UsageError(f"model.architecture={arch!r} is not one of {sorted(ARCHITECTURES)}")
    act = str(model_cfg.activation).lower()
    if act not in ACTIVATIONS:
        raise UsageError(f"model.activation={model_cfg.activation!r} is not one of {sorted(ACTIVATIONS)}")
    spec = copy.deepcopy(yaml_model_load(ARCHITECTURES[arch]))  # from the installed package
    for key in ("yaml_file",):
        spec.pop(key, None)
    spec["nc"] = len(model_cfg.names)
    spec["activation"] = ACTIVATIONS[act]
    spec["lpr"] = lpr_block(model_cfg)
    return spec


def write_model_yaml(model_cfg: DictConfig, folder: str | Path) -> Path:
    """Write the architecture where Ultralytics can load it; the file name carries the scale
    letter ('yolov8n-...') because Ultralytics reads the model scale from the name."""
    spec = model_yaml(model_cfg)
    path = (
        Path(folder) / f"{model_cfg.architecture}-{str(model_cfg.activation).lower()}-{model_cfg.name}.yaml"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def lpr_info(model) -> dict[str, Any] | None:
    """The ``lpr`` block of a loaded Ultralytics model (DetectionModel or YOLO), if it has one."""
    inner = getattr(model, "model", model)
    spec = getattr(inner, "yaml", None)
    if isinstance(spec, dict) and isinstance(spec.get("lpr"), dict):
        return dict(spec["lpr"])
    return None


def as_plain(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
