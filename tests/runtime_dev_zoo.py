"""A development zoo of UNTRAINED YOLOv8n models for the runtime's tests and benchmark.

Real Ultralytics ONNX exports of untrained yolov8n graphs (nc=1 at 640x640, nc=36 at 128x256) with
our metadata written into them, laid out as the export stage lays out a zoo:

    <zoo>/<model_name>/<model_name>.onnx  +  <model_name>.json (DeGirum)  +  labels_<model_name>.json

It stands in until the export stage's fixture and trained models exist: swap ``make_dev_zoo`` for
those then. Untrained detectors find nothing at normal thresholds, so tests using this zoo lower the
thresholds or feed hand-made detections; speed is the same as a trained model's.

    python tests/runtime_dev_zoo.py OUT_DIR      # build one by hand (e.g. for python -m runtime.bench)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from runtime.metadata import ModelMetadata  # noqa: E402
from runtime.records import ALPHABET  # noqa: E402

DET_NAME = "plate_det--640x640_float_onnx_cpu_1"
OCR_NAME = "plate_ocr--256x128_float_onnx_cpu_1"
OCR_PAD_X, OCR_PAD_Y = 0.06, 0.12  # as conf/model/plate_ocr.yaml


def export_untrained(out_dir: Path, nc: int, imgsz: tuple[int, int], stem: str) -> Path:
    """Export an untrained yolov8n (ReLU6, like the project's models) with Ultralytics; returns the .onnx."""
    import yaml
    from ultralytics import YOLO
    from ultralytics.nn.tasks import yaml_model_load

    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = yaml_model_load("yolov8n.yaml")
    cfg.update(nc=nc, activation="nn.ReLU6()")
    cfg.pop("yaml_file", None)
    # The file name must start with "yolov8n" so Ultralytics picks the n scale.
    yaml_path = out_dir / f"yolov8n_{stem}.yaml"
    yaml_path.write_text(yaml.safe_dump(cfg))
    cwd = os.getcwd()
    os.chdir(out_dir)  # Ultralytics writes the export beside the yaml it was built from
    try:
        onnx_path = YOLO(str(yaml_path)).export(format="onnx", imgsz=list(imgsz), simplify=False, verbose=False)
    finally:
        os.chdir(cwd)
    onnx_path = Path(onnx_path)
    return onnx_path if onnx_path.is_absolute() else out_dir / onnx_path


def write_zoo_entry(zoo: Path, model_name: str, onnx_src: Path, meta: ModelMetadata,
                    conf: float = 0.3, nms: float = 0.6) -> Path:
    """<zoo>/<model_name>/: the ONNX with ``meta`` in its metadata_props, DeGirum JSON and labels."""
    import onnx

    folder = zoo / model_name
    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(onnx_src))
    del model.metadata_props[:]
    for key, value in meta.to_props().items():
        model.metadata_props.add(key=key, value=value)
    onnx_path = folder / f"{model_name}.onnx"
    onnx.save(model, str(onnx_path))
    labels_name = f"labels_{model_name}.json"
    (folder / labels_name).write_text(json.dumps({str(i): n for i, n in enumerate(meta.names)}, indent=1))
    model_json = {
        "ConfigVersion": 10,
        "Checksum": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "DEVICE": [{"DeviceType": "CPU", "RuntimeAgent": "ONNX", "SupportedDeviceTypes": "ONNX/CPU"}],
        "PRE_PROCESS": [{
            "InputType": "Image", "InputN": 1, "InputH": meta.input_height, "InputW": meta.input_width,
            "InputC": 3, "InputTensorLayout": "NCHW", "InputPadMethod": "letterbox",
            "InputResizeMethod": "bilinear", "InputQuantEn": False, "InputScaleEn": True,
            "InputScaleCoeff": meta.scale,
        }],
        "MODEL_PARAMETERS": [{"ModelPath": onnx_path.name}],
        "POST_PROCESS": [{
            "OutputPostprocessType": "DetectionYoloV8", "OutputNumClasses": meta.num_classes,
            "LabelsPath": labels_name, "OutputConfThreshold": conf, "OutputNMSThreshold": nms,
            "MaxDetections": 100,
        }],
    }
    (folder / f"{model_name}.json").write_text(json.dumps(model_json, indent=1))
    return folder


def det_metadata(model_name: str = DET_NAME) -> ModelMetadata:
    return ModelMetadata(task="plate_det", names=["plate"], input_height=640, input_width=640,
                         activation="relu6", model_name=model_name)


def ocr_metadata(model_name: str = OCR_NAME) -> ModelMetadata:
    return ModelMetadata(task="plate_ocr", names=list(ALPHABET), input_height=128, input_width=256,
                         crop_pad_x=OCR_PAD_X, crop_pad_y=OCR_PAD_Y, activation="relu6", model_name=model_name)


def make_dev_zoo(zoo: Path) -> Path:
    """Build the two-model development zoo in ``zoo`` (about 10 s on 2 cores); returns ``zoo``."""
    zoo = Path(zoo)
    with tempfile.TemporaryDirectory(prefix="lpr-dev-export-") as tmp:
        det = export_untrained(Path(tmp), 1, (640, 640), "dev_det")
        ocr = export_untrained(Path(tmp), len(ALPHABET), (128, 256), "dev_ocr")
        write_zoo_entry(zoo, DET_NAME, det, det_metadata())
        write_zoo_entry(zoo, OCR_NAME, ocr, ocr_metadata())
    return zoo


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    out = Path(sys.argv[1])
    if out.exists():
        shutil.rmtree(out)
    print(make_dev_zoo(out))


# -- pytest fixture (imported by the runtime tests) -------------------------------------------------
try:
    import pytest
except ImportError:  # the script use above needs no pytest
    pytest = None

_BUILT: dict[str, Path] = {}

if pytest is not None:

    @pytest.fixture(scope="session")
    def dev_zoo(tmp_path_factory) -> Path:
        """The development zoo, built once per test session (imported into several test modules)."""
        if "zoo" not in _BUILT:
            _BUILT["zoo"] = make_dev_zoo(tmp_path_factory.mktemp("dev_zoo"))
        return _BUILT["zoo"]


def make_scene(seed: int, plates: int, height: int = 480, width: int = 800, two_line: bool = False):
    """A street-like picture with ``plates`` white plates carrying dark characters (cv2 drawing);
    returns (BGR image, plate boxes, plate texts)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    noise = (rng.random((height // 8, width // 8, 3)) * 255).astype(np.uint8)
    image = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    boxes, texts = [], []
    for k in range(plates):
        text = "".join(rng.choice(list(ALPHABET), 7))
        pw, ph = (90, 70) if two_line else (170, 40)
        x = int(20 + k * (width - 40) / max(plates, 1))
        y = int(rng.integers(20, height - ph - 20))
        cv2.rectangle(image, (x, y), (x + pw, y + ph), (235, 235, 235), -1)
        cv2.rectangle(image, (x, y), (x + pw, y + ph), (20, 20, 20), 2)
        if two_line:
            cv2.putText(image, text[:3], (x + 18, y + 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (10, 10, 10), 2)
            cv2.putText(image, text[3:], (x + 8, y + 62), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (10, 10, 10), 2)
        else:
            cv2.putText(image, text, (x + 6, y + 31), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (10, 10, 10), 2)
        boxes.append((x, y, x + pw, y + ph))
        texts.append(text)
    return image, boxes, texts
