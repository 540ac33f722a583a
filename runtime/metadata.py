"""What a model file must say about itself so the runtime needs nothing from the training config.

The export stage writes these keys into the ONNX model's ``metadata_props`` (strings; lists and
objects as JSON); the runtime reads them back with :func:`read_onnx_metadata`. DeGirum zoo JSON
files carry the same facts in their own keys, and the export stage writes both from one
:class:`ModelMetadata`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime.errors import ModelMetadataError

SCHEMA_VERSION = 1
PREFIX = "lpr."

TASKS = ("plate_det", "plate_ocr")
OUTPUT_LAYOUTS = {
    # Ultralytics' Detect head, decoded in the graph: [1, 4 + nc, anchors], boxes as cx, cy, w, h in
    # model-input pixels, class scores already through a sigmoid; NMS is left to the runtime.
    "yolov8_xywh_scores": "[1, 4 + nc, N]: cx, cy, w, h (input pixels), then nc sigmoid scores",
}


@dataclass
class ModelMetadata:
    task: str
    names: list[str]
    input_height: int
    input_width: int
    letterbox_fill: int = 114
    # Pixel values: input = (pixel * scale - mean) / std per channel, RGB order, NCHW float32.
    scale: float = 1.0 / 255.0
    mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    channel_order: str = "RGB"
    strides: list[int] = field(default_factory=lambda: [8, 16, 32])
    output_layout: str = "yolov8_xywh_scores"
    # plate_ocr only: how the runtime cuts a plate before OCR (fractions of the box, each side).
    crop_pad_x: float | None = None
    crop_pad_y: float | None = None
    activation: str | None = None
    precision: str = "fp32"
    model_name: str | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        problems = []
        if self.task not in TASKS:
            problems.append(f"task {self.task!r} is not one of {TASKS}")
        if not self.names:
            problems.append("names is empty")
        if self.input_height <= 0 or self.input_width <= 0:
            problems.append(f"input size {self.input_height}x{self.input_width} is not positive")
        if self.output_layout not in OUTPUT_LAYOUTS:
            problems.append(f"output_layout {self.output_layout!r} is not one of {list(OUTPUT_LAYOUTS)}")
        if self.task == "plate_ocr" and (self.crop_pad_x is None or self.crop_pad_y is None):
            problems.append("an OCR model must say how plates are cropped (crop_pad_x, crop_pad_y)")
        if problems:
            raise ModelMetadataError("; ".join(problems))

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def to_props(self) -> dict[str, str]:
        """As ONNX metadata_props: every value a string, prefixed keys."""
        out = {}
        for key, value in asdict(self).items():
            if value is None:
                continue
            out[PREFIX + key] = value if isinstance(value, str) else json.dumps(value)
        return out

    def to_json_object(self) -> dict[str, Any]:
        """As the ``"LPR"`` object of a DeGirum model JSON: the same keys without the prefix, plain
        JSON values (what tells the runtime about a model it cannot read metadata from, e.g. a HEF)."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json_object(cls, obj: dict[str, Any], source: str = "model JSON") -> ModelMetadata:
        """From :meth:`to_json_object`'s form (keys with or without the prefix, values plain JSON or
        strings as in metadata_props)."""
        props = {
            (k if k.startswith(PREFIX) else PREFIX + k): (v if isinstance(v, str) else json.dumps(v))
            for k, v in obj.items()
        }
        return cls.from_props(props, source=source)

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> ModelMetadata:
        ours = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not ours:
            raise ModelMetadataError(
                f"{source}: no '{PREFIX}*' metadata; export it with `python -m export` so it carries "
                "its task, class names, input size and letterbox fill"
            )
        known = set(cls.__dataclass_fields__)
        kwargs: dict[str, Any] = {}
        for key, raw in ours.items():
            if key not in known:
                continue
            if cls.__dataclass_fields__[key].type in ("str", "str | None"):
                kwargs[key] = raw
            else:
                try:
                    kwargs[key] = json.loads(raw)
                except json.JSONDecodeError:
                    raise ModelMetadataError(
                        f"{source}: metadata {PREFIX}{key}={raw!r} is not valid JSON"
                    ) from None
        missing = [k for k in ("task", "names", "input_height", "input_width") if k not in kwargs]
        if missing:
            raise ModelMetadataError(f"{source}: metadata lacks {', '.join(PREFIX + m for m in missing)}")
        try:
            return cls(**kwargs)
        except ModelMetadataError as e:
            raise ModelMetadataError(f"{source}: {e}") from None


def read_onnx_metadata(path: str | Path) -> ModelMetadata:
    """Read our metadata from an ONNX file through ONNX Runtime (no onnx package needed)."""
    import onnxruntime as ort

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no model file at {p}")
    try:
        session = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime raises its own exception types for corrupt files
        raise ModelMetadataError(f"{p}: not a loadable ONNX model ({e})") from None
    return ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map, source=str(p))
