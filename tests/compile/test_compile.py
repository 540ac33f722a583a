"""The compile stage: Hailo DFC bundles derived from real exported YOLOv8 ONNX models.

The models come from the ``onnx_models`` fixture below, all exported by the export stage: the tiny
trained models (``tiny_onnx``: the detector 640x640 with 1 class, the OCR model 128x256 with 36
classes, ReLU6 as the project trains them) and an untrained SiLU OCR variant. They, calibration and
the bundle tests read the real photographs in ../shared/datasets (skipped when absent).
"""

from __future__ import annotations

import json
import py_compile
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers.model_fixtures import export_untrained
from omegaconf import OmegaConf

from compile import bundle as bundle_mod
from compile import dfc_api, dfc_runner, graph, model_script, nms_config
from runtime.metadata import read_onnx_metadata
from stage.config import CONF_DIR, PROJECT_ROOT, compose

pytestmark = pytest.mark.slow  # every test here needs a real Ultralytics export (seconds each)


# ------------------------------------------------------------------------------------------------
# onnx_models: models exported by the export stage
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def onnx_models(tiny_onnx, tmp_path_factory) -> dict[str, Path]:
    """{'det', 'ocr', 'ocr_silu'} -> ONNX with lpr.* metadata, all exported by the export stage: the
    tiny trained ReLU6 models (tiny_onnx) and an untrained SiLU OCR model."""
    work = tmp_path_factory.mktemp("silu_export")
    return {
        "det": tiny_onnx["plate_det"],
        "ocr": tiny_onnx["plate_ocr"],
        "ocr_silu": export_untrained("plate_ocr", work / "zoo", work, activation="silu"),
    }


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _ort_with_end_nodes(path: Path, head: graph.HeadSpec):
    """An ONNX Runtime session of the model that also returns the six end-node tensors."""
    import onnxruntime as ort

    model = onnx.load(str(path))
    for n in head.end_nodes:
        model.graph.output.append(onnx.helper.make_tensor_value_info(n.output, onnx.TensorProto.FLOAT, None))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _dfl_decode(reg: np.ndarray, stride: int, reg_max: int) -> np.ndarray:
    """What the yolov8 NMS decoder does with a box branch output: softmax over the bins, expected
    distance per side, anchors at cell centres -> [N, 4] cx, cy, w, h in input pixels."""
    _, _, h, w = reg.shape
    bins = reg.reshape(4, reg_max, h * w)
    p = np.exp(bins - bins.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dist = (p * np.arange(reg_max)[None, :, None]).sum(axis=1)  # [4, N]: l, t, r, b
    ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    ax, ay = xs.ravel(), ys.ravel()
    x1, y1, x2, y2 = ax - dist[0], ay - dist[1], ax + dist[2], ay + dist[3]
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1) * stride


def _hn_from_onnx(path: Path, net: str, end_nodes: list[graph.EndNode]) -> dict:
    """A parsed network in the DFC's HN layout (layers with type, input/output, NHWC output_shapes
    and the ONNX names each layer came from), built from the model's own graph - what the DFC
    returns from get_hn_dict(), which cannot be installed here. Layer numbers are ours, not the DFC's."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.value_info}
    layers = {
        f"{net}/input_layer1": {
            "type": "input_layer",
            "original_names": ["images"],
            "input": [],
            "output": [],
        }
    }
    by_onnx = {}
    for i, node in enumerate(n for n in model.graph.node if n.op_type == "Conv"):
        n, c, h, w = shapes[node.output[0]]
        name = f"{net}/conv{i + 1}"
        fed = [f"{net}/input_layer1"] if "images" in node.input else []
        layers[name] = {
            "type": "conv",
            "original_names": [node.name],
            "input": fed,
            "output": [],
            "output_shapes": [[-1, h, w, c]],
        }
        by_onnx[node.name] = name
    for k, end in enumerate(end_nodes, start=1):
        out = f"{net}/output_layer{k}"
        layers[by_onnx[end.onnx_node]]["output"].append(out)
        layers[out] = {
            "type": "output_layer",
            "input": [by_onnx[end.onnx_node]],
            "output": [],
            "original_names": [end.output],
            "output_shapes": layers[by_onnx[end.onnx_node]]["output_shapes"],
        }
    return {
        "name": net,
        "layers": layers,
        "net_params": {"output_layers_order": [f"{net}/output_layer{k}" for k in range(1, 7)]},
    }


def _cfg(overrides: list[str] | None = None) -> dict:
    return OmegaConf.to_container(compose("compile", overrides or []), resolve=True)


SMALL_CALIB = ["calib.size=24", "calib.min_size=8"]


@pytest.fixture(scope="session")
def bundles(onnx_models, shared_datasets, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Bundles for both models and both targets, small calibration sets from the real datasets."""
    out = {}
    for model in ("det", "ocr"):
        for target in ("hailo8", "hailo8l"):
            d = tmp_path_factory.mktemp(f"bundle_{model}_{target}")
            bundle_mod.build(onnx_models[model], d, _cfg([f"target={target}", *SMALL_CALIB]))
            out[(model, target)] = d
    return out


