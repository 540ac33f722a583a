"""The NMS config JSON for ``nms_postprocess(..., meta_arch=yolov8)``, derived from the model.

Layout as the model zoo's ``cfg/postprocess_config/yolov8n_nms_config.json``: thresholds, the
model's input size ``image_dims`` [H, W], its class count, the DFL bin count
(``regression_length`` = reg_max) and one ``bbox_decoders`` entry per stride naming the HN layers
of that stride's box (``reg_layer``) and class (``cls_layer``) convs. Those layer names exist only
after the DFC has parsed the ONNX, so the bundle's JSON holds ``{{net}}/{{reg_s8}}``-style
placeholders that ``run_dfc.py`` fills in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compile.errors import NmsConfigError
from compile.graph import HeadSpec


def build(head: HeadSpec, thresholds: Mapping[str, Any]) -> dict[str, Any]:
    """The config with placeholders for the HN layer names (filled in by the runner)."""
    decoders = []
    for stride in head.strides:
        reg, cls = head.node("box", stride), head.node("cls", stride)
        decoders.append(
            {
                # The zoo names each decoder after its reg conv (bbox_decoder41 for conv41).
                "name": f"{{{{net}}}}/{{{{decoder_{reg.key}}}}}",
                "stride": stride,
                "reg_layer": f"{{{{net}}}}/{{{{{reg.key}}}}}",
                "cls_layer": f"{{{{net}}}}/{{{{{cls.key}}}}}",
            }
        )
    return {
        "nms_scores_th": float(thresholds["scores_th"]),
        "nms_iou_th": float(thresholds["iou_th"]),
        "image_dims": [head.input_height, head.input_width],
        "max_proposals_per_class": int(thresholds["max_proposals_per_class"]),
        "classes": head.num_classes,
        "regression_length": head.reg_max,
        "background_removal": False,
        "bbox_decoders": decoders,
    }


def check(config: Mapping[str, Any], head: HeadSpec) -> None:
    """Raise :class:`NmsConfigError` unless the config fits the model's graph."""
    problems = []
    if config.get("classes") != head.num_classes:
        problems.append(f"classes {config.get('classes')} != model's {head.num_classes}")
    if list(config.get("image_dims", [])) != [head.input_height, head.input_width]:
        problems.append(
            f"image_dims {config.get('image_dims')} != model input [{head.input_height}, {head.input_width}]"
        )
    if config.get("regression_length") != head.reg_max:
        problems.append(f"regression_length {config.get('regression_length')} != reg_max {head.reg_max}")
    strides = [d.get("stride") for d in config.get("bbox_decoders", [])]
    if strides != head.strides:
        problems.append(f"bbox_decoders strides {strides} != model's {head.strides}")
    for key in ("nms_scores_th", "nms_iou_th"):
        if not 0.0 <= float(config.get(key, -1)) <= 1.0:
            problems.append(f"{key} {config.get(key)} is not in 0..1")
    if int(config.get("max_proposals_per_class", 0)) <= 0:
        problems.append("max_proposals_per_class must be positive")
    if problems:
        raise NmsConfigError("NMS config does not match the model: " + "; ".join(problems))
