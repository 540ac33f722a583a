"""DeGirum local-zoo entries: ``<zoo>/<model_name>/`` with the model, its JSON and its labels.

    <model_name> = <name>--<W>x<H>_<float|quant>_onnx_cpu_<version>
    e.g. yolov8n_relu6_plate_det--640x640_float_onnx_cpu_1

The JSON follows what DeGirum PySDK 1.5 accepts for its ONNX/CPU agent (see
../shared/notes/hailo-and-degirum.md): a non-empty Checksum (the model file's sha256) and a
ConfigVersion > 0, letterbox pre-processing with 1/255 scaling, DetectionYoloV8 post-processing of
Ultralytics' [1, 4 + nc, N] output. Every value is derived from the model's own metadata.

DeGirum's letterbox fill is not a JSON key: PySDK 1.5 knows no such model parameter (its core's
parameter list has none; checked) and pads with black unless the loaded model is told
``model.input_letterbox_fill_color = (114, 114, 114)`` (:func:`load_degirum`,
``runtime.degirum_guide``); the export stage measures what black padding costs. The suppression
switches (``UseRegularNMS``, ``MaxClassesPerDetection``) and thresholds are chosen by measurement
with DeGirum's post-processor (export/degirum_tune.py).

Nothing of the build machine goes into an entry: the JSON names its files relative to its folder,
and :func:`portable` turns any path written into a report into one relative to the entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export.errors import ExportError
from runtime.metadata import ModelMetadata
from runtime.model_zoo import METADATA_KEY
from stage.files import sha256_file

RUNTIME = "onnx"
DEVICE = "cpu"


@dataclass
class ZooEntry:
    name: str
    folder: Path
    model: Path
    config: Path
    labels: Path


def model_name(base: str, meta: ModelMetadata, precision: str, version: int = 1) -> str:
    kind = "quant" if precision == "int8" else "float"
    return f"{base}--{meta.input_width}x{meta.input_height}_{kind}_{RUNTIME}_{DEVICE}_{version}"


def entry_paths(zoo_dir: Path, name: str) -> ZooEntry:
    folder = Path(zoo_dir) / name
    return ZooEntry(
        name=name,
        folder=folder,
        model=folder / f"{name}.onnx",
        config=folder / f"{name}.json",
        labels=folder / f"labels_{name}.json",
    )


def degirum_config(
    entry: ZooEntry,
    meta: ModelMetadata,
    conf: float,
    nms: float,
    max_detections: int,
    config_version: int = 10,
    post: Mapping[str, Any] | None = None,
) -> dict:
    """The entry's model JSON; ``post``: more POST_PROCESS keys (DeGirum's suppression switches
    ``UseRegularNMS``, ``MaxClassesPerDetection``, or tuned thresholds that replace conf/nms)."""
    if meta.mean != [0.0, 0.0, 0.0] or meta.std != [1.0, 1.0, 1.0]:
        raise ExportError(
            f"{entry.model}: DeGirum's JSON here only scales inputs; mean/std normalisation is not supported"
        )
    return {
        "ConfigVersion": int(config_version),
        "Checksum": sha256_file(entry.model),
        "DEVICE": [{"DeviceType": "CPU", "RuntimeAgent": "ONNX", "SupportedDeviceTypes": "ONNX/CPU"}],
        "PRE_PROCESS": [
            {
                "InputType": "Image",
                "InputN": 1,
                "InputH": meta.input_height,
                "InputW": meta.input_width,
                "InputC": 3,
                "InputTensorLayout": "NCHW",
                "InputPadMethod": "letterbox",
                "InputResizeMethod": "bilinear",
                "InputColorSpace": meta.channel_order,
                "InputQuantEn": False,
                "InputScaleEn": True,
                "InputScaleCoeff": float(meta.scale),
            }
        ],
        "MODEL_PARAMETERS": [{"ModelPath": entry.model.name}],
        "POST_PROCESS": [
            {
                "OutputPostprocessType": "DetectionYoloV8",
                "OutputNumClasses": meta.num_classes,
                "LabelsPath": entry.labels.name,
                "OutputConfThreshold": float(conf),
                "OutputNMSThreshold": float(nms),
                "MaxDetections": int(max_detections),
                **dict(post or {}),
            }
        ],
        # The model's own metadata, so every zoo entry (ONNX here, HEF from the compile stage) says
        # what it is in the same place; the runtime checks it against the ONNX file.
        METADATA_KEY: meta.to_json_object(),
    }


def write_entry(
    entry: ZooEntry,
    meta: ModelMetadata,
    conf: float,
    nms: float,
    max_detections: int,
    config_version: int = 10,
    post: Mapping[str, Any] | None = None,
) -> ZooEntry:
    """Write the JSON and labels beside ``entry.model`` (which must already be in place)."""
    if not entry.model.is_file():
        raise FileNotFoundError(f"{entry.model}: no model file to describe")
    labels = {str(i): name for i, name in enumerate(meta.names)}
    entry.labels.write_text(json.dumps(labels, indent=1) + "\n")
    cfg = degirum_config(entry, meta, conf, nms, max_detections, config_version, post)
    entry.config.write_text(json.dumps(cfg, indent=2) + "\n")
    return entry


def check_entry(config_path: Path) -> tuple[dict, ModelMetadata]:
    """Verify a zoo entry against its model: checksum, input size, classes, labels; raises ValueError."""
    from runtime.metadata import read_onnx_metadata

    config_path = Path(config_path)
    try:
        cfg = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ExportError(f"{config_path}: not a readable zoo JSON ({e})") from None
    problems = []
    try:
        model = config_path.parent / cfg["MODEL_PARAMETERS"][0]["ModelPath"]
        pre, post = cfg["PRE_PROCESS"][0], cfg["POST_PROCESS"][0]
        labels_file = config_path.parent / post["LabelsPath"]
    except (KeyError, IndexError, TypeError) as e:
        raise ExportError(f"{config_path}: missing {e} (MODEL_PARAMETERS/PRE_PROCESS/POST_PROCESS)") from None
    meta = read_onnx_metadata(model)
    if not cfg.get("Checksum") or cfg["Checksum"] != sha256_file(model):
        problems.append(f"Checksum does not match {model.name} (re-export, or the model was replaced)")
    if int(cfg.get("ConfigVersion", 0)) <= 0:
        problems.append("ConfigVersion must be > 0 (DeGirum ignores the entry otherwise)")
    if (pre.get("InputH"), pre.get("InputW")) != (meta.input_height, meta.input_width):
        problems.append(
            f"InputH/InputW {pre.get('InputH')}x{pre.get('InputW')} != model "
            f"{meta.input_height}x{meta.input_width}"
        )
    if post.get("OutputNumClasses") != meta.num_classes:
        problems.append(f"OutputNumClasses {post.get('OutputNumClasses')} != model's {meta.num_classes}")
    if cfg.get(METADATA_KEY) != meta.to_json_object():
        problems.append(f"the '{METADATA_KEY}' object is missing or differs from {model.name}'s metadata")
    try:
        labels = json.loads(labels_file.read_text())
        if [labels[str(i)] for i in range(len(labels))] != meta.names:
            problems.append(f"{labels_file.name} does not list the model's class names in order")
    except (OSError, json.JSONDecodeError, KeyError) as e:
        problems.append(f"labels {labels_file}: {e}")
    if problems:
        raise ExportError(f"{config_path}: " + "; ".join(problems))
    return cfg, meta


def load_degirum(entry_or_config: ZooEntry | Path, fill: int = 114):
    """Load a zoo entry with DeGirum PySDK (local inference) and set its letterbox fill."""
    import degirum as dg

    config = entry_or_config.config if isinstance(entry_or_config, ZooEntry) else Path(entry_or_config)
    # An absolute path: PySDK takes a relative one for the name of a cloud zoo.
    model = dg.load_model(config.stem, "@local", str(config.resolve().parent.parent), token="")
    model.input_letterbox_fill_color = (int(fill),) * 3
    return model


# An absolute POSIX path (not a URL's //host or an ONNX node name's leading /model.N) or a
# Windows drive path: what must not leak from the build machine into shipped files.
_ABSOLUTE = re.compile(r"(?<![\w.:/~-])(/[^\s'\"()\[\]{},;]+|[A-Za-z]:\\[^\s'\"]+)")


def portable(path: str | Path, folder: str | Path) -> str:
    """``path`` as written into a shipped file beside ``folder``: relative to it when inside,
    else just the file's name (where it lay on the build machine is nobody's business)."""
    p, f = Path(path), Path(folder)
    try:
        return p.resolve().relative_to(f.resolve()).as_posix()
    except ValueError:
        return p.name


def strip_machine_paths(text: str) -> str:
    """``text`` with every absolute path replaced by its last component (e.g. Ultralytics'
    "trained on /tmp/.../data.yaml" description inside the ONNX)."""

    def name(m: re.Match) -> str:
        value = m.group(0)
        return re.split(r"[\\/]", value.rstrip("/\\"))[-1] or value

    return _ABSOLUTE.sub(name, text)
