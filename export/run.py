"""The export stage: weights -> checked ONNX + DeGirum zoo entry (+ int8 proxy entry), with proof.

    result = export_model(compose("export", ["weights=best.pt", "out=zoo"]))
    result.fp32.model, result.int8.model, result.report

Each entry folder also holds ``export_report.json``: where the model came from (weights and
their hash, training set hash), parity numbers, int8 agreement and size/latency, and the DeGirum
round trip (with the letterbox fill set to 114, and what black padding would cost).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from export.checks import (
    benchmark,
    compare_onnx,
    degirum_agreement,
    degirum_available,
    parity,
    sample_images,
)
from export.errors import ParityError
from export.onnx_export import (
    ExportError,
    LoadedWeights,
    build_metadata,
    check_graph,
    export_onnx,
    load_weights,
    write_metadata,
)
from export.zoo import ZooEntry, check_entry, entry_paths, model_name, portable, write_entry
from runtime.backends.base import preprocess
from stage.files import sha256_file
from stage.runs import output_dir


@dataclass
class ExportResult:
    zoo: Path
    fp32: ZooEntry
    int8: ZooEntry | None
    report: dict[str, Any]


def base_name(cfg: DictConfig, w: LoadedWeights) -> str:
    if cfg.get("name"):
        return str(cfg.name)
    m = w.model_cfg
    return f"{m.architecture}_{w.activation}_{m.name}"


def _images(cfg: DictConfig, task: str, split: str, count: int, meta, scratch: Path, seed: int = 0):
    source = cfg.images.get(task)
    return sample_images(
        str(source) if source else None, task, split, int(count), cfg.paths, meta, seed=seed, scratch=scratch
    )


def export_model(cfg: DictConfig) -> ExportResult:
    from train import offline
    from train.publish import training_set_hash

    if OmegaConf.is_missing(cfg, "weights") or not cfg.weights:
        raise ExportError("no weights: give weights=PATH.pt (from python -m train)")
    weights = Path(str(cfg.weights))
    if weights.suffix.lower() != ".onnx":  # (an ONNX file gets its own error from load_weights)
        from train.checkpoints import registry_path, require_trusted

        # Unpickled only when a run here wrote it or the user vouches for it: a .pt can carry code.
        require_trusted(weights, registry_path(cfg), cfg.get("trust_checkpoint", False), "weights")
    offline.prepare(cfg.ultralytics_dir)
    w = load_weights(str(cfg.weights), cfg.get("model"))
    if cfg.get("imgsz") is not None:
        w = with_input_size(w, cfg.imgsz)
    task = str(w.model_cfg.task)
    zoo = output_dir(cfg)
    base = base_name(cfg, w)
    version = int(cfg.zoo.version)
    max_det = int(cfg.zoo.max_detections[task])
    meta = build_metadata(w, "")
    meta.model_name = model_name(base, meta, "fp32", version)
    fp32 = entry_paths(zoo, meta.model_name)
    fp32.folder.mkdir(parents=True, exist_ok=True)
    print(f"export {w.path} ({task}) -> {fp32.folder}")
    export_onnx(w, fp32.model, meta, int(cfg.onnx_export.opset), bool(cfg.onnx_export.simplify))
    post = default_post(cfg, task)
    write_entry(
        fp32,
        meta,
        float(cfg.zoo.conf_threshold),
        float(cfg.zoo.nms_threshold),
        max_det,
        int(cfg.zoo.config_version),
        post,
    )
    check_entry(fp32.config)
    report: dict[str, Any] = {
        "model_name": meta.model_name,
        "task": task,
        # Shipped beside the model: never where the weights lay on the build machine.
        "weights": portable(w.path, fp32.folder),
        "weights_sha256": sha256_file(w.path),
        "training_set_hash": training_set_hash(w.path, w.model.ckpt),
        "metadata": meta.to_props(),
        "opset": int(cfg.onnx_export.opset),
        # Trained at another size than exported is legitimate (CPU profile: detector at 320), but worth
        # seeing.
        "train_imgsz": (w.model.ckpt or {}).get("train_args", {}).get("imgsz"),
    }
    scratch = Path(tempfile.mkdtemp(prefix="lpr_export_"))
    try:
        net = w.model.model.float().eval()
        if cfg.parity.enabled:
            p = cfg.parity
            images = _images(cfg, task, p.split, p.count, meta, scratch)
            result = parity(
                net,
                fp32.model,
                meta,
                images,
                float(p.conf),
                float(p.iou),
                float(p.box_iou),
                float(p.atol_boxes),
                float(p.atol_scores),
            )
            report["parity"] = result.as_dict()
            print(result.line())
            if not result.ok:
                _write_report(fp32, report)
                raise ParityError(
                    f"{fp32.model}: the ONNX model does not reproduce {w.path}: " + "; ".join(result.problems)
                )
        report["benchmark"] = {
            "fp32": benchmark(fp32.model, meta, int(cfg.benchmark.runs), int(cfg.benchmark.threads))
        }

        int8 = None
        if cfg.int8.enabled:
            int8 = _export_int8(cfg, w, fp32, meta, base, version, max_det, post, scratch, report)

        if _degirum_wanted(cfg.degirum.check, zoo):
            report["degirum"] = degirum_report(cfg, task, fp32, int8, meta, scratch)
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    _write_report(fp32, report)
    if int8 is not None:
        _write_report(int8, {**report, "model_name": int8.name, "fp32_model": fp32.name})
    print(summary_text(report, fp32, int8))
    return ExportResult(zoo=zoo, fp32=fp32, int8=int8, report=report)


def with_input_size(w: LoadedWeights, imgsz: Any) -> LoadedWeights:
    """The weights to be exported at ``imgsz`` ([height, width], or one number for a square)."""
    from dataclasses import replace

    from omegaconf import OmegaConf

    size = list(imgsz) if OmegaConf.is_list(imgsz) or isinstance(imgsz, (list, tuple)) else [imgsz, imgsz]
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ExportError(
            f"imgsz={imgsz}: expected [height, width] in pixels, e.g. imgsz=[384,640]"
        ) from None
    stride = max(w.strides)
    if height < stride or width < stride or height % stride or width % stride:
        raise ExportError(
            f"imgsz={imgsz}: height and width must be positive multiples of the model's "
            f"largest stride ({stride})"
        )
    model_cfg = OmegaConf.merge(w.model_cfg, {"input_height": height, "input_width": width})
    return replace(w, model_cfg=model_cfg)


def default_post(cfg: DictConfig, task: str) -> dict[str, Any]:
    """The JSON's DeGirum suppression switches before (or without) degirum.tune."""
    return {
        "UseRegularNMS": bool(cfg.zoo.use_regular_nms[task]),
        "MaxClassesPerDetection": int(cfg.zoo.max_classes_per_detection[task]),
    }


