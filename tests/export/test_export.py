"""The export stage: ONNX + metadata, DeGirum zoo entries, parity, the int8 proxy, the DeGirum
round trip on ONNX/CPU, and clear errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.model_fixtures import PROJECT_ROOT, tiny_export_overrides

from stage.config import compose

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def _entry_files(onnx_path: Path) -> tuple[Path, Path]:
    name = onnx_path.stem
    return onnx_path.with_suffix(".json"), onnx_path.parent / f"labels_{name}.json"


@pytest.mark.parametrize("model", ["plate_det", "plate_ocr"])
def test_export_writes_onnx_with_metadata_and_a_zoo_entry(tiny_onnx, model):
    import onnx
    import onnxruntime as ort

    from runtime.metadata import read_onnx_metadata
    from stage.files import sha256_file

    cfg = compose("export", [f"model={model}"]).model
    path = tiny_onnx[model]
    h, w, nc = cfg.input_height, cfg.input_width, len(cfg.names)
    assert path.parent.parent == tiny_onnx["zoo"] and path.parent.name == path.stem
    assert path.stem == f"yolov8n_relu6_{model}--{w}x{h}_float_onnx_cpu_1"

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    # The configured opset, and one the compile stage takes to the Hailo DFC.
    opset = compose("export").onnx_export.opset
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    assert opset in compose("compile").dfc_onnx_opsets
    meta = read_onnx_metadata(path)
    assert (meta.task, meta.names, meta.input_height, meta.input_width) == (model, list(cfg.names), h, w)
    assert (
        meta.letterbox_fill == 114
        and meta.strides == [8, 16, 32]
        and meta.output_layout == "yolov8_xywh_scores"
    )
    assert meta.scale == pytest.approx(1 / 255) and meta.channel_order == "RGB" and meta.activation == "relu6"
    if model == "plate_ocr":
        assert (meta.crop_pad_x, meta.crop_pad_y) == (cfg.crop.pad_x, cfg.crop.pad_y)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, h, w]
    n = sum((h // s) * (w // s) for s in (8, 16, 32))
    out = session.run(None, {session.get_inputs()[0].name: np.full((1, 3, h, w), 0.45, np.float32)})[0]
    assert out.shape == (1, 4 + nc, n)

    config, labels = _entry_files(path)
    zoo = json.loads(config.read_text())
    assert zoo["Checksum"] == sha256_file(path) and zoo["ConfigVersion"] > 0
    assert (
        zoo["DEVICE"][0]["SupportedDeviceTypes"] == "ONNX/CPU" and zoo["DEVICE"][0]["RuntimeAgent"] == "ONNX"
    )
    pre, post = zoo["PRE_PROCESS"][0], zoo["POST_PROCESS"][0]
    assert (pre["InputH"], pre["InputW"], pre["InputPadMethod"]) == (h, w, "letterbox")
    assert pre["InputScaleCoeff"] == pytest.approx(1 / 255) and pre["InputScaleEn"] is True
    assert post["OutputPostprocessType"] == "DetectionYoloV8" and post["OutputNumClasses"] == nc
    assert zoo["MODEL_PARAMETERS"][0]["ModelPath"] == path.name and post["LabelsPath"] == labels.name
    assert json.loads(labels.read_text()) == {str(i): n for i, n in enumerate(cfg.names)}
    # The model's metadata also rides in the JSON (as in the compile stage's HEF entries), and the
    # runtime reads the entry as the same model.
    from runtime.model_zoo import read_model_entry

    assert zoo["LPR"] == meta.to_json_object() and zoo["LPR"]["task"] == model
    assert read_model_entry(config).meta == meta
    report = json.loads((path.parent / "export_report.json").read_text())
    assert report["parity"]["ok"] and report["weights_sha256"] and report["training_set_hash"]


@pytest.mark.parametrize("model", ["plate_det", "plate_ocr"])
def test_parity_pytorch_vs_onnx_on_real_images(tiny_weights, tiny_onnx, model):
    """Raw outputs agree to float precision; decoded boxes (at a low score so a 1-epoch model has
    some) match one to one."""
    from export.checks import parity, sample_images
    from export.onnx_export import load_weights
    from runtime.metadata import read_onnx_metadata

    cfg = compose("export", [f"model={model}"])
    meta = read_onnx_metadata(tiny_onnx[model])
    images = sample_images(cfg.images[model], model, "val", 4, cfg.paths, meta)
    assert len(images) == 4
    net = load_weights(tiny_weights[model], None).model.model.float().eval()
    scores = _max_score(tiny_onnx[model], meta, images)
    report = parity(
        net,
        tiny_onnx[model],
        meta,
        images,
        conf=scores * 0.5,
        iou=0.7,
        box_iou=0.9,
        atol_boxes=0.05,
        atol_scores=min(1e-3, scores * 0.1),
    )
    assert report.ok, report.line()
    # A 1-epoch model scores many overlapping junk boxes equally (to ~1e-7), so NMS may keep a
    # different one of a tie on each side; those count as reproduced (report.boxes.ties).
    assert report.boxes.reference > 0 and report.boxes.other > 0, report.line()
    assert report.max_abs_boxes < 0.05 and report.max_abs_scores < 1e-3


def _max_score(onnx_path, meta, images) -> float:
    from export.checks import ort_session, run_ort
    from runtime.backends.base import preprocess

    session = ort_session(onnx_path)
    return min(float(run_ort(session, preprocess(img, meta)[0])[0, 4:].max()) for _, img in images)


def test_parity_fails_loudly_when_the_onnx_model_differs(tiny_weights, tiny_onnx, tmp_path):
    """A model whose weights were altered after export must fail the check, naming what differs."""
    import onnx
    from onnx import numpy_helper

    from export.checks import parity, sample_images
    from export.onnx_export import load_weights
    from runtime.metadata import read_onnx_metadata

    proto = onnx.load(str(tiny_onnx["plate_det"]))
    conv = next(n for n in proto.graph.node if n.op_type == "Conv" and n.name.endswith("cv3.0.2/Conv"))
    init = next(i for i in proto.graph.initializer if i.name == conv.input[2])  # class-branch bias
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 10.0, init.name))
    altered = tmp_path / "altered.onnx"
    onnx.save(proto, str(altered))
    meta = read_onnx_metadata(altered)
    cfg = compose("export", ["model=plate_det"])
    images = sample_images(cfg.images.plate_det, "plate_det", "val", 2, cfg.paths, meta)
    net = load_weights(tiny_weights["plate_det"], None).model.model.float().eval()
    report = parity(
        net, altered, meta, images, conf=0.25, iou=0.7, box_iou=0.9, atol_boxes=0.05, atol_scores=1e-3
    )
    assert not report.ok and any("class scores differ" in p for p in report.problems)
    assert report.boxes.other > 0 and report.boxes.other_matched < report.boxes.other


def test_export_cli_exits_nonzero_when_parity_fails(tiny_weights, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "export",
            f"weights={tiny_weights['plate_ocr']}",
            f"out={tmp_path / 'zoo'}",
            *tiny_export_overrides(tmp_path),
            "parity.atol_boxes=0",
            "parity.atol_scores=0",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "does not reproduce" in proc.stderr and "tolerance 0" in proc.stderr


def test_int8_proxy_is_its_own_zoo_entry(tiny_weights, tmp_path):
    import onnx

    from export.run import export_model
    from export.zoo import check_entry, load_degirum
    from runtime.metadata import read_onnx_metadata

    cfg = compose(
        "export",
        [
            f"weights={tiny_weights['plate_det']}",
            f"out={tmp_path / 'zoo'}",
            *tiny_export_overrides(tmp_path),
            "int8.enabled=true",
            "int8.calib_images=8",
            "int8.compare_images=2",
        ],
    )
    result = export_model(cfg)
    int8 = result.int8
    assert int8.name == "yolov8n_relu6_plate_det--640x640_quant_onnx_cpu_1" and int8.model.is_file()
    meta = read_onnx_metadata(int8.model)
    assert meta.precision == "int8" and meta.task == "plate_det"
    check_entry(int8.config)
    proto = onnx.load(str(int8.model))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") > 50 and ops.count("DequantizeLinear") > 50
    # The box decoding after the head convolutions stays float (one int8 scale cannot hold pixel
    # boxes and 0..1 scores): no quantize node consumes the tail's tensors.
    from export.quantize import downstream_of, head_convs

    fp32 = onnx.load(str(result.fp32.model))
    tail = set(downstream_of(fp32, head_convs(fp32)))
    assert tail and not [n for n in proto.graph.node if n.name in tail and n.op_type in ("QuantizeLinear",)]
    assert int8.model.stat().st_size < 0.4 * result.fp32.model.stat().st_size
    r = result.report
    assert r["int8"]["calibration_images"] == 8 and r["int8"]["vs_fp32"]["images"] == 2
    # Per-channel QDQ needs opset 13: the proxy is converted, the fp32 model keeps the DFC's opset.
    assert r["int8"]["fp32_opset"] == r["opset"] and r["int8"]["opset"] == max(13, r["opset"])
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [r["int8"]["opset"]]
    assert r["benchmark"]["int8"]["median_ms"] > 0 and r["benchmark"]["fp32"]["median_ms"] > 0
    # DeGirum runs the int8 entry too.
    from data.images import read_image

    image = read_image(
        next((Path(compose("export").paths.shared_datasets) / "uc3m_lp" / "images" / "val").iterdir())
    )
    assert isinstance(load_degirum(int8.config)(image).results, list)


# ----------------------------------------------------------------------------------------- DeGirum


def _degirum_ready(zoo: Path) -> bool:
    from export.checks import degirum_available

    return degirum_available(zoo)


def test_degirum_loads_the_tiny_zoo_and_agrees_at_low_threshold(tiny_onnx):
    """The zoo written by export loads with degirum.load_model(name, '@local', zoo) on ONNX/CPU; for
    the 1-epoch detector, compare at a score threshold low enough to have boxes."""
    if not _degirum_ready(tiny_onnx["zoo"]):
        pytest.skip("DeGirum's ONNX/CPU agent is not available (python -m runtime.degirum_setup)")
    from export.checks import degirum_agreement, sample_images
    from runtime.metadata import read_onnx_metadata

    det = tiny_onnx["plate_det"]
    meta = read_onnx_metadata(det)
    cfg = compose("export", ["model=plate_det"])
    images = sample_images(cfg.images.plate_det, "plate_det", "val", 3, cfg.paths, meta)
    conf = _max_score(det, meta, images) * 0.5
    config = det.with_suffix(".json")
    zoo_cfg = json.loads(config.read_text())
    zoo_cfg["POST_PROCESS"][0]["OutputConfThreshold"] = conf
    config.write_text(json.dumps(zoo_cfg))
    try:
        result = degirum_agreement(config, det, meta, images, 0.9, fill=114, margin=conf * 0.2)
    finally:
        zoo_cfg["POST_PROCESS"][0]["OutputConfThreshold"] = compose("export").zoo.conf_threshold
        config.write_text(json.dumps(zoo_cfg, indent=2) + "\n")
    assert result["reference"] > 0 and result["ok"], result
    from export.zoo import load_degirum

    ocr = load_degirum(tiny_onnx["plate_ocr"].with_suffix(".json"))
    assert ocr.input_shape[0][1:3] == [128, 256] and ocr.input_letterbox_fill_color == (114, 114, 114)


@pytest.fixture(scope="session")
def trained_onnx_det() -> Path:
    """The best trained plate detector available (.pt): LPR_TEST_DET_WEIGHTS, else the shipped
    model's checkpoint (weights/, conf paths.weights), else skip."""
    shipped = sorted(Path(compose("export").paths.weights).glob("*plate_det*.pt"))
    weights = os.environ.get("LPR_TEST_DET_WEIGHTS") or (str(shipped[0]) if shipped else None)
    if not weights:
        pytest.skip(
            "set LPR_TEST_DET_WEIGHTS to a trained plate detector (.pt) for the DeGirum round trip "
            "with real detections (a 1-epoch model detects no plates)"
        )
    path = Path(weights)
    if not path.is_file():
        pytest.fail(f"LPR_TEST_DET_WEIGHTS={path}: no such file")
    return path


