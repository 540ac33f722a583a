"""Train one of the two YOLOv8n models with Ultralytics, from scratch or from earlier weights.

    result = train(compose("train", ["model=plate_ocr", "epochs=1", "out=/tmp/run"]))
    result.best, result.last, result.summary

A run folder holds: ``weights/best.pt`` and ``weights/last.pt``, ``results.csv`` (metrics per
epoch), Ultralytics' PNG plots, ``config.yaml`` (the resolved config), ``training_set.json`` (what
went in and a hash of the exact training set), the model's architecture yaml and
``summary.json``/``summary.txt`` (also printed). OCR runs add a read-out of the validation crops
and ``val_reads.png``.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from stage.runs import output_dir
from train import offline
from train.architecture import lpr_info, write_model_yaml
from train.checkpoints import UntrustedCheckpointError, record_checkpoint, registry_path, require_trusted
from train.errors import TrainError
from train.mix import prepare_data, write_training_set


@dataclass
class TrainResult:
    run_dir: Path
    best: Path
    last: Path
    summary: dict[str, Any]


def ultralytics_args(cfg: DictConfig, data_yaml: Path, run_dir: Path) -> dict[str, Any]:
    """The keyword arguments for ``YOLO.train``: schedule, device, augmentation, where to write."""
    args: dict[str, Any] = {
        "data": str(data_yaml),
        "epochs": int(cfg.epochs),
        "imgsz": int(cfg.imgsz),
        "batch": int(cfg.batch),
        "device": str(cfg.device),
        "workers": int(cfg.workers),
        "amp": bool(cfg.amp),
        "cache": cfg.cache,
        "patience": int(cfg.patience),
        "seed": int(cfg.seed),
        "optimizer": str(cfg.optimizer),
        "lr0": float(cfg.lr0),
        "plots": bool(cfg.plots),
        "val": bool(cfg.val),
        # Nothing pretrained exists here: every model starts from scratch or from `init`.
        "pretrained": False,
        "project": str(run_dir.parent.resolve()),
        "name": run_dir.name,
        "exist_ok": True,
        "verbose": True,
    }
    if cfg.get("time"):
        args["time"] = float(cfg.time)
    args.update(OmegaConf.to_container(cfg.augment, resolve=True))
    return args


def _check_weights(path: Path, task: str):
    """Load weights meant for ``task``; clear errors naming the file otherwise."""
    from ultralytics import YOLO

    if not path.is_file():
        raise TrainError(f"{path}: no such weights file")
    try:
        model = YOLO(str(path), task="detect")
    except Exception as e:  # Ultralytics raises many types for a bad checkpoint
        raise TrainError(f"{path}: not loadable Ultralytics weights ({e})") from None
    info = lpr_info(model)
    if info is not None and info.get("task") != task:
        raise TrainError(f"{path}: weights of a {info.get('task')} model, not {task}")
    return model


def _init_from(model, init: Path, task: str) -> int:
    """Start ``model`` from the tensors of ``init`` that fit (fine-tuning); returns how many."""
    from ultralytics.utils.torch_utils import intersect_dicts

    source = _check_weights(init, task)
    fitting = intersect_dicts(source.model.float().state_dict(), model.model.state_dict())
    if not fitting:
        raise TrainError(f"{init}: no tensor fits this {task} architecture (different model?)")
    return len(fitting)


def _unfinished(last: Path, cfg: DictConfig | None = None) -> bool:
    import torch

    if cfg is not None:  # unpickled only when a run here wrote it (or the user vouches for it)
        require_trusted(last, registry_path(cfg), cfg.get("trust_checkpoint", False), "resume")
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    return ckpt.get("optimizer") is not None and int(ckpt.get("epoch", -1)) >= 0


def _trusted_quietly(last: Path, cfg: DictConfig) -> bool:
    try:
        require_trusted(last, registry_path(cfg), cfg.get("trust_checkpoint", False), "resume")
    except UntrustedCheckpointError as e:
        print(f"skipped: {e}")
        return False
    return True


def find_resume(cfg: DictConfig) -> Path:
    """The last.pt to continue: ``resume=true`` = this model's newest unfinished run."""
    if cfg.resume is True or str(cfg.resume).lower() == "true":
        root = Path(cfg.paths.runs) / "train" / str(cfg.model.name)
        candidates = sorted(root.glob("*/weights/last.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
        for last in candidates:
            if _trusted_quietly(last, cfg) and _unfinished(last, cfg):
                return last
        raise TrainError(
            f"resume=true: no unfinished {cfg.model.name} run under {root} "
            f"({len(candidates)} finished); give resume=RUN_DIR or start a new run"
        )
    path = Path(str(cfg.resume))
    last = path / "weights" / "last.pt" if path.is_dir() else path
    if not last.is_file():
        raise TrainError(f"resume={path}: no {last}")
    if not _unfinished(last, cfg):
        raise TrainError(
            f"resume={path}: that run finished (no optimizer state in {last}); start a new run with "
            f"init={last}"
        )
    return last


def train(cfg: DictConfig, callbacks: dict[str, Callable] | None = None) -> TrainResult:
    """Train as configured; returns the run folder and its weights.

    ``callbacks``: Ultralytics event name -> function(trainer), e.g. to report progress elsewhere."""
    offline.prepare(cfg.ultralytics_dir)
    from ultralytics import YOLO

    from train.heads import head_callbacks  # imports Ultralytics: after its offline settings

    registry = registry_path(cfg)
    if cfg.init:  # checked before any work: a .pt is unpickled only when it is ours or vouched for
        if not Path(str(cfg.init)).is_file():
            raise TrainError(f"{cfg.init}: no such weights file")
        require_trusted(Path(str(cfg.init)), registry, cfg.get("trust_checkpoint", False), "init")
    if cfg.resume:
        last = find_resume(cfg)
        run_dir = last.parent.parent
        saved = OmegaConf.load(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else cfg
        prepared = prepare_data(saved)  # the cached data (rebuilt identically if it was cleaned away)
        print(f"resuming {run_dir} from {last}")
        model = YOLO(str(last), task="detect")
        _record_saves(model, registry)
        _add_callbacks(model, callbacks)
        _add_callbacks(model, head_callbacks(bool(saved_heads(saved).fit_levels), []))  # no re-init on resume
        start = time.time()
        model.train(resume=str(last), device=str(cfg.device), workers=int(cfg.workers))
        return _finish(saved, run_dir, time.time() - start, prepared.train_count, resumed=True)

    run_dir = new_run_dir(cfg)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    prepared = prepare_data(cfg)
    print(prepared.summary())
    write_training_set(prepared, run_dir / "training_set.json")
    model = YOLO(str(write_model_yaml(cfg.model, run_dir)), task="detect")
    _record_saves(model, registry)
    transferred = None
    if cfg.init:
        transferred = _init_from(model, Path(str(cfg.init)), str(cfg.model.task))
        print(f"init: {transferred} tensors from {cfg.init}")
    _add_callbacks(model, callbacks)
    heads = saved_heads(cfg)
    _add_callbacks(model, head_callbacks(bool(heads.fit_levels), list(heads.reinit_strides)))
    start = time.time()
    args = ultralytics_args(cfg, prepared.data_yaml, run_dir)
    if cfg.init:
        # The trainer rebuilds the network from the model's yaml, dropping weights loaded into the
        # YOLO object beforehand (a model made from a yaml has no checkpoint to hand over), so
        # fine-tuning weights go in as the trainer's `pretrained` file, which it loads itself.
        args["pretrained"] = str(cfg.init)
    model.train(**args)
    return _finish(cfg, run_dir, time.time() - start, prepared.train_count, init_tensors=transferred)


def saved_heads(cfg: DictConfig) -> DictConfig:
    """The ``heads`` settings (a run saved before they existed has none: both off)."""
    return OmegaConf.create({"fit_levels": False, "reinit_strides": [], **(cfg.get("heads") or {})})


def new_run_dir(cfg: DictConfig) -> Path:
    """``out=`` when given; else Hydra's run folder; else (API use) a fresh folder under the runs."""
    from hydra.core.hydra_config import HydraConfig

    if cfg.get("out") or HydraConfig.initialized():
        return output_dir(cfg)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = Path(cfg.paths.runs) / "train" / str(cfg.model.name)
    run_dir, k = root / stamp, 1
    while run_dir.exists():
        run_dir, k = root / f"{stamp}-{k}", k + 1
    run_dir.mkdir(parents=True)
    return run_dir


def _record_saves(model, registry: Path) -> None:
    """Every best.pt / last.pt the trainer saves goes into the registry of our own checkpoints."""

    def record(trainer) -> None:
        for path in (getattr(trainer, "last", None), getattr(trainer, "best", None)):
            if path is not None and Path(path).is_file():
                record_checkpoint(path, registry)

    model.add_callback("on_model_save", record)


def _add_callbacks(model, callbacks: dict[str, Callable] | None) -> None:
    for event, fn in (callbacks or {}).items():
        model.add_callback(event, fn)


def read_results(csv_path: Path) -> list[dict[str, float]]:
    if not csv_path.is_file():
        return []
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    return [{k.strip(): float(v) for k, v in row.items() if v not in (None, "")} for row in rows]


def _finish(
    cfg: DictConfig,
    run_dir: Path,
    seconds: float,
    train_images: int,
    resumed: bool = False,
    init_tensors: int | None = None,
) -> TrainResult:
    best, last = run_dir / "weights" / "best.pt", run_dir / "weights" / "last.pt"
    if not best.is_file():
        raise TrainError(f"training ended without {best} (see Ultralytics' output above)")
    for weights in (best, last):  # Ultralytics strips the optimizer from both at the end: new hashes
        if weights.is_file():
            record_checkpoint(weights, registry_path(cfg))
    rows = read_results(run_dir / "results.csv")
    training_set = (
        json.loads((run_dir / "training_set.json").read_text())
        if (run_dir / "training_set.json").is_file()
        else {}
    )
    epochs_run = len(rows)
    summary: dict[str, Any] = {
        "model": str(cfg.model.name),
        "task": str(cfg.model.task),
        "activation": str(cfg.model.activation),
        "run_dir": str(run_dir),
        "best": str(best),
        "last": str(last),
        "resumed": resumed,
        "init": str(cfg.init) if cfg.get("init") else None,
        "init_tensors": init_tensors,
        "epochs": epochs_run,
        "seconds": round(seconds, 1),
        "train_images": train_images,
        # Ultralytics' own clock (training + validation per epoch, without set-up and plots).
        "images_per_second": (
            round(train_images * epochs_run / rows[-1]["time"], 2)
            if rows and rows[-1].get("time") and not resumed
            else None
        ),
        "training_set_hash": training_set.get("train_hash"),
    }
    metric_keys = ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)")
    if rows:
        final = rows[-1]
        best_row = max(rows, key=lambda r: r.get("metrics/mAP50-95(B)", 0.0))
        summary["final"] = {k.split("/")[1]: final.get(k) for k in metric_keys}
        summary["best_epoch"] = int(best_row.get("epoch", 0))
        summary["best_metrics"] = {k.split("/")[1]: best_row.get(k) for k in metric_keys}
    if str(cfg.model.task) == "plate_ocr":
        summary["readout"] = _ocr_readout(cfg, best, run_dir)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = summary_text(summary)
    (run_dir / "summary.txt").write_text(text + "\n")
    print(text)
    return TrainResult(run_dir=run_dir, best=best, last=last, summary=summary)


def _ocr_readout(cfg: DictConfig, weights: Path, run_dir: Path) -> dict[str, Any]:
    """Read the validation crops with the best weights: exact plates and character accuracy."""
    import cv2
    from ultralytics import YOLO

    from data.images import read_image
    from train.reading import draw_reads, predict_chars, read_yolo_labels, score_reads, text_of

    data = json.loads((run_dir / "training_set.json").read_text())["data_yaml"]
    import yaml

    val_file = Path(yaml.safe_load(Path(data).read_text())["val"])
    images = [Path(p) for p in val_file.read_text().split()][: int(cfg.readout.max_images)]
    names = [str(n) for n in cfg.model.names]
    h, w = int(cfg.model.input_height), int(cfg.model.input_width)
    crops, truths = [], []
    for p in images:
        img = read_image(p)
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        crops.append(img)
        label = Path(str(p).replace("/images/", "/labels/")).with_suffix(".txt")
        truths.append(read_yolo_labels(label, names, w, h))
    model = YOLO(str(weights), task="detect")
    reads = predict_chars(model, crops, names, conf=float(cfg.readout.conf), iou=float(cfg.readout.iou))
    score = score_reads(truths, reads)
    out = score.as_dict()
    out["line"] = score.line()
    n = int(cfg.readout.sheet)
    if n and crops:
        captions = [f"{text_of(t)} -> {text_of(r)}" for t, r in zip(truths[:n], reads[:n], strict=False)]
        out["sheet"] = str(draw_reads(crops[:n], reads[:n], captions, run_dir / "val_reads.png"))
    return out


def summary_text(s: dict[str, Any]) -> str:
    lines = [
        f"== {s['model']} ({s['activation']}) trained {s['epochs']} epochs in {s['seconds']:.0f} s"
        + (f", {s['images_per_second']} images/s" if s.get("images_per_second") else "")
        + (" (resumed)" if s.get("resumed") else "")
    ]
    if s.get("training_set_hash"):
        lines.append(f"training set {s['training_set_hash'][:16]}: {s['train_images']} images per epoch")
    if s.get("init"):
        lines.append(f"initialised from {s['init']} ({s['init_tensors']} tensors)")
    if s.get("final"):
        f, b = s["final"], s["best_metrics"]
        lines.append(
            f"final: P {f['precision(B)']:.3f} R {f['recall(B)']:.3f} mAP50 {f['mAP50(B)']:.3f} "
            f"mAP50-95 {f['mAP50-95(B)']:.3f}; best mAP50-95 {b['mAP50-95(B)']:.3f} at epoch "
            f"{s['best_epoch']}"
        )
    if s.get("readout"):
        lines.append(s["readout"]["line"])
    lines.append(f"weights: {s['best']} (best), {s['last']} (last)")
    lines.append(f"run folder: {s['run_dir']}")
    return "\n".join(lines)
