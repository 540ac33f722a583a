"""Assemble and check a Hailo DFC bundle for one exported model and one target.

<out>/
  bundle.json                   what the runner needs: nodes, shapes, files, versions
  <net>.onnx                    the model, copied (the bundle travels to the DFC machine alone)
  <net>.alls.template           annotated model script, {{placeholders}} for the parser's layer names
  nms_config.json.template      yolov8 NMS config (only when NMS runs on the chip)
  calib.npy                     float32 (N, H, W, 3) RGB 0..255, letterboxed as in training
  calib_contact_sheet.png       what the DFC calibrates on
  calib_sources.txt             which manifest line each calibration frame came from
  run_dfc.py                    translate -> resolve names -> optimize -> compile (hailo_sdk_client)
  README.md                     the same with the `hailo` CLI, versions, DeGirum use
  degirum/<model>.json.template DeGirum zoo entry for the HEF (checksum filled in by the runner)
  degirum/labels_<model>.json
  build/                        written by run_dfc.py: HARs, final .alls / NMS JSON, HEF, log, report
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compile import calibration, degirum_zoo, graph, model_script, nms_config
from compile.errors import BundleError
from compile.graph import HeadSpec
from compile.readme import write_readme
from runtime.metadata import ModelMetadata, ModelMetadataError, read_onnx_metadata
from stage.files import sha256_file

RUNNER_SOURCE = Path(__file__).with_name("dfc_runner.py")
BUNDLE_SCHEMA = 1


@dataclass
class Bundle:
    dir: Path
    spec: dict[str, Any]
    head: HeadSpec
    meta: ModelMetadata
    calibration: calibration.CalibrationSet | None

    @property
    def runner(self) -> Path:
        return self.dir / "run_dfc.py"

    def file(self, key: str) -> Path:
        return self.dir / self.spec["files"][key]


def read_model(path: str | Path) -> tuple[ModelMetadata, HeadSpec]:
    """The model's metadata and head, cross-checked; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such ONNX model (export one with `python -m export`)")
    try:
        meta = read_onnx_metadata(p)
    except ModelMetadataError as e:
        raise BundleError(
            f"{e} (the compile stage reads the model's task, classes and input size from it; "
            "export the model with `python -m export`)"
        ) from None
    head = graph.analyse(p, num_classes=meta.num_classes)
    problems = []
    if (head.input_height, head.input_width) != (meta.input_height, meta.input_width):
        problems.append(
            f"graph input {head.input_height}x{head.input_width} != metadata "
            f"{meta.input_height}x{meta.input_width}"
        )
    if sorted(meta.strides) != head.strides:
        problems.append(f"graph strides {head.strides} != metadata strides {meta.strides}")
    if problems:
        raise BundleError(f"{p}: model metadata and graph disagree: " + "; ".join(problems))
    return meta, head


def base_name(meta: ModelMetadata) -> str | None:
    """The model's own name without the zoo suffix: ``yolov8n_relu6_plate_det`` from the exported
    ``yolov8n_relu6_plate_det--640x640_float_onnx_cpu_1`` (None when the metadata names none)."""
    return meta.model_name.split("--", 1)[0] if meta.model_name else None


def model_version(meta: ModelMetadata) -> int:
    """The trailing ``_<version>`` of the exported model's zoo name (1 when it has none)."""
    m = re.search(r"_(\d+)$", meta.model_name or "")
    return int(m.group(1)) if m and "--" in (meta.model_name or "") else 1


def net_name_for(meta: ModelMetadata, override: str | None = None) -> str:
    """A DFC network name: letters, digits and underscores, starting with a letter; from the
    model's metadata (its base name), never from the input file's name."""
    raw = override or base_name(meta) or meta.task
    name = re.sub(r"[^A-Za-z0-9_]+", "_", raw).strip("_")
    if not name or not name[0].isalpha():
        name = f"net_{name}"
    return name