def test_degirum_round_trip_on_real_images(trained_onnx_det, tmp_path):
    """Trained detector -> zoo entry -> DeGirum PySDK on ONNX/CPU finds the same plates as our own
    ONNX Runtime decoding (IoU >= 0.9) on real street scenes; there must be plates to compare."""
    if not _degirum_ready(tmp_path):
        pytest.skip("DeGirum's ONNX/CPU agent is not available (python -m runtime.degirum_setup)")
    from export.checks import degirum_agreement, sample_images
    from export.run import export_model
    from runtime.metadata import read_onnx_metadata

    cfg = compose(
        "export",
        [
            f"weights={trained_onnx_det}",
            f"out={tmp_path / 'zoo'}",
            f"paths.runs={tmp_path}",
            f"ultralytics_dir={tmp_path / 'ul'}",
            "int8.enabled=false",
            "degirum.check=false",
        ],
    )
    entry = export_model(cfg).fp32
    meta = read_onnx_metadata(entry.model)
    images = sample_images(cfg.images.plate_det, "plate_det", "val", 12, cfg.paths, meta)
    result = degirum_agreement(entry.config, entry.model, meta, images, 0.9, fill=114)
    assert result["reference"] >= 6, (
        f"the trained detector found only {result['reference']} plates in 12 scenes"
    )
    assert result["ok"] and result["min_iou"] >= 0.9, result


