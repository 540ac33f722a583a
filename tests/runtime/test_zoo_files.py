"""The shipped zoo (runtime/zoo) holds nothing of the machine that built it, is what the export
stage's generator writes, and the runtime runs ONNX or HEF models only (never a pickle)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ZOO = PROJECT_ROOT / "runtime" / "zoo"
# An absolute POSIX path starts with a folder that exists at this machine's root (ONNX node names
# such as /model.0/conv/Conv do not), or a Windows drive.
ROOTS = {p.name for p in Path("/").iterdir()}
POSIX = re.compile(r"(?<![\w.:/~-])/([A-Za-z0-9_.-]+)/")
WINDOWS = re.compile(r"\b[A-Za-z]:\\[^\s]")


def machine_paths(text: str) -> list[str]:
    found = [m.group(0) for m in POSIX.finditer(text) if m.group(1) in ROOTS]
    return found + [m.group(0) for m in WINDOWS.finditer(text)]


def test_machine_paths_finds_what_it_should():
    assert machine_paths('"weights": "/work/r10/gpu1/det_best.pt"') == ["/work/"]
    assert machine_paths("trained on /tmp/lpr_runs/data.yaml") == ["/tmp/"]
    assert machine_paths(r"C:\Users\me\best.pt")
    assert not machine_paths("see https://docs.ultralytics.com/x and /model.22/cv2.0/Conv, a/b/c")


def test_no_absolute_path_in_the_shipped_zoo():
    import onnx

    texts = {f: f.read_text() for f in ZOO.rglob("*") if f.suffix in (".json", ".md", ".yaml", ".txt")}
    for f in ZOO.rglob("*.onnx"):
        props = onnx.load(str(f), load_external_data=False).metadata_props
        texts[f] = "\n".join(f"{p.key}={p.value}" for p in props)
    assert len([f for f in texts if f.suffix == ".onnx"]) >= 4  # both models, fp32 and int8 (and more shapes)
    leaks = {str(f.relative_to(ZOO)): machine_paths(t) for f, t in texts.items() if machine_paths(t)}
    assert not leaks, leaks


def test_no_pickles_in_the_shipped_zoo():
    suffixes = {f.suffix for f in ZOO.rglob("*") if f.is_file()}
    assert suffixes <= {".onnx", ".json", ".md"}, suffixes


def test_shipped_json_is_what_the_generator_writes():
    """Each entry's JSON equals export.zoo.degirum_config for its model with conf/export.yaml's
    settings; only the post-processing keys the DeGirum sweep chose may differ from the defaults,
    and the sweep that chose them is in the entry's export_report.json (fp32 entries)."""
    from export.degirum_tune import PostSetting
    from export.run import default_post
    from export.zoo import degirum_config, entry_paths
    from runtime.metadata import read_onnx_metadata
    from stage.config import compose

    cfg = compose("export")
    tuned_keys = set(PostSetting(True, 1, 0.3, 0.6).json_keys())
    folders = sorted(p for p in ZOO.iterdir() if p.is_dir())
    assert len(folders) >= 4  # both models, fp32 and int8 (and the detector at more input shapes)
    for folder in folders:
        entry = entry_paths(ZOO, folder.name)
        shipped = json.loads(entry.config.read_text())
        meta = read_onnx_metadata(entry.model)
        task = meta.task
        post = {**default_post(cfg, task), **{k: shipped["POST_PROCESS"][0][k] for k in tuned_keys}}
        generated = degirum_config(
            entry,
            meta,
            float(cfg.zoo.conf_threshold),
            float(cfg.zoo.nms_threshold),
            int(cfg.zoo.max_detections[task]),
            int(cfg.zoo.config_version),
            post,
        )
        assert shipped == generated, folder.name
        report = json.loads((folder / "export_report.json").read_text())
        tune = report["degirum"]["tune"]
        chosen = {k: shipped["POST_PROCESS"][0][k] for k in tuned_keys}
        assert tune["chosen"] == chosen and tune["split"] == "train"
        assert any(all(r[k] == v for k, v in chosen.items()) for r in tune["rows"])
    ocr = [f for f in folders if "_ocr" in f.name]
    for folder in ocr:  # the O/0 duplicates: one suppression over all classes
        post = json.loads(entry_paths(ZOO, folder.name).config.read_text())["POST_PROCESS"][0]
        assert post["UseRegularNMS"] is False


def test_runtime_refuses_a_model_that_is_not_onnx_or_hef(tmp_path):
    from runtime.model_zoo import ZooError, read_model_entry

    src = next(p for p in ZOO.iterdir() if "_ocr" in p.name and "_float_" in p.name)
    entry = tmp_path / src.name
    shutil.copytree(src, entry)
    config = entry / f"{src.name}.json"
    spec = json.loads(config.read_text())
    checkpoint = entry / "yolov8n_relu6_plate_ocr.pt"
    checkpoint.write_bytes(b"\x80\x04not a model")  # a pickle's first bytes
    spec["MODEL_PARAMETERS"][0]["ModelPath"] = checkpoint.name
    config.write_text(json.dumps(spec))
    with pytest.raises(
        ZooError, match=r"\.json: its model file yolov8n_relu6_plate_ocr\.pt is not ONNX or HEF"
    ):
        read_model_entry(config)
