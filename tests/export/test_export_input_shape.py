"""``python -m export ... imgsz=[H,W]``: the detector exported at a camera-shaped input, recorded in
its metadata and its zoo name, and bad sizes refused with a clear error."""

from __future__ import annotations

import onnxruntime as ort
import pytest
from helpers.model_fixtures import tiny_export_overrides

from export.errors import ExportError
from export.onnx_export import load_weights
from export.run import export_model, with_input_size
from runtime.model_zoo import find_models, read_model_entry
from stage.config import compose


def test_detector_exported_at_a_wide_input(tiny_weights, tiny_onnx, tmp_path):
    zoo = tmp_path / "zoo"
    cfg = compose(
        "export",
        [
            f"weights={tiny_weights['plate_det']}",
            f"out={zoo}",
            "imgsz=[96,160]",
            *tiny_export_overrides(tmp_path),
        ],
    )
    entry = export_model(cfg).fp32
    assert "--160x96_" in entry.name  # DeGirum's naming: width x height
    model = read_model_entry(entry.config)
    assert (model.meta.input_height, model.meta.input_width) == (96, 160)
    session = ort.InferenceSession(str(entry.model), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 96, 160]
    # Beside the square detector of the same weights (and the OCR model), exported by the fixture,
    # the wide one is what a wide source gets.
    for model in ("plate_det", "plate_ocr"):
        folder = tiny_onnx[model].parent
        (zoo / folder.name).symlink_to(folder, target_is_directory=True)
    square, ocr = tiny_onnx["plate_det"].parent, tiny_onnx["plate_ocr"].parent
    assert find_models(zoo, aspect=16 / 9)[0].name == entry.name
    assert find_models(zoo)[0].name == square.name  # shape unknown: the square one, as before
    assert find_models(zoo, aspect=1.0)[0].name == square.name
    assert find_models(zoo, det_name=square.name, aspect=16 / 9)[0].name == square.name  # named wins
    assert find_models(zoo)[1].name == ocr.name


@pytest.mark.parametrize("imgsz", ["[100,160]", "[0,640]", "[abc,640]"])
def test_input_size_not_fitting_the_strides_is_refused(tiny_weights, imgsz):
    w = load_weights(str(tiny_weights["plate_det"]), None)
    cfg = compose("export", [f"weights={tiny_weights['plate_det']}", f"imgsz={imgsz}"])
    with pytest.raises(ExportError, match="imgsz="):
        with_input_size(w, cfg.imgsz)