# --------------------------------------------------------------------------------------- bad input


def test_bad_weights_get_clear_errors(tiny_weights, tmp_path):
    import torch

    from export.onnx_export import ExportError, load_weights
    from export.run import export_model

    det_cfg = compose("export", ["model=plate_det"]).model
    with pytest.raises(ExportError, match="missing.pt: no such weights file"):
        load_weights(tmp_path / "missing.pt", det_cfg)
    with pytest.raises(ExportError, match="plate_ocr model, but model=plate_det"):
        load_weights(tiny_weights["plate_ocr"], det_cfg)
    with pytest.raises(ExportError, match="trained for a 640x640 input, the config says 320x320"):
        load_weights(
            tiny_weights["plate_det"],
            compose("export", ["model=plate_det", "model.input_height=320", "model.input_width=320"]).model,
        )
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ExportError, match="junk.pt: not loadable"):
        load_weights(junk, det_cfg)
    # Plain Ultralytics weights (no record of their task): the class count must fit, the task be given.
    ckpt = torch.load(tiny_weights["plate_ocr"], weights_only=False)
    for key in ("model", "ema"):
        if ckpt.get(key) is not None:
            ckpt[key].yaml.pop("lpr", None)
    plain = tmp_path / "plain.pt"
    torch.save(ckpt, plain)
    with pytest.raises(ExportError, match=r"plain.pt: 36 classes .* do not fit plate_det's 1 classes"):
        load_weights(plain, det_cfg)
    with pytest.raises(ExportError, match="plain.pt: the weights do not say which model they are"):
        load_weights(plain, None)
    assert load_weights(plain, compose("export", ["model=plate_ocr"]).model).model_cfg.task == "plate_ocr"
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"x")
    with pytest.raises(ExportError, match="model.onnx: an ONNX file"):
        load_weights(onnx_file, det_cfg)
    with pytest.raises(ExportError, match="no weights"):
        export_model(compose("export", [f"out={tmp_path}"]))


