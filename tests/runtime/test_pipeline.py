"""The runtime end to end: real ONNX Runtime, real DeGirum PySDK, real files, untrained dev models
(the ``dev_zoo`` fixture: real-size models exported by the export stage).

Untrained detectors score every box about 0.01 (plates) and 0.0003 (characters), so these tests
lower the thresholds (``UNTRAINED``) to get boxes through every stage, and keep the boxes lying
inside others (``det_contained=0``: an untrained detector's boxes overlap anyhow); what the boxes
say is meaningless, how they travel is what is tested. ``test_trained_zoo`` runs the shipped models
once the lead has put them in runtime/zoo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.degirum_agent import degirum_unavailable
from helpers.model_fixtures import write_zoo_entry
from helpers.runtime_dev_zoo import make_scene

from runtime.backends.base import preprocess
from runtime.config import PipelineConfig
from runtime.model_zoo import DEFAULT_ZOO, ZooError, find_models, scan_zoo
from runtime.pipeline import REASON_EMPTY_CROP, REASON_NO_CHARS, Predictor
from runtime.postprocess import Detections
from runtime.records import Plate
from runtime.results import FrameResult

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UNTRAINED = PipelineConfig(det_conf=0.005, ocr_conf=0.0001, max_plates=3, det_contained=0.0)
HEAVY = ("torch", "ultralytics", "hydra", "pandas")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """A folder of generated scenes (1-3 plates, one with two-line plates), plus two bad files."""
    folder = tmp_path_factory.mktemp("scenes")
    for i in range(5):
        image, _, _ = make_scene(i, 1 + i % 3, two_line=(i == 4))
        cv2.imwrite(str(folder / f"scene{i}.jpg"), image)
    (folder / "scene5_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (folder / "scene6_empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image: folders list image files only")
    return folder


@pytest.fixture(scope="module")
def predictor(dev_zoo) -> Predictor:
    with Predictor(dev_zoo, "onnx", UNTRAINED) as p:
        yield p


def run_cli(*args: str, cwd: Path | None = None, module: str = "runtime") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or PROJECT_ROOT,
        timeout=300,
    )


# -- running ----------------------------------------------------------------------------------------


def test_run_reads_a_folder_in_order_and_reports_bad_images(predictor, scenes):
    results = list(predictor.run(scenes))
    assert [Path(r.source).name for r in results] == [f"scene{i}.jpg" for i in range(5)] + [
        "scene5_corrupt.jpg",
        "scene6_empty.png",
    ]
    assert [r.frame for r in results] == list(range(7))
    good, corrupt, empty = results[:5], results[5], results[6]
    assert all(r.ok and r.plates for r in good)
    assert (
        not corrupt.ok and "scene5_corrupt.jpg" in corrupt.error and "not a decodable image" in corrupt.error
    )
    assert not empty.ok and "scene6_empty.png" in empty.error and "empty" in empty.error
    for r in good:
        h, w = cv2.imread(r.source).shape[:2]
        for p in r.plates:
            assert 0 <= p.box[0] <= p.box[2] <= w and 0 <= p.box[1] <= p.box[3] <= h
            assert isinstance(p.text, str) and (p.text or p.reason)
            assert p.text == "".join(c.char for c in p.chars)
            Plate.from_dict(p.to_dict())


def test_pipelined_naive_and_single_image_agree(predictor, scenes):
    images = sorted(scenes.glob("scene[0-4].jpg"))
    piped = [r.to_dict() for r in predictor.run(images)]
    naive = [r.to_dict() for r in predictor.run_naive(images)]
    single = [[p.to_dict() for p in predictor.predict(cv2.imread(str(p)))] for p in images]
    assert piped == naive
    assert [r["plates"] for r in piped] == single
    assert any(len(r["plates"]) > 1 for r in piped)


def test_run_takes_arrays_and_stops_cleanly_midway(predictor):
    frames = [make_scene(i, 2)[0] for i in range(6)]
    first_two = []
    for r in predictor.run(frames):
        first_two.append(r)
        if len(first_two) == 2:
            break  # the generator's pools shut down without running the rest for nothing
    assert [r.frame for r in first_two] == [0, 1] and first_two[0].source == "<array 0>"
    bad = list(predictor.run([np.zeros((0, 10, 3), np.uint8), np.zeros((5, 5), np.uint8)]))
    assert all("expected an HxWx3" in r.error for r in bad)


def test_no_characters_gives_an_empty_text_and_a_reason(dev_zoo):
    # The seed crashed with IndexError exactly here: OCR finding nothing in a crop.
    cfg = PipelineConfig(det_conf=0.005, ocr_conf=0.99, max_plates=3)
    with Predictor(dev_zoo, "onnx", cfg) as p:
        plates = p.predict(make_scene(0, 2)[0])
    assert plates and all(pl.text == "" and pl.reason == REASON_NO_CHARS and pl.chars == [] for pl in plates)
    assert all(pl.to_dict()["reason"] == REASON_NO_CHARS for pl in plates)


def test_border_zero_size_and_outside_boxes_through_the_real_backend(predictor):
    image = make_scene(3, 1)[0]
    h, w = image.shape[:2]
    boxes = [
        (0, 0, 120, 30),  # at the top-left corner: padding clipped
        (w - 60, h - 20, w, h),  # at the bottom-right corner
        (300, 200, 300, 200),  # zero size
        (w + 10, 100, w + 50, 120),  # outside the image (a hand-made or stale box)
        (w - 1, 100, w, 101),
    ]  # one pixel: padding makes a tiny crop, still read
    dets = Detections(
        boxes=np.array(boxes, np.float32), scores=np.full(5, 0.9, np.float32), classes=np.zeros(5, np.int64)
    )
    plates = predictor.read_plates(image, dets)
    assert len(plates) == 5
    assert [p.reason == REASON_EMPTY_CROP for p in plates] == [False, False, True, True, False]
    assert all(p.text == "" for p in plates[2:4])
    for p in plates[:2] + plates[4:]:
        for c in p.chars:  # characters lie inside the (clipped) crop region, in image pixels
            assert -0.01 <= c.box[0] <= c.box[2] <= w + 0.01 and -0.01 <= c.box[1] <= c.box[3] <= h + 0.01


def test_frame_result_json_shape(predictor):
    result = next(predictor.run([make_scene(1, 1)[0]]))
    d = result.to_dict()
    assert list(d) == ["source", "frame", "plates"]
    plate = d["plates"][0]
    assert {"box", "text", "det_score"} <= set(plate)
    if plate["text"]:
        assert {"score", "chars", "lines", "candidates"} <= set(plate)
        assert {"char", "box", "score"} <= set(plate["chars"][0])
    assert FrameResult(source="x", frame=3, error="x: broken").to_dict() == {
        "source": "x",
        "frame": 3,
        "plates": [],
        "error": "x: broken",
    }


# -- models and zoos --------------------------------------------------------------------------------


def test_zoo_finds_models_by_metadata_task(dev_zoo, tmp_path):
    det, ocr = find_models(dev_zoo)
    assert (det.meta.task, ocr.meta.task) == ("plate_det", "plate_ocr")
    assert ocr.meta.crop_pad_x == 0.06 and det.meta.letterbox_fill == 114
    # Names do not matter: a zoo with swapped-looking names still resolves by task.
    renamed = tmp_path / "zoo"
    write_zoo_entry(renamed, "aaa_detector_looking_name", ocr.model_path, ocr.meta)
    write_zoo_entry(renamed, "zzz", det.model_path, det.meta)
    det2, ocr2 = find_models(renamed)
    assert (det2.name, ocr2.name) == ("zzz", "aaa_detector_looking_name")


def test_missing_and_malformed_models_give_one_clear_error(dev_zoo, tmp_path):
    with pytest.raises(ZooError, match=f"{tmp_path / 'nowhere'}: the model zoo folder does not exist"):
        Predictor(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ZooError, match=f"{empty}: no models found"):
        Predictor(empty)
    det, ocr = find_models(dev_zoo)

    def zoo_with(name: str, mutate) -> Path:
        z = tmp_path / name
        write_zoo_entry(z, det.name, det.model_path, det.meta)
        write_zoo_entry(z, ocr.name, ocr.model_path, ocr.meta)
        mutate(z / ocr.name)
        return z

    z = zoo_with("bad_json", lambda f: (f / f"{ocr.name}.json").write_text("{ not json"))
    with pytest.raises(ZooError, match=rf"{ocr.name}\.json: not valid JSON"):
        Predictor(z)
    z = zoo_with("corrupt_onnx", lambda f: (f / f"{ocr.name}.onnx").write_bytes(b"\x08\x01garbage" * 100))
    with pytest.raises(ZooError, match=rf"{ocr.name}\.onnx: sha256 [0-9a-f]{{64}} does not match"):
        Predictor(z)
    with pytest.raises(ZooError, match=rf"{ocr.name}\.onnx: not a loadable ONNX model"):
        Predictor(z, verify_models=False)
    z = zoo_with("missing_onnx", lambda f: (f / f"{ocr.name}.onnx").unlink())
    with pytest.raises(ZooError, match=rf"its model file .*{ocr.name}\.onnx does not exist"):
        Predictor(z)

    def strip_metadata(folder: Path) -> None:
        import onnx

        path = folder / f"{ocr.name}.onnx"
        model = onnx.load(str(path))
        del model.metadata_props[:]
        onnx.save(model, str(path))

    z = zoo_with("no_metadata", strip_metadata)
    with pytest.raises(ZooError, match=rf"{ocr.name}\.onnx: no 'lpr\.\*' metadata"):
        Predictor(z, verify_models=False)
    # The CLI says the same in one line (after the unverified-model warning) and exits 2.
    out = run_cli(str(PROJECT_ROOT / "README.md"), "--zoo", str(z), "--allow-unverified")
    assert out.returncode == 2 and out.stderr.count("\n") == 2 and "no 'lpr.*' metadata" in out.stderr


def test_default_zoo_error_names_the_folder():
    try:
        scan_zoo(DEFAULT_ZOO)
    except ZooError:
        with pytest.raises(ZooError, match=f"default model zoo: {DEFAULT_ZOO}"):
            Predictor()
    else:
        pytest.skip(f"{DEFAULT_ZOO} holds models (test_trained_zoo covers it)")


def test_metadata_key_in_the_model_json_serves_non_onnx_models(dev_zoo, tmp_path):
    """A HEF entry carries its metadata as an "LPR" object in its JSON (there is no ONNX to read);
    the export stage writes that object into ONNX entries too, where it must agree with the file."""
    det, ocr = find_models(dev_zoo)
    z = tmp_path / "hef_zoo"
    folder = write_zoo_entry(z, ocr.name, ocr.model_path, ocr.meta)
    spec = json.loads((folder / f"{ocr.name}.json").read_text())
    lpr = spec.pop("LPR")
    assert lpr == ocr.meta.to_json_object()
    (folder / f"{ocr.name}.onnx").rename(folder / f"{ocr.name}.hef")
    spec["MODEL_PARAMETERS"][0]["ModelPath"] = f"{ocr.name}.hef"
    (folder / f"{ocr.name}.json").write_text(json.dumps(spec))
    with pytest.raises(ZooError, match="is not ONNX and the JSON has no 'LPR' object"):
        scan_zoo(z)
    spec["LPR"] = lpr
    (folder / f"{ocr.name}.json").write_text(json.dumps(spec))
    (entry,) = scan_zoo(z)
    assert entry.meta == ocr.meta and not entry.is_onnx
    # An ONNX entry whose JSON describes another model is stale: one clear error.
    stale = write_zoo_entry(tmp_path / "stale_zoo", det.name, det.model_path, det.meta)
    spec = json.loads((stale / f"{det.name}.json").read_text())
    spec["LPR"]["letterbox_fill"] = 0
    (stale / f"{det.name}.json").write_text(json.dumps(spec))
    with pytest.raises(ZooError, match=rf"{det.name}\.json: its 'LPR' object differs from the metadata in"):
        scan_zoo(tmp_path / "stale_zoo")


@pytest.mark.slow
def test_int8_models_run_and_are_chosen_by_precision(dev_zoo, tmp_path):
    from export.quantize import quantize_int8

    det, ocr = find_models(dev_zoo)
    z = tmp_path / "zoo"
    write_zoo_entry(z, det.name, det.model_path, det.meta)
    write_zoo_entry(z, ocr.name, ocr.model_path, ocr.meta)
    int8_name = det.name.replace("_float_", "_quant_")
    quantized = tmp_path / "det_int8.onnx"
    quantize_int8(det.model_path, quantized, [preprocess(make_scene(i, 2)[0], det.meta)[0] for i in range(2)])
    write_zoo_entry(z, int8_name, quantized, replace(det.meta, precision="int8"))
    assert find_models(z)[0].meta.precision == "fp32"  # several of a kind: fp32 unless asked
    write_zoo_entry(z, det.name + "_copy", det.model_path, det.meta)
    with pytest.raises(ZooError, match="several plate_det models"):
        find_models(z)
    with Predictor(z, "onnx", UNTRAINED, precision=None, det_model=int8_name) as p:
        plates = p.predict(make_scene(0, 2)[0])
    assert p.backend.det.meta.precision == "int8" and all(isinstance(pl.text, str) for pl in plates)


# -- backends ----------------------------------------------------------------------------------------


def test_backends_agree_on_raw_outputs_and_plates(dev_zoo, scenes):
    why = degirum_unavailable()
    if why:
        pytest.skip(why)
    images = [cv2.imread(str(p)) for p in sorted(scenes.glob("scene[0-4].jpg"))]
    with Predictor(dev_zoo, "onnx", UNTRAINED) as a, Predictor(dev_zoo, "degirum", UNTRAINED) as b:
        assert b.backend.det_raw and b.backend.ocr_raw  # ONNX models: DeGirum's post-processing off
        for image in images + [image[:333, :517] for image in images[:2]]:
            x, _ = preprocess(image, a.det_meta)
            np.testing.assert_allclose(b.backend.raw_detect_image(image), a.backend.raw_detect(x), atol=1e-5)
        onnx_results = [r.to_dict() for r in a.run(images)]
        degirum_results = [r.to_dict() for r in b.run(images)]
    assert onnx_results == degirum_results
    assert sum(len(r["plates"]) for r in onnx_results) >= len(images)


def test_degirum_postprocessor_boxes_match_ours(dev_zoo, scenes):
    """DeGirum's own DetectionYoloV8 post-processing (used for HEFs) finds the same plate boxes."""
    why = degirum_unavailable()
    if why:
        pytest.skip(why)
    cfg = PipelineConfig(det_conf=0.0123, max_plates=5, ocr_conf=0.99)
    image = cv2.imread(str(scenes / "scene1.jpg"))
    with Predictor(dev_zoo, "onnx", cfg) as a, Predictor(dev_zoo, "degirum", cfg, postprocess="degirum") as b:
        assert not b.backend.det_raw
        ours, theirs = a.detect(image), b.detect(image)
    assert len(ours) and len(theirs)
    from runtime.geometry import iou_matrix

    best = iou_matrix(theirs.boxes, ours.boxes).max(axis=1)
    assert (best > 0.95).mean() >= 0.8, best