def _export_int8(
    cfg,
    w,
    fp32: ZooEntry,
    meta,
    base: str,
    version: int,
    max_det: int,
    post: dict[str, Any],
    scratch: Path,
    report: dict,
) -> ZooEntry:
    from dataclasses import replace

    from export.quantize import quantize_int8

    task = str(w.model_cfg.task)
    q = cfg.int8
    meta8 = replace(meta, precision="int8")
    meta8.model_name = model_name(base, meta8, "int8", version)
    int8 = entry_paths(fp32.folder.parent, meta8.model_name)
    int8.folder.mkdir(parents=True, exist_ok=True)
    calib = [
        preprocess(img, meta)[0]
        for _, img in _images(cfg, task, q.split, q.calib_images, meta, scratch, seed=1)
    ]
    info = quantize_int8(
        fp32.model,
        int8.model,
        calib,
        per_channel=bool(q.per_channel),
        method=str(q.method),
        float_head=bool(q.float_head),
        float_input_conv=bool(q.float_input_conv),
    )
    write_metadata(int8.model, meta8)
    check_graph(int8.model, meta8)
    write_entry(
        int8,
        meta8,
        float(cfg.zoo.conf_threshold),
        float(cfg.zoo.nms_threshold),
        max_det,
        int(cfg.zoo.config_version),
        post,
    )
    check_entry(int8.config)
    p = cfg.parity
    images = _images(cfg, task, p.split, q.compare_images, meta, scratch)
    info["vs_fp32"] = compare_onnx(
        fp32.model, int8.model, meta, images, float(p.conf), float(p.iou), float(p.box_iou)
    )
    report["int8"] = info
    report["benchmark"]["int8"] = benchmark(
        int8.model, meta8, int(cfg.benchmark.runs), int(cfg.benchmark.threads)
    )
    return int8


def _degirum_wanted(setting, zoo: Path) -> bool:
    if str(setting).lower() == "auto":
        return degirum_available(zoo)
    return bool(setting) and str(setting).lower() != "false"


def _tune_wanted(cfg: DictConfig) -> bool:
    setting = str(cfg.degirum.tune.enabled).lower()
    return setting in ("auto", "true")


