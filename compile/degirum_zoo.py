"""A DeGirum PySDK zoo entry for the HEF the bundle's runner produces.

PySDK counts a model JSON only with a non-empty ``Checksum`` (ConfigVersion > 0), and the checksum
is the HEF's, which exists only after the DFC has compiled it. The bundle therefore ships the JSON
with a ``{{hef_sha256}}`` placeholder and the runner writes the final one next to the HEF, so
``degirum/`` becomes a ready local zoo folder.

A HEF has no metadata_props, so the JSON carries the ONNX model's ``lpr.*`` metadata as its
``"LPR"`` object (runtime.model_zoo reads the task, class names, input size, letterbox fill and
crop padding from it), with the two facts that change: the HEF's name and its int8 precision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from compile.graph import HeadSpec
from runtime.metadata import ModelMetadata
from runtime.model_zoo import METADATA_KEY

CONFIG_VERSION = 10


# The POST_PROCESS keys the export stage chooses by measurement with DeGirum's post-processor.
TUNED_KEYS = ("OutputConfThreshold", "OutputNMSThreshold", "UseRegularNMS", "MaxClassesPerDetection")


def model_name(net_name: str, head: HeadSpec, device_type: str, version: int = 1) -> str:
    """DeGirum's naming: ``<name>--<W>x<H>_quant_hailort_<device>_<version>``, e.g.
    ``yolov8n_relu6_plate_det--640x640_quant_hailort_hailo8l_1``."""
    return f"{net_name}--{head.input_width}x{head.input_height}_quant_hailort_{device_type.lower()}_{version}"


def post_settings(thresholds: Mapping[str, Any], tuned: Mapping[str, Any] | None) -> dict[str, Any]:
    """Thresholds and suppression switches of the HEF's JSON: those the export stage measured on
    the ONNX entry with DeGirum's post-processor (its JSON beside the ONNX) where it did, else the
    task's section of conf/compile.yaml."""
    out: dict[str, Any] = {
        "OutputConfThreshold": float(thresholds["scores_th"]),
        "OutputNMSThreshold": float(thresholds["iou_th"]),
        "UseRegularNMS": bool(thresholds.get("use_regular_nms", True)),
        "MaxClassesPerDetection": int(thresholds.get("max_classes_per_detection", 1)),
    }
    for key in TUNED_KEYS:
        if tuned and key in tuned:
            out[key] = tuned[key]
    return out


def build(
    meta: ModelMetadata,
    head: HeadSpec,
    net_name: str,
    target: Mapping[str, Any],
    nms_on_chip: bool,
    thresholds: Mapping[str, Any],
    version: int = 1,
    tuned: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(zoo model name, model JSON with placeholders, labels JSON); ``tuned``: the exported ONNX
    entry's POST_PROCESS (see :func:`post_settings`)."""
    name = model_name(net_name, head, target["degirum_device_type"], version)
    labels = {str(i): n for i, n in enumerate(meta.names)}
    batch = int(thresholds.get("batch_size", 1))  # checked by the bundle (at least 1)
    entry = {
        "ConfigVersion": CONFIG_VERSION,
        "Checksum": "{{hef_sha256}}",
        "DEVICE": [
            {
                "DeviceType": target["degirum_device_type"],
                "RuntimeAgent": "HAILORT",
                "SupportedDeviceTypes": target["degirum_supported_devices"],
            }
        ],
        "PRE_PROCESS": [
            {
                "InputType": "Image",
                "InputN": 1,
                "InputH": head.input_height,
                "InputW": head.input_width,
                "InputC": 3,
                "InputTensorLayout": "NHWC",
                "InputPadMethod": "letterbox",
                "InputResizeMethod": "bilinear",
                # The HEF takes uint8 RGB; normalisation is inside the network (model script).
                "InputQuantEn": True,
            }
        ],
        "MODEL_PARAMETERS": [{"ModelPath": f"{name}.hef"}],
        "POST_PROCESS": [
            {
                # On-chip NMS returns per-class [ymin, xmin, ymax, xmax, score] lists (DetectionYoloHailo);
                # without it the six NHWC head outputs go to PySDK's own YOLOv8 decoder.
                "OutputPostprocessType": "DetectionYoloHailo" if nms_on_chip else "DetectionYoloV8",
                "OutputNumClasses": head.num_classes,
                "LabelsPath": f"labels_{name}.json",
                **post_settings(thresholds, tuned),
                "MaxDetections": int(thresholds["max_detections"]),
            }
        ],
        METADATA_KEY: hef_metadata(meta, name).to_json_object(),
    }
    if batch > 1:
        # Inputs the device runs back to back before switching to another model (PySDK's eager
        # batch; the runtime also holds OCR crops of several frames to fill it).
        entry["DEVICE"][0]["EagerBatchSize"] = batch
    return name, entry, labels


def hef_metadata(meta: ModelMetadata, name: str) -> ModelMetadata:
    """The ONNX model's metadata as it holds for the HEF compiled from it (Hailo runs it in 8 bits)."""
    return replace(meta, model_name=name, precision="int8")