def _check_out(out: Path) -> None:
    """``out`` must be new, empty, or an earlier bundle (which a successful build replaces)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "bundle.json").is_file())):
        raise BundleError(f"{out}: exists, is not empty and holds no bundle.json; choose another out=")


def check_opset(onnx_path: str | Path, head: HeadSpec, cfg: Mapping[str, Any]) -> None:
    """The model's ONNX opset must be one the DFC parser is known to take (cfg dfc_onnx_opsets)."""
    known = [int(v) for v in cfg["dfc_onnx_opsets"]]
    if head.opset not in known:
        raise BundleError(
            f"{onnx_path}: ONNX opset {head.opset}, but the Hailo DFC {cfg['dfc_major']}.x parser is "
            f"known to take opset {' or '.join(map(str, known))} (conf/compile.yaml dfc_onnx_opsets); "
            f"re-export with `python -m export weights=... onnx_export.opset={known[0]}`"
        )


def build(onnx_path: str | Path, out: str | Path, cfg: Mapping[str, Any]) -> Bundle:
    """Write a complete bundle for ``onnx_path`` into ``out``; ``cfg`` is conf/compile.yaml composed."""
    meta, head = read_model(onnx_path)
    check_opset(onnx_path, head, cfg)
    task_cfg = cfg["tasks"].get(meta.task)
    if task_cfg is None:
        raise BundleError(f"conf/compile.yaml has no tasks.{meta.task} section")
    batch = task_cfg.get("batch_size", 1)
    if not isinstance(batch, int) or batch < 1:
        raise BundleError(f"tasks.{meta.task}.batch_size={batch}: must be a whole number, at least 1")
    net = net_name_for(meta, cfg.get("net_name"))
    out = Path(out)
    _check_out(out)
    # Build beside the destination and swap in at the end: a failure half-way (too few calibration
    # images, a bad option) leaves an earlier bundle untouched and no half-written folder.
    work = out.parent / f".{out.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        bundle = _write(Path(onnx_path), work, cfg, meta, head, net, task_cfg)
        check(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    bundle.dir = out
    calib = bundle.calibration
    calib.path = out / calib.path.name
    if calib.contact_sheet is not None:
        calib.contact_sheet = out / calib.contact_sheet.name
    return bundle


def _tuned_post(onnx_path: Path) -> dict[str, Any] | None:
    """The POST_PROCESS of the exported entry's JSON beside the ONNX (tuned by the export stage
    with DeGirum's post-processor), or None when the ONNX has no zoo JSON beside it."""
    sibling = Path(onnx_path).with_suffix(".json")
    try:
        spec = json.loads(sibling.read_text())
        post = spec["POST_PROCESS"][0]
    except (OSError, json.JSONDecodeError, KeyError, IndexError, TypeError):
        return None
    return post if isinstance(post, dict) else None


def _write(
    onnx_path: Path,
    out: Path,
    cfg: Mapping[str, Any],
    meta: ModelMetadata,
    head: HeadSpec,
    net: str,
    task_cfg: Mapping[str, Any],
) -> Bundle:
    target = cfg["target"]

    onnx_name = f"{net}.onnx"
    shutil.copyfile(onnx_path, out / onnx_name)

    calib_cfg = cfg["calib"]
    manifest = calib_cfg.get("manifest") or cfg["calib_sets"][meta.task]["manifest"]
    sheet = calib_cfg["contact_sheet"]
    calib = calibration.build(
        manifest,
        meta,
        out,
        size=int(calib_cfg["size"]),
        min_size=int(calib_cfg["min_size"]),
        splits=list(calib_cfg["splits"]) if calib_cfg.get("splits") else None,
        seed=int(calib_cfg["seed"]),
        sheet_n=int(sheet["n"]),
        sheet_columns=int(sheet["columns"]),
        sheet_tile=int(sheet["tile"]),
    )

    nms_on_chip = bool(task_cfg["nms_on_chip"])
    script = model_script.build(meta, head, cfg["model_script"], nms_on_chip, calib.count)
    script_name = f"{net}.alls.template"
    (out / script_name).write_text(script)

    files = {
        "onnx": onnx_name,
        "model_script_template": script_name,
        "calibration": "calib.npy",
        "calibration_sources": "calib_sources.txt",
        "contact_sheet": "calib_contact_sheet.png",
        "runner": "run_dfc.py",
        "readme": "README.md",
    }
    if nms_on_chip:
        nms = nms_config.build(head, task_cfg)
        (out / "nms_config.json.template").write_text(json.dumps(nms, indent=2) + "\n")
        files["nms_config_template"] = "nms_config.json.template"

    zoo_name, zoo_entry, labels = degirum_zoo.build(
        meta,
        head,
        net,
        target,
        nms_on_chip,
        task_cfg,
        version=model_version(meta),
        tuned=_tuned_post(onnx_path),
    )
    (out / "degirum").mkdir(exist_ok=True)
    (out / "degirum" / f"{zoo_name}.json.template").write_text(json.dumps(zoo_entry, indent=2) + "\n")
    (out / "degirum" / f"labels_{zoo_name}.json").write_text(json.dumps(labels, indent=2) + "\n")

    shutil.copyfile(RUNNER_SOURCE, out / "run_dfc.py")

    spec = {
        "schema": BUNDLE_SCHEMA,
        "net_name": net,
        "task": meta.task,
        "names": meta.names,
        "hw_arch": target["hw_arch"],
        "target": target["name"],
        "source_onnx": Path(onnx_path).name,  # by name: nothing of the build machine in the bundle
        "onnx_sha256": sha256_file(out / onnx_name),
        "onnx_opset": head.opset,
        "activation": head.activation,  # as read from the graph's ops (Clip = ReLU6, Sigmoid*x = SiLU)
        "activation_metadata": meta.activation,
        "start_node": head.start_node,
        "input_shape": list(head.input_shape),
        "detect_layer_index": head.detect_index,
        "reg_max": head.reg_max,
        "num_classes": head.num_classes,
        "strides": head.strides,
        "end_nodes": [
            {
                "key": n.key,
                "onnx_node": n.onnx_node,
                "output": n.output,
                "branch": n.branch,
                "stride": n.stride,
                "channels": n.channels,
                "shape": list(n.shape),
            }
            for n in head.end_nodes
        ],
        "stem": head.stem
        and {
            "key": head.stem.key,
            "onnx_node": head.stem.onnx_node,
            "output": head.stem.output,
            "channels": head.stem.channels,
            "shape": list(head.stem.shape),
        },
        "nms_on_chip": nms_on_chip,
        "letterbox_fill": meta.letterbox_fill,
        "calibration": {
            "count": calib.count,
            "shape": list(calib.shape),
            "dtype": "float32",
            "value_range": list(calib.value_range),
            "manifest": calibration.shown_path(calib.manifest),
            "splits": calib_cfg.get("splits") and list(calib_cfg["splits"]),
            "skipped": dict(calib.skipped),
        },
        "noise_analysis": {k: cfg["noise_analysis"][k] for k in ("enabled", "batch_size", "data_count")},
        "dfc": {"major": int(cfg["dfc_major"]), "hailort_pairs": dict(target["dfc_hailort_pairs"])},
        "degirum": {
            "model_name": zoo_name,
            "template": f"degirum/{zoo_name}.json.template",
            "postprocess": zoo_entry["POST_PROCESS"][0]["OutputPostprocessType"],
            # Where the thresholds and suppression switches came from.
            "post_process_from": Path(onnx_path).with_suffix(".json").name
            if _tuned_post(onnx_path)
            else "conf/compile.yaml",
        },
        "files": files,
    }
    (out / "bundle.json").write_text(json.dumps(spec, indent=2) + "\n")
    bundle = Bundle(dir=out, spec=spec, head=head, meta=meta, calibration=calib)
    write_readme(out, spec, head, cfg["target"])
    return bundle


def template_placeholders(spec: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Placeholders the model script and NMS templates may use."""
    keys = {e["key"] for e in spec["end_nodes"]}
    script = keys | {"nms_config"} | ({"stem"} if spec.get("stem") else set())
    nms = keys | {"net"} | {f"decoder_{e['key']}" for e in spec["end_nodes"] if e["branch"] == "box"}
    return script, nms


def check(bundle_dir: str | Path) -> dict[str, Any]:
    """Re-read a bundle and check every file against the model; raises :class:`BundleError`."""
    d = Path(bundle_dir)
    spec = json.loads((d / "bundle.json").read_text())
    problems: list[str] = []
    for key, name in spec["files"].items():
        if not (d / name).is_file():
            problems.append(f"files.{key}: {name} is missing")
    if problems:
        raise BundleError(f"{d}: " + "; ".join(problems))
    onnx_path = d / spec["files"]["onnx"]
    meta, head = read_model(onnx_path)
    if sha256_file(onnx_path) != spec["onnx_sha256"]:
        problems.append("the ONNX model changed since the bundle was written")
    recorded = {(e["key"], e["onnx_node"], e["channels"], e["stride"]) for e in spec["end_nodes"]}
    actual = {(n.key, n.onnx_node, n.channels, n.stride) for n in head.end_nodes}
    if recorded != actual:
        problems.append(f"end nodes in bundle.json {sorted(recorded)} != graph {sorted(actual)}")
    stem = head.stem and (head.stem.onnx_node, head.stem.channels)
    if (spec.get("stem") and (spec["stem"]["onnx_node"], spec["stem"]["channels"])) != stem:
        problems.append(f"stem in bundle.json {spec.get('stem')} != graph {stem}")
    if spec["input_shape"] != list(head.input_shape) or spec["start_node"] != head.start_node:
        problems.append("start node / input shape differ from the graph")

    script_ph, nms_ph = template_placeholders(spec)
    text = (d / spec["files"]["model_script_template"]).read_text()
    try:
        commands = model_script.validate(
            text, allow_placeholders=True, placeholders=script_ph, require_comments=True
        )
    except model_script.ModelScriptError as e:
        problems.append(str(e))
        commands = []
    names = [c.name for c in commands]
    if spec["nms_on_chip"] != ("nms_postprocess" in names):
        problems.append(
            f"nms_on_chip={spec['nms_on_chip']} but the model script "
            f"{'lacks' if spec['nms_on_chip'] else 'has'} nms_postprocess"
        )
    for c in commands:
        if c.name == "model_optimization_config" and c.args[:1] == ["calibration"]:
            if int(c.kwargs.get("calibset_size", -1)) != spec["calibration"]["count"]:
                problems.append(
                    f"calibset_size {c.kwargs.get('calibset_size')} != calib.npy rows "
                    f"{spec['calibration']['count']}"
                )

    if spec["nms_on_chip"]:
        raw = (d / spec["files"]["nms_config_template"]).read_text()
        used = set(model_script.PLACEHOLDER.findall(raw))
        if used - nms_ph:
            problems.append(f"NMS template uses unknown placeholders {sorted(used - nms_ph)}")
        try:
            nms_config.check(json.loads(raw), head)
        except nms_config.NmsConfigError as e:
            problems.append(str(e))

    calib = np.load(d / spec["files"]["calibration"], mmap_mode="r")
    expected = (spec["calibration"]["count"], head.input_height, head.input_width, 3)
    if calib.dtype != np.float32 or calib.shape != expected:
        problems.append(f"calib.npy is {calib.dtype} {calib.shape}, expected float32 {expected}")
    zoo = json.loads((d / spec["degirum"]["template"]).read_text())
    post = zoo["POST_PROCESS"][0]
    if post["OutputNumClasses"] != head.num_classes:
        problems.append("DeGirum OutputNumClasses differs from the model")
    if (post["OutputPostprocessType"] == "DetectionYoloHailo") != spec["nms_on_chip"]:
        problems.append("DeGirum post-process type does not match nms_on_chip")
    lpr = zoo.get(degirum_zoo.METADATA_KEY)
    try:
        hef_meta = (
            ModelMetadata.from_json_object(lpr, source="DeGirum template") if isinstance(lpr, dict) else None
        )
    except ModelMetadataError as e:
        problems.append(str(e))
        hef_meta = None
    if (
        hef_meta is None
        or (hef_meta.task, hef_meta.names) != (spec["task"], spec["names"])
        or (hef_meta.input_height, hef_meta.input_width) != (head.input_height, head.input_width)
    ):
        problems.append(
            f"the DeGirum template's '{degirum_zoo.METADATA_KEY}' object is missing or does not "
            "describe this model (task, names, input size)"
        )
    if problems:
        raise BundleError(f"{d}: bundle check failed:\n  " + "\n  ".join(problems))
    return spec