def degirum_report(
    cfg: DictConfig, task: str, fp32: ZooEntry, int8: ZooEntry | None, meta, scratch: Path
) -> dict[str, Any]:
    """The export report's ``degirum`` part: the post-processing sweep (its choice written into the
    fp32 and int8 JSON), the round trip of boxes against our decoding, and for the OCR model the
    texts the guide's code reads through DeGirum against our runtime's on real crops."""
    from export import degirum_tune

    out: dict[str, Any] = {}
    if _tune_wanted(cfg):
        tuned = degirum_tune.tune_entry(cfg, task, fp32.config, fp32.model, meta)
        for entry in (fp32, int8):
            if entry is not None:
                degirum_tune.write_chosen(entry.config, tuned["chosen"])
                check_entry(entry.config)
        out["tune"] = tuned
        print(degirum_tune.describe(tuned))
    out.update(_degirum_round_trip(cfg, task, fp32, meta, scratch))
    if task == "plate_ocr" and _tune_wanted(cfg):
        t = cfg.degirum.tune
        # Training crops again (the held-out ones stay for the evaluate stage): agreement, not accuracy.
        samples = degirum_tune.load_samples(
            list(t.sources[task]),
            task,
            str(t.split),
            int(t.count[task]),
            cfg.paths,
            dict(t.split_ratios),
            int(t.seed) + 1,
        )
        agree = degirum_tune.runtime_agreement(fp32.config, fp32.model, meta, samples, int(cfg.degirum.fill))
        out["runtime_text_agreement"] = agree
        print(
            f"DeGirum guide path vs runtime on {agree['crops']} real crops: same text {agree['same_text']}, "
            f"exact {agree['degirum_exact']} (DeGirum) / {agree['runtime_exact']} (runtime)"
        )
    return out


def _degirum_round_trip(cfg, task: str, fp32: ZooEntry, meta, scratch: Path) -> dict:
    """DeGirum PySDK on the zoo entry vs our ONNX Runtime decoding, with fill 114 and with black."""
    p = cfg.parity
    images = _images(cfg, task, p.split, p.count, meta, scratch)
    out = {
        "fill_114": degirum_agreement(
            fp32.config, fp32.model, meta, images, float(p.box_iou), int(cfg.degirum.fill)
        )
    }
    # What DeGirum's default black padding costs against the grey the model was trained with.
    out["fill_0"] = degirum_agreement(fp32.config, fp32.model, meta, images, float(p.box_iou), 0)
    for key in ("fill_114", "fill_0"):
        r = out[key]
        print(
            f"DeGirum ONNX/CPU, letterbox fill {r['fill']}: {r['matched']}/{r['reference']} of our boxes "
            "found, "
            f"{r['other_matched']}/{r['other']} of DeGirum's matched, min IoU {r['min_iou']:.3f}"
        )
    if not out["fill_114"]["ok"]:
        print(
            f"WARNING: DeGirum's results differ from ONNX Runtime's for {fp32.name} (see export_report.json)"
        )
    return out


def _write_report(entry: ZooEntry, report: dict) -> None:
    (entry.folder / "export_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")


def summary_text(report: dict, fp32: ZooEntry, int8: ZooEntry | None) -> str:
    lines = [f"== {fp32.name}: {fp32.folder}"]
    b = report.get("benchmark", {})
    if "fp32" in b:
        lines.append(
            f"fp32: {b['fp32']['size_mb']} MB, {b['fp32']['median_ms']} ms/image (ONNX Runtime, "
            f"{b['fp32']['threads']} threads)"
        )
    if int8 is not None and "int8" in b:
        v = report["int8"]["vs_fp32"]
        lines.append(
            f"int8: {b['int8']['size_mb']} MB, {b['int8']['median_ms']} ms/image; vs fp32 on {v['images']} "
            "images: "
            f"{v['matched']}/{v['reference']} boxes kept, {v['other'] - v['other_matched']} new, "
            f"max score error {v['max_abs_scores']:.3f} -> {int8.folder}"
        )
    return "\n".join(lines)


def check_model(path: str | Path) -> list[str]:
    """action=check: verify an ONNX file or every zoo entry under a folder; returns what was checked."""
    from runtime.metadata import read_onnx_metadata

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    checked = []
    if p.is_dir():
        configs = [c for c in sorted(p.rglob("*.json")) if _is_zoo_config(c)]
        if not configs:
            raise ExportError(f"{p}: no DeGirum zoo entry (<name>.json with a Checksum) under this folder")
        for c in configs:
            _, meta = check_entry(c)
            check_graph(c.parent / json.loads(c.read_text())["MODEL_PARAMETERS"][0]["ModelPath"], meta)
            checked.append(f"{c}: OK ({meta.task}, {meta.input_height}x{meta.input_width}, {meta.precision})")
        return checked
    meta = read_onnx_metadata(p)
    check_graph(p, meta)
    checked.append(f"{p}: OK ({meta.task}, {meta.input_height}x{meta.input_width}, {meta.precision})")
    sibling = p.with_suffix(".json")
    if sibling.is_file() and _is_zoo_config(sibling):
        check_entry(sibling)
        checked.append(f"{sibling}: OK")
    return checked


def _is_zoo_config(path: Path) -> bool:
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(d, dict) and "MODEL_PARAMETERS" in d