# ------------------------------------------------------------------------------------------------
# the graph: end nodes, start node, reg_max, strides
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["det", "ocr"])
def test_end_nodes_exist_in_graph_with_expected_channels(onnx_models, which):
    path = onnx_models[which]
    meta = read_onnx_metadata(path)
    head = graph.analyse(path, num_classes=meta.num_classes)
    model = onnx.load(str(path))
    nodes = {n.name: n for n in model.graph.node}
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    dfl = next(n for n in model.graph.node if n.op_type == "Conv" and "/dfl/" in n.name)
    reg_max = inits[dfl.input[1]].shape[1]

    assert head.start_node == model.graph.input[0].name
    assert head.input_shape == (1, 3, meta.input_height, meta.input_width)
    assert head.reg_max == reg_max
    assert len(head.end_nodes) == 6
    for end in head.end_nodes:
        node = nodes[end.onnx_node]
        assert node.op_type == "Conv"
        weight_out_channels = inits[node.input[1]].shape[0]
        expected = 4 * reg_max if end.branch == "box" else meta.num_classes
        assert weight_out_channels == end.channels == expected
        assert f"/model.{head.detect_index}/" in end.onnx_node

    # Real ONNX Runtime on a real image: the six tensors have the shapes recorded, and they rebuild
    # the model's own output - class sigmoid = scores, DFL decode = boxes - so these are the cut
    # points the Hailo NMS decoder needs, in stride order.
    import cv2
    import ultralytics

    from runtime.geometry import letterbox

    image = cv2.imread(
        str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg")
    )  # a real photo shipped with Ultralytics
    frame, _ = letterbox(image, meta.input_height, meta.input_width, meta.letterbox_fill)
    x = (frame[..., ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    session = _ort_with_end_nodes(path, head)
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {head.start_node: x}), strict=True))
    boxes, scores = [], []
    for stride in head.strides:
        reg, cls = outputs[head.node("box", stride).output], outputs[head.node("cls", stride).output]
        assert list(reg.shape) == list(head.node("box", stride).shape)
        assert list(cls.shape) == [
            1,
            meta.num_classes,
            meta.input_height // stride,
            meta.input_width // stride,
        ]
        boxes.append(_dfl_decode(reg, stride, head.reg_max))
        scores.append((1 / (1 + np.exp(-cls.reshape(meta.num_classes, -1)))).T)
    full = outputs[names[0]][0]  # [4 + nc, anchors]
    np.testing.assert_allclose(np.concatenate(boxes).T, full[:4], rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(np.concatenate(scores).T, full[4:], rtol=1e-3, atol=1e-5)


def test_relu6_and_silu_graphs_cut_at_the_same_end_nodes(onnx_models):
    relu6 = graph.analyse(onnx_models["ocr"], num_classes=36)
    silu = graph.analyse(onnx_models["ocr_silu"], num_classes=36)
    assert (relu6.activation, silu.activation) == ("relu6", "silu")
    assert [(n.onnx_node, n.channels, n.shape) for n in relu6.end_nodes] == [
        (n.onnx_node, n.channels, n.shape) for n in silu.end_nodes
    ]


def test_class_count_mismatch_is_refused(onnx_models):
    with pytest.raises(graph.GraphError, match="class count"):
        graph.analyse(onnx_models["det"], num_classes=36)


def test_model_without_metadata_names_the_file_and_export(onnx_models, tmp_path):
    model = onnx.load(str(onnx_models["det"]))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(bundle_mod.BundleError, match=r"bare\.onnx.*python -m export"):
        bundle_mod.read_model(bare)
    r = subprocess.run(
        [sys.executable, "-m", "compile", f"model={bare}", f"out={tmp_path / 'b'}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert str(bare) in r.stderr and "python -m export" in r.stderr


# ------------------------------------------------------------------------------------------------
# NMS config and model script, generated from the graph
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["det", "ocr"])
def test_nms_config_matches_the_model(onnx_models, which):
    meta = read_onnx_metadata(onnx_models[which])
    head = graph.analyse(onnx_models[which], num_classes=meta.num_classes)
    cfg = _cfg()["tasks"][meta.task]
    config = nms_config.build(head, cfg)
    assert config["classes"] == len(meta.names)
    assert config["image_dims"] == [meta.input_height, meta.input_width]
    assert config["regression_length"] == head.reg_max
    assert [d["stride"] for d in config["bbox_decoders"]] == sorted(meta.strides)
    assert (config["nms_scores_th"], config["nms_iou_th"]) == (cfg["scores_th"], cfg["iou_th"])
    nms_config.check(config, head)
    with pytest.raises(nms_config.NmsConfigError, match="classes"):
        nms_config.check({**config, "classes": config["classes"] + 1}, head)


@pytest.mark.parametrize("which", ["det", "ocr"])
def test_model_script_lines_are_known_commands(onnx_models, which):
    meta = read_onnx_metadata(onnx_models[which])
    head = graph.analyse(onnx_models[which], num_classes=meta.num_classes)
    cfg = _cfg(["model_script.a16_outputs=[cls]", "model_script.compiler_optimization_level=max"])
    nms = cfg["tasks"][meta.task]["nms_on_chip"]
    text = model_script.build(meta, head, cfg["model_script"], nms, calib_count=64)
    allowed = {n.key for n in head.end_nodes} | {"nms_config", "stem"}
    commands = model_script.validate(
        text, allow_placeholders=True, placeholders=allowed, require_comments=True
    )
    names = [c.name for c in commands]
    # 16-bit where asked: the class outputs (a16_outputs=[cls]) and the stem (a16_stem, on by default)
    a16 = [c.args[0] for c in commands if c.name == "quantization_param"]
    assert a16 == [
        "[" + ", ".join(f"{{{{{head.node('cls', s).key}}}}}" for s in head.strides) + "]",
        "{{stem}}",
    ]
    off = model_script.build(
        meta, head, {**cfg["model_script"], "a16_stem": False, "a16_outputs": []}, nms, calib_count=64
    )
    assert not any(line.startswith("quantization_param") for line in off.splitlines())
    assert set(names) <= set(model_script.KNOWN_COMMANDS)
    assert names.count("change_output_activation") == len(head.strides)
    assert ("nms_postprocess" in names) == nms
    norm = next(c for c in commands if c.name == "normalization")
    mean_px, std_px = model_script.pixel_normalization(meta)
    assert [float(v) for v in norm.args[0][1:-1].split(",")] == pytest.approx(mean_px)
    assert [float(v) for v in norm.args[1][1:-1].split(",")] == pytest.approx(std_px)
    assert std_px == pytest.approx([255.0] * 3)  # our metadata: 0..255 -> 0..1
    flavor = next(c for c in commands if c.name == "model_optimization_flavor")
    assert flavor.kwargs == {
        "optimization_level": str(cfg["model_script"]["optimization_level"]),
        "compression_level": str(cfg["model_script"]["compression_level"]),
    }
    # the placeholders are what stops this template from being loaded as is
    with pytest.raises(model_script.ModelScriptError, match="unresolved placeholders"):
        model_script.validate(text)


@pytest.mark.parametrize(
    "bad, why",
    [
        ("normalization1 = normalisation([0.0, 0.0, 0.0], [255.0, 255.0, 255.0])", "unknown command"),
        (
            "model_optimization_flavor(optimization_level=7, compression_level=0)",
            "optimization_level must be in 0..4",
        ),
        ("change_output_activation(conv42, sigmod)", "activation in"),
        ("nms_postprocess(nms.json, meta_arch=yolov8)", "double quotes"),
        ("quantization_param([conv41], precision_mode=a32_w32)", "precision_mode"),
        ("normalization([0.0, 0.0], [255.0, 255.0, 255.0])", "assigned"),
        ("change_output_activation(conv42 sigmoid", "not a command"),
    ],
)
def test_model_script_validator_rejects_bad_lines(bad, why):
    with pytest.raises(model_script.ModelScriptError, match=why):
        model_script.validate(bad + "\n")


# ------------------------------------------------------------------------------------------------
# complete bundles: both models, both targets
# ------------------------------------------------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.parametrize("which", ["det", "ocr"])
@pytest.mark.parametrize("target", ["hailo8", "hailo8l"])
def test_bundle_is_complete_and_consistent(bundles, onnx_models, which, target, shared_datasets):
    d = bundles[(which, target)]
    spec = bundle_mod.check(d)  # re-reads every file against the model
    meta = read_onnx_metadata(onnx_models[which])
    target_cfg = OmegaConf.load(CONF_DIR / "target" / f"{target}.yaml")
    assert spec["hw_arch"] == target_cfg.hw_arch
    for key, name in spec["files"].items():
        assert (d / name).is_file(), key

    # calib.npy: float32 (N, H, W, 3), 0..255, letterboxed with the model's fill, RGB
    calib = np.load(d / "calib.npy")
    assert calib.dtype == np.float32 and calib.shape == (24, meta.input_height, meta.input_width, 3)
    assert calib.min() >= 0 and calib.max() <= 255 and calib.max() > 200
    from data.exporters import cut_plate
    from data.images import read_image
    from data.manifest import read_manifest
    from runtime.geometry import letterbox

    rows = [line.split("\t") for line in (d / "calib_sources.txt").read_text().splitlines()[1:]]
    # Named by dataset folder and file, never by this machine's path.
    manifest = read_manifest(shared_datasets / rows[0][1].rsplit(":", 1)[0])
    by_line = {item.line: item for item in manifest.images}
    for row in rows[:4]:
        item = by_line[int(row[1].rsplit(":", 1)[1])]
        image = read_image(manifest.image_path(item))
        if meta.task == "plate_det":
            expected, _ = letterbox(image, meta.input_height, meta.input_width, meta.letterbox_fill)
        else:
            plate = item.plates[int(row[3].split()[1])]
            expected = cut_plate(
                image,
                plate,
                meta.input_height,
                meta.input_width,
                meta.crop_pad_x,
                meta.crop_pad_y,
                meta.letterbox_fill,
            )[0]
        np.testing.assert_array_equal(calib[int(row[0])], expected[..., ::-1].astype(np.float32))
    # every frame is padded (UC3M scenes are 4:3, crops ~2:1 but not 128:256) with exactly the fill
    padded = [
        (np.all(f[0] == meta.letterbox_fill) and np.all(f[-1] == meta.letterbox_fill))
        or (np.all(f[:, 0] == meta.letterbox_fill) and np.all(f[:, -1] == meta.letterbox_fill))
        for f in calib
    ]
    assert sum(padded) >= len(calib) // 2

    # NMS / DeGirum follow the task's config; the DeGirum entry names this target's device
    cfg = _cfg([f"target={target}"])
    nms = cfg["tasks"][meta.task]["nms_on_chip"]
    assert spec["nms_on_chip"] == nms
    zoo = json.loads((d / spec["degirum"]["template"]).read_text())
    assert zoo["DEVICE"][0] == {
        "DeviceType": target_cfg.degirum_device_type,
        "RuntimeAgent": "HAILORT",
        "SupportedDeviceTypes": target_cfg.degirum_supported_devices,
    }
    assert zoo["PRE_PROCESS"][0]["InputQuantEn"] is True
    assert (zoo["PRE_PROCESS"][0]["InputH"], zoo["PRE_PROCESS"][0]["InputW"]) == (
        meta.input_height,
        meta.input_width,
    )
    assert zoo["POST_PROCESS"][0]["OutputPostprocessType"] == (
        "DetectionYoloHailo" if nms else "DetectionYoloV8"
    )
    labels = json.loads((d / "degirum" / f"labels_{spec['degirum']['model_name']}.json").read_text())
    assert labels == {str(i): n for i, n in enumerate(meta.names)}
    # The HEF has no metadata of its own: the JSON carries the ONNX's, as the HEF it describes.
    assert zoo["LPR"] == {
        **meta.to_json_object(),
        "model_name": spec["degirum"]["model_name"],
        "precision": "int8",
    }
    # Named as DeGirum names its public models, from the model's metadata (not the input file):
    # yolov8n_relu6_plate_det--640x640_quant_hailort_hailo8l_1.
    base, suffix = meta.model_name.split("--")
    version = suffix.rsplit("_", 1)[1]
    expected = f"{base}--{meta.input_width}x{meta.input_height}_quant_hailort_{target}_{version}"
    assert spec["degirum"]["model_name"] == expected and spec["net_name"] == base
    assert zoo["MODEL_PARAMETERS"][0]["ModelPath"] == f"{expected}.hef"
    # DeGirum's suppression: the OCR entry suppresses over all classes (an O and a 0 on one glyph).
    post = zoo["POST_PROCESS"][0]
    assert post["UseRegularNMS"] is (which == "det") and post["MaxClassesPerDetection"] == 1
    readme = (d / "README.md").read_text()
    assert f"hailo parser onnx {spec['files']['onnx']} --hw-arch {target}" in readme
    # Nothing of the build machine in the bundle's text files (ONNX node names start with / too).
    roots = {p.name for p in Path("/").iterdir()}
    for f in [
        *d.glob("*.json"),
        *d.glob("*.txt"),
        *d.glob("*.md"),
        *d.glob("*.template"),
        *d.glob("degirum/*"),
    ]:
        for m in re.finditer(r"(?<![\w.:/~-])/([A-Za-z0-9_.-]+)/", f.read_text()):
            assert m.group(1) not in roots, f"{f.name}: absolute path {m.group(0)!r}"
    for dfc, rt in target_cfg.dfc_hailort_pairs.items():
        assert f"| {dfc} | {rt} |" in readme


@pytest.mark.shared_data
def test_contact_sheet_is_written(bundles):
    import cv2

    for d in bundles.values():
        sheet = cv2.imread(str(d / "calib_contact_sheet.png"))
        assert sheet is not None and sheet.shape[0] > 50 and sheet.std() > 10


# ------------------------------------------------------------------------------------------------
# the runner: compiles, calls only the documented DFC API, resolves names from a parsed network
# ------------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_runner_compiles_and_uses_only_documented_dfc_calls(bundles, tmp_path):
    import ast

    runner = bundles[("det", "hailo8l")] / "run_dfc.py"
    # the shipped script is compile/dfc_runner.py, whose functions the tests below exercise
    assert runner.read_text() == Path(dfc_runner.__file__).read_text()
    py_compile.compile(str(runner), cfile=str(tmp_path / "run_dfc.pyc"), doraise=True)  # not into the bundle
    ast.parse(runner.read_text(), feature_version=(3, 8))  # the DFC's virtualenvs run Python 3.8-3.10
    assert dfc_api.check_calls(runner) == []
    called = {c.name for c in dfc_api.dfc_calls(runner)}
    assert {
        "ClientRunner",
        "translate_onnx_model",
        "load_model_script",
        "optimize",
        "compile",
        "save_har",
        "get_hn_dict",
        "get_hn",
        "analyze_noise",
    } == called
    translate = next(c for c in dfc_api.dfc_calls(runner) if c.name == "translate_onnx_model")
    assert set(translate.keywords) == {"start_node_names", "end_node_names", "net_input_shapes"}


def test_api_checker_flags_undocumented_calls(tmp_path):
    script = tmp_path / "r.py"
    script.write_text(
        "runner = ClientRunner(hw_arch='hailo8', target='x')\n"
        "runner.translate_onnx_model('m.onnx', 'n', end_nodes=['a'])\n"
        "runner.quantize(calib)\n"
    )
    problems = dfc_api.check_calls(script)
    assert any("ClientRunner() has undocumented keywords ['target']" in p for p in problems)
    assert any("translate_onnx_model() has undocumented keywords ['end_nodes']" in p for p in problems)
    assert any("runner.quantize()" in p for p in problems)


@pytest.mark.shared_data
@pytest.mark.parametrize("which", ["det", "ocr"])
def test_runner_resolves_layer_names_and_fills_templates(bundles, onnx_models, which, tmp_path):
    d = bundles[(which, "hailo8l")]
    spec = json.loads((d / "bundle.json").read_text())
    head = graph.analyse(onnx_models[which], num_classes=spec["num_classes"])
    hn = _hn_from_onnx(onnx_models[which], spec["net_name"], head.end_nodes)
    how: dict[str, str] = {}
    mapping = dfc_runner.resolve_layers(hn, spec["end_nodes"], how)
    for end in head.end_nodes:  # each end node -> the HN layer recording that ONNX node
        assert hn["layers"][mapping[end.key]]["original_names"] == [end.onnx_node]
    assert set(how.values()) == {"original_names"}
    # a DFC that recorded no ONNX names: the unique [H, W, C] among the layers feeding outputs
    nameless = json.loads(json.dumps(hn))
    for layer in nameless["layers"].values():
        layer.pop("original_names", None)
    how = {}
    assert dfc_runner.resolve_layers(nameless, spec["end_nodes"], how) == mapping
    assert set(how.values()) == {"output shape"}
    # the stem (16-bit by default, model_script.a16_stem): by its ONNX name, else the conv fed by the input
    assert spec["stem"]["onnx_node"] == head.stem.onnx_node == "/model.0/conv/Conv"
    stem = dfc_runner.resolve_stem(hn, spec["stem"], how)
    assert hn["layers"][stem]["original_names"] == [head.stem.onnx_node] and how["stem"] == "original_names"
    assert (
        dfc_runner.resolve_stem(nameless, spec["stem"], how) == stem
        and how["stem"] == "fed by the input layer"
    )
    net = dfc_runner.network_scope(mapping, spec["net_name"])
    values = dfc_runner.placeholder_values(mapping, net, tmp_path / "nms_config.json")
    values["stem"] = dfc_runner.short_name(stem)
    script = dfc_runner.strip_comments(
        dfc_runner.fill((d / spec["files"]["model_script_template"]).read_text(), values)
    )
    commands = model_script.validate(script)  # no placeholders left, all known commands
    a16 = [c for c in commands if c.name == "quantization_param"]
    assert [(c.args[0], c.kwargs["precision_mode"]) for c in a16] == [(values["stem"], "a16_w16")]
    assert not any(line.startswith("#") for line in script.splitlines())
    acts = [c.args[0] for c in commands if c.name == "change_output_activation"]
    assert acts == [dfc_runner.short_name(mapping[f"cls_s{s}"]) for s in head.strides]
    if spec["nms_on_chip"]:
        nms = json.loads(dfc_runner.fill((d / spec["files"]["nms_config_template"]).read_text(), values))
        nms_config.check(nms, head)
        for dec, stride in zip(nms["bbox_decoders"], head.strides, strict=True):
            assert (
                dec["reg_layer"] == mapping[f"reg_s{stride}"]
                and dec["cls_layer"] == mapping[f"cls_s{stride}"]
            )
    # the resolver refuses a network whose layers do not fit the ONNX model
    broken = json.loads(json.dumps(hn))
    broken["layers"][mapping["cls_s8"]]["output_shapes"] = [[-1, 1, 1, 999]]
    with pytest.raises(dfc_runner.DfcRunError, match="cls_s8.*999 channels"):
        dfc_runner.resolve_layers(broken, spec["end_nodes"])
    del broken["layers"][mapping["reg_s16"]]
    broken["layers"] = {k: v for k, v in broken["layers"].items() if v.get("input") != [mapping["reg_s16"]]}
    with pytest.raises(dfc_runner.DfcRunError, match="reg_s16.*no HN layers match"):
        dfc_runner.resolve_layers(broken, spec["end_nodes"])


def test_runner_reads_the_dfc_log():
    # Lines as the DFC 3.x optimiser prints them (a public hailo-whisper conversion log) plus the
    # no-GPU fall-back warning.
    log = (
        "[info] Using dataset with 1024 entries for calibration\n"
        "[warning] Reducing optimization level to 0 (the accuracy won't be optimized and compression won't "
        "be used) "
        "because there's no available GPU\n"
        "[info] Output layers signal-to-noise ratio (SNR): measures the quantization noise (higher is "
        "better)\n"
        "[info] \tplate_det/output_layer1 SNR:\t29.73 dB\n"
        "[info] \tplate_det/output_layer2 SNR:\t9.179 dB\n"
    )
    parsed = dfc_runner.parse_log(log)
    assert parsed["reduced_to"] == 0 and parsed["calibration_entries"] == 1024
    assert parsed["snr_db"] == {"plate_det/output_layer1": 29.73, "plate_det/output_layer2": 9.179}
    assert (
        dfc_runner.requested_level("model_optimization_flavor(optimization_level=2, compression_level=0)\n")
        == 2
    )


def test_runner_checks_dfc_hailort_pairing():
    pairs = dict(OmegaConf.load(CONF_DIR / "target" / "hailo8l.yaml").dfc_hailort_pairs)
    assert dfc_runner.dfc_pairing("3.31.0", pairs, 3) == pairs["3.31"]
    with pytest.raises(dfc_runner.DfcRunError, match="Hailo-8/8L need the DFC 3.x"):
        dfc_runner.dfc_pairing("5.1.0", pairs, 3)


@pytest.mark.shared_data
def test_runtime_reads_the_hef_entry_the_runner_writes(bundles, tmp_path):
    """The runner's DeGirum entry for the HEF tells the runtime which model it is (task, classes,
    input size, fill, crop padding) through its "LPR" object. The HEF here stands in for the DFC's
    output (not installable here): the runtime reads only the JSON, the HEF's bytes go to HailoRT."""
    from runtime.model_zoo import find_models

    zoo = tmp_path / "zoo"
    for model in ("det", "ocr"):
        d = tmp_path / model
        shutil.copytree(bundles[(model, "hailo8l")], d)
        hef = d / "build" / "stand_in.hef"
        hef.parent.mkdir(exist_ok=True)
        hef.write_bytes(b"HEF stand-in")
        written = dfc_runner.write_degirum(d, dfc_runner.load_bundle(d), hef)
        shutil.copytree(written.parent, zoo / written.stem)
    det, ocr = find_models(zoo)
    for entry, model in ((det, "det"), (ocr, "ocr")):
        onnx_meta = read_onnx_metadata(
            bundles[(model, "hailo8l")]
            / json.loads((bundles[(model, "hailo8l")] / "bundle.json").read_text())["files"]["onnx"]
        )
        assert not entry.is_onnx and entry.runtime == "HAILORT" and entry.meta.precision == "int8"
        assert entry.meta == replace(onnx_meta, model_name=entry.name, precision="int8")
    assert (ocr.meta.crop_pad_x, ocr.meta.crop_pad_y) == (onnx_meta.crop_pad_x, onnx_meta.crop_pad_y)


@pytest.mark.shared_data
def test_runner_without_the_dfc_says_so(bundles, capsys):
    from compile.__main__ import report_dfc

    d = bundles[("ocr", "hailo8")]
    r = subprocess.run(
        [sys.executable, str(d / "run_dfc.py"), "--until", "resolve"], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "hailo_sdk_client (the Hailo Dataflow Compiler) is not importable" in r.stderr
    report = json.loads((d / "build" / "report.json").read_text())
    assert "not importable" in report["error"]
    assert report["stages_done"] == [] and (d / "build" / "dfc.log").is_file()
    report_dfc(d)  # what `python -m compile` prints after a DFC run
    printed = capsys.readouterr().out
    assert "DFC run failed: hailo_sdk_client" in printed and f"DFC log: {d / 'build' / 'dfc.log'}" in printed


# ------------------------------------------------------------------------------------------------
# the CLI
# ------------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_cli_builds_bundle_and_says_what_to_run(onnx_models, shared_datasets, tmp_path):
    out = tmp_path / "bundle"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "compile",
            f"model={onnx_models['det']}",
            "target=hailo8",
            f"out={out}",
            *SMALL_CALIB,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith(f"Bundle ready in {out}") and f"python {out / 'run_dfc.py'}" in last
    spec = bundle_mod.check(out)
    assert spec["hw_arch"] == "hailo8"
    # an existing bundle folder is rebuilt in place; a foreign non-empty folder is refused
    r = subprocess.run(
        [sys.executable, "-m", "compile", f"model={onnx_models['det']}", f"out={out}", *SMALL_CALIB],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert bundle_mod.check(out)["hw_arch"] == "hailo8l"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    r = subprocess.run(
        [sys.executable, "-m", "compile", f"model={onnx_models['det']}", f"out={foreign}", *SMALL_CALIB],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "holds no bundle.json" in r.stderr
    assert (foreign / "notes.txt").read_text() == "mine"
    # asking for the DFC where there is none is an error, not a silent skip
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "compile",
            f"model={onnx_models['det']}",
            f"out={out}",
            "run_dfc=true",
            *SMALL_CALIB,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "hailo_sdk_client (the Hailo DFC) is not importable" in r.stderr


def test_model_of_an_opset_the_dfc_is_not_known_to_take_is_refused(onnx_models, tmp_path):
    from onnx import version_converter

    known = _cfg()["dfc_onnx_opsets"]
    assert graph.analyse(onnx_models["det"], num_classes=1).opset in known  # what the export stage writes
    other = next(v for v in (13, 15, 17) if v not in known)
    converted = tmp_path / f"opset{other}.onnx"
    onnx.save(version_converter.convert_version(onnx.load(str(onnx_models["det"])), other), str(converted))
    with pytest.raises(
        bundle_mod.BundleError,
        match=rf"opset{other}\.onnx: ONNX opset {other}.*onnx_export\.opset={known[0]}",
    ):
        bundle_mod.build(converted, tmp_path / "b", _cfg(SMALL_CALIB))
    assert not (tmp_path / "b").exists()


@pytest.mark.shared_data
def test_too_few_calibration_frames_is_an_error(onnx_models, shared_datasets, tmp_path):
    from compile.calibration import CalibrationError

    with pytest.raises(CalibrationError, match="need at least calib.min_size=64"):
        bundle_mod.build(
            onnx_models["ocr"], tmp_path / "b", _cfg(["calib.size=64", "calib.splits=[nosuchsplit]"])
        )