# -- command line ------------------------------------------------------------------------------------


def test_cli_json_lines_save_and_exit_status(dev_zoo, scenes, tmp_path):
    out_dir = tmp_path / "annotated"
    out = run_cli(
        str(scenes),
        "--zoo",
        str(dev_zoo),
        "--json",
        "--save",
        str(out_dir),
        "--det-conf",
        "0.005",
        "--ocr-conf",
        "0.0001",
        "--set",
        "max_plates=3",
        "--region",
        "br",
    )
    assert out.returncode == 1, out.stderr  # two unreadable images
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 7 and [d["frame"] for d in lines] == list(range(7))
    assert all(list(d)[:3] == ["source", "frame", "plates"] for d in lines)
    assert [d.get("error") is not None for d in lines] == [False] * 5 + [True] * 2
    assert "scene5_corrupt.jpg" in lines[5]["error"]
    assert "7 images" in out.stderr and "2 unreadable" in out.stderr
    saved = sorted(p.name for p in out_dir.iterdir())
    assert saved == [f"scene{i}.jpg" for i in range(5)]
    assert cv2.imread(str(out_dir / "scene0.jpg")).shape == cv2.imread(str(scenes / "scene0.jpg")).shape
    # Plain text output, a glob, one line per image.
    out = run_cli(str(scenes / "scene[0-1].jpg"), "--zoo", str(dev_zoo))
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 2 and "scene0.jpg: no plates" in out.stdout