def test_onnx_without_our_metadata_and_broken_entries_are_rejected(tiny_onnx, tmp_path):
    import shutil

    import onnx

    from export.run import check_model
    from export.zoo import check_entry
    from runtime.metadata import ModelMetadataError

    assert any("OK" in line for line in check_model(tiny_onnx["zoo"]))
    proto = onnx.load(str(tiny_onnx["plate_det"]))
    kept = [p for p in proto.metadata_props if not p.key.startswith("lpr.")]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ModelMetadataError, match="bare.onnx: no 'lpr.\\*' metadata"):
        check_model(bare)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelMetadataError, match="garbage.onnx: not a loadable ONNX model"):
        check_model(garbage)
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        check_model(tmp_path / "nothing.onnx")
    # A zoo entry whose model was replaced after its JSON was written: the checksum gives it away.
    entry = tmp_path / "zoo" / tiny_onnx["plate_ocr"].parent.name
    shutil.copytree(tiny_onnx["plate_ocr"].parent, entry)
    model = entry / tiny_onnx["plate_ocr"].name
    model.write_bytes(tiny_onnx["plate_det"].read_bytes())
    with pytest.raises(ValueError, match="Checksum does not match"):
        check_entry(model.with_suffix(".json"))
    proc = subprocess.run(
        [sys.executable, "-m", "export", "action=check", f"onnx={bare}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "bare.onnx" in proc.stderr and "Traceback" not in proc.stderr


def test_int8_proxy_keeps_the_stem_float_when_asked(tiny_onnx, tmp_path):
    """int8.float_input_conv: the convolution reading the image keeps float weights (no
    DequantizeLinear feeds it); without it, it is quantised like every other convolution."""
    import onnx

    from export.quantize import input_convs, quantize_int8

    rng = np.random.default_rng(0)
    calib = [rng.random((1, 3, 640, 640), dtype=np.float32) for _ in range(2)]
    (stem,) = input_convs(onnx.load(str(tiny_onnx["plate_det"])))
    fed_by_dq = {}
    for float_stem in (False, True):
        out = tmp_path / f"q{float_stem}.onnx"
        info = quantize_int8(tiny_onnx["plate_det"], out, calib, float_head=True, float_input_conv=float_stem)
        proto = onnx.load(str(out))
        dq_outputs = {o for n in proto.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
        conv = next(n for n in proto.graph.node if n.name == stem)
        fed_by_dq[float_stem] = bool(set(conv.input) & dq_outputs)
        assert info["float_input_conv"] is float_stem
    assert fed_by_dq == {False: True, True: False}