def test_cli_bad_source_is_one_clear_error(dev_zoo, tmp_path):
    out = run_cli(str(tmp_path / "missing.jpg"), "--zoo", str(dev_zoo))
    assert out.returncode == 2 and "missing.jpg: no such file or folder" in out.stderr
    out = run_cli(str(tmp_path / "*.png"), "--zoo", str(dev_zoo))
    assert out.returncode == 2 and "matches no image files" in out.stderr
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 64)
    out = run_cli(str(tmp_path / "clip.mp4"), "--zoo", str(dev_zoo))
    assert out.returncode == 2 and "clip.mp4: cannot open the video file" in out.stderr


def test_runtime_never_imports_heavy_packages(dev_zoo, scenes, tmp_path):
    code = f"""
import json, sys
from runtime import Predictor, PipelineConfig
from runtime.cli import main
from runtime.rules import load_rules
cfg = PipelineConfig(det_conf=0.005, ocr_conf=0.0001, max_plates=2, region="br", det_contained=0.0)
with Predictor({str(dev_zoo)!r}, "onnx", cfg) as p:
    n = sum(len(r.plates) for r in p.run({str(scenes)!r}))
main([{str(scenes / "scene0.jpg")!r}, "--zoo", {str(dev_zoo)!r}, "--json"])
try:
    import degirum  # noqa
    with Predictor({str(dev_zoo)!r}, "degirum", cfg) as p:
        p.predict(__import__("cv2").imread({str(scenes / "scene1.jpg")!r}))
except Exception as e:
    print("degirum part skipped:", e, file=sys.stderr)
print(json.dumps({{"plates": n, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.splitlines()[-1])
    assert report["plates"] > 0
    assert report["heavy"] == []


def test_benchmark_prints_one_json_object(dev_zoo, scenes):
    out = run_cli(
        str(scenes / "scene[0-3].jpg"),
        "--zoo",
        str(dev_zoo),
        "--frames",
        "4",
        "--repeat",
        "1",
        "--warmup",
        "1",
        "--det-conf",
        "0.005",
        "--ocr-conf",
        "0.0001",
        "--set",
        "max_plates=2",
        "--set",
        "det_contained=0",
        module="runtime.bench",
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for key in ("frames", "plates_per_frame", "pipeline_fps", "naive_fps", "detector_only_fps", "rss_mb"):
        assert result[key] > 0, key
    assert result["frames"] == 4 and result["plates_per_frame"] == 2
    assert result["rss_mb"] < 1000


# -- real photographs and trained models -------------------------------------------------------------


@pytest.mark.shared_data
def test_real_photographs(shared_datasets, predictor):
    paths = sorted((shared_datasets / "ro_lp" / "images").rglob("*.jpg"))[:3]
    paths += sorted((shared_datasets / "uc3m_lp" / "images").rglob("*.jpg"))[:3]
    if not paths:
        pytest.skip("no ro_lp / uc3m_lp images found")
    results = list(predictor.run(paths))
    assert [r.source for r in results] == [str(p) for p in paths]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    for r, p in zip(results, paths, strict=True):
        h, w = cv2.imread(str(p)).shape[:2]
        assert all(0 <= pl.box[0] <= pl.box[2] <= w and 0 <= pl.box[1] <= pl.box[3] <= h for pl in r.plates)


def test_trained_zoo(shared_datasets):
    """The models shipped in runtime/zoo read real plates, through both backends alike."""
    try:
        find_models(DEFAULT_ZOO)
    except ZooError as e:
        pytest.skip(f"no trained models in the package yet ({e})")
    from runtime.geometry import iou_matrix

    # uc3m_lp's validation split (openalpr_br_endtoend is kept for evaluate/ alone).
    labels = shared_datasets / "uc3m_lp" / "labels.jsonl"
    items = [d for d in map(json.loads, labels.read_text().splitlines()) if d.get("split") == "val"][:10]
    paths = [labels.parent / it["image"] for it in items]
    with Predictor() as p:
        results = list(p.run(paths))
    found = 0
    for it, r in zip(items, results, strict=True):
        truth = np.array([pl["box"] for pl in it["plates"]], np.float32)
        pred = np.array([pl.box for pl in r.plates], np.float32).reshape(-1, 4)
        found += bool(len(pred)) and iou_matrix(truth, pred).max() > 0.5
    # A wiring check (real models, real plates found), not the quality bar: the shipped early
    # detector finds about half of these small plates; measured numbers live in zoo/MODEL_CARD.md.
    assert found >= 3, f"the detector found {found} of {len(items)} labelled plates"
    if degirum_unavailable() is None:
        with Predictor(backend="degirum") as d:
            assert [r.to_dict() for r in d.run(paths[:3])] == [r.to_dict() for r in results[:3]]
