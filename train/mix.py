"""Training data: weighted mixes of plate manifests, converted once into a cached Ultralytics layout.

Each source manifest is converted on its own through the data layer's exporters (``export_det`` for
the plate detector, ``export_ocr`` for the character detector: crops cut exactly as the runtime
cuts them) into ``<cache_dir>/<task>/<source>-<key>/``. The key hashes everything the conversion
depends on - the manifest's bytes, the size and modification time of every image it names, the
export settings and the model's input/crop config - so a folder is rebuilt only when one of them
changes, and a new weighting never re-converts anything.

The mix itself is two lists of image paths (``train.txt`` / ``val.txt``, Ultralytics reads them
directly) plus a ``data.yaml``: each source is subsampled or repeated to its weight's share of the
epoch. ``training_set.json`` records what went in and a hash of the exact training set (the
content of every image and label, in the order of the list).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from data.manifest import access_options, read_manifest
from stage.config import CONF_DIR
from stage.files import sha256_file
from train.errors import DataMixError

EXPORT_VERSION = 1  # bump when the conversion's output changes for the same inputs
SPLITS = ("train", "val")


@dataclass
class Source:
    manifest: Path
    weight: float
    label: str  # short name for folders and reports
    access: dict[str, Any] = field(default_factory=dict)
    """read_manifest's roots / allow_outside (from paths.data_roots, paths.allow_outside_roots)."""

    def __str__(self) -> str:
        return f"{self.label} ({self.manifest}, weight {self.weight:g})"


@dataclass
class PreparedSource:
    source: Source
    folder: Path
    key: str
    train: list[str]  # image paths
    val: list[str]
    file_hashes: dict[str, str]  # image path -> hash of image + label bytes
    export_summary: str
    reused: bool


@dataclass
class PreparedData:
    folder: Path
    data_yaml: Path
    train_count: int
    val_count: int
    train_hash: str
    sources: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{s['label']}: {s['sampled']} of {s['available']} (weight {s['weight']:g})" for s in self.sources
        ]
        return (
            f"training set {self.train_hash[:12]}: {self.train_count} train / {self.val_count} val images "
            f"[{'; '.join(parts)}]"
        )


def dataset_manifest(name: str, paths: DictConfig) -> Path | None:
    """The manifest of a known dataset (conf/dataset/<name>.yaml), or None if there is no such file."""
    file = CONF_DIR / "dataset" / f"{name}.yaml"
    if not file.is_file():
        return None
    node = OmegaConf.create(
        {"paths": OmegaConf.to_container(paths, resolve=True), "dataset": OmegaConf.load(file)}
    )
    return Path(str(node.dataset.manifest))


def parse_sources(data: Any, paths: DictConfig) -> list[Source]:
    """``data`` as configured -> sources; raises DataMixError with what is wrong."""
    if isinstance(data, (DictConfig, ListConfig)):
        data = OmegaConf.to_container(data, resolve=True)
    if data is None or data == []:
        raise DataMixError("no training data: give data=[{manifest: PATH_OR_DATASET, weight: W}, ...]")
    if not isinstance(data, list):
        data = [data]
    sources = []
    for i, entry in enumerate(data):
        if isinstance(entry, str):
            entry = {"manifest": entry}
        if not isinstance(entry, dict) or "manifest" not in entry:
            raise DataMixError(
                f"data[{i}] = {entry!r}: expected a path, a dataset name or {{manifest: ..., weight: ...}}"
            )
        unknown = set(entry) - {"manifest", "weight", "name"}
        if unknown:
            raise DataMixError(f"data[{i}]: unknown keys {sorted(unknown)} (allowed: manifest, weight, name)")
        ref = str(entry["manifest"])
        weight = float(entry.get("weight", 1.0))
        if not math.isfinite(weight) or weight < 0:
            raise DataMixError(
                f"data[{i}] ({ref}): weight must be a non-negative number, got {entry.get('weight')!r}"
            )
        path = Path(ref).expanduser()
        if not path.exists():
            known = dataset_manifest(ref, paths) if "/" not in ref else None
            if known is None:
                raise DataMixError(
                    f"data[{i}]: {ref} is neither an existing manifest/folder nor a dataset in conf/dataset/"
                )
            path = known
        if path.is_dir():
            path = path / "labels.jsonl"
        if not path.is_file():
            raise DataMixError(f"data[{i}]: no manifest at {path}")
        label = str(entry.get("name") or (path.parent.name if path.name == "labels.jsonl" else path.stem))
        sources.append(
            Source(
                manifest=path.resolve(),
                weight=weight,
                label=label,
                access=access_options(
                    {
                        "paths": OmegaConf.to_container(paths, resolve=True)
                        if OmegaConf.is_config(paths)
                        else paths
                    }
                ),
            )
        )
    if sum(s.weight for s in sources) <= 0:
        raise DataMixError("all data weights are zero")
    return sources


def _export_settings(task: str, model_cfg: DictConfig, mix_cfg: DictConfig) -> dict[str, Any]:
    """Everything besides the manifest that decides what the conversion writes."""
    settings: dict[str, Any] = {"version": EXPORT_VERSION, "task": task, "names": list(model_cfg.names)}
    if task == "plate_det":
        settings["image_size"] = int(mix_cfg.det_image_size)
    else:
        settings.update(
            input_height=int(model_cfg.input_height),
            input_width=int(model_cfg.input_width),
            pad_x=float(model_cfg.crop.pad_x),
            pad_y=float(model_cfg.crop.pad_y),
            fill=int(model_cfg.letterbox_fill),
            jitter=float(mix_cfg.ocr_jitter),
            copies=int(mix_cfg.ocr_copies),
            seed=int(mix_cfg.seed),
        )
    return settings


def source_key(source: Source, settings: dict[str, Any]) -> str:
    """Hash of the conversion's inputs: manifest bytes, every named image's size and mtime, settings."""
    manifest = read_manifest(source.manifest, **source.access)
    h = hashlib.sha256()
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(sha256_file(source.manifest).encode())
    for item in manifest.images:
        p = manifest.image_path(item)
        try:
            st = p.stat()
            h.update(f"{item.image}:{st.st_size}:{st.st_mtime_ns}".encode())
        except FileNotFoundError:
            h.update(f"{item.image}:missing".encode())
    return h.hexdigest()


def _export_source(source: Source, task: str, settings: dict[str, Any], out: Path) -> str:
    from data.exporters import export_det, export_ocr

    manifest = read_manifest(source.manifest, **source.access)
    if manifest.issues:
        raise DataMixError(
            f"{source.manifest}: {len(manifest.issues)} malformed lines, first: {manifest.issues[0]} "
            "(fix them; `python -m data action=validate src=...` lists all)"
        )
    out.mkdir(parents=True, exist_ok=True)
    if task == "plate_det":
        result = export_det(
            [manifest], out, splits=SPLITS, image_size=settings["image_size"], names=settings["names"]
        )
    else:
        result = export_ocr(
            [manifest],
            out,
            names=settings["names"],
            input_height=settings["input_height"],
            input_width=settings["input_width"],
            pad_x=settings["pad_x"],
            pad_y=settings["pad_y"],
            fill=settings["fill"],
            splits=SPLITS,
            jitter=settings["jitter"],
            copies=settings["copies"],
            seed=settings["seed"],
        )
    if result.issues:
        (out / "issues.txt").write_text("\n".join(str(i) for i in result.issues) + "\n")
    return result.summary()


def _hash_pairs(folder: Path) -> dict[str, str]:
    """Per image: hash of the image bytes and its label file (the exact training example)."""
    hashes = {}
    for split in SPLITS:
        for img in sorted((folder / "images" / split).glob("*")):
            label = folder / "labels" / split / f"{img.stem}.txt"
            h = hashlib.sha256(img.read_bytes())
            h.update(label.read_bytes() if label.is_file() else b"")
            hashes[str(img)] = h.hexdigest()
    return hashes


def prepare_source(
    source: Source, task: str, model_cfg: DictConfig, mix_cfg: DictConfig, cache_dir: Path
) -> PreparedSource:
    """Convert one source (or reuse its cached conversion)."""
    settings = _export_settings(task, model_cfg, mix_cfg)
    key = source_key(source, settings)
    folder = cache_dir / task / f"{source.label}-{key[:16]}"
    meta_file = folder / "meta.json"
    reused = meta_file.is_file()
    if not reused:
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        summary = _export_source(source, task, settings, tmp).replace(str(tmp), str(folder))
        if folder.exists():  # a stale half-written folder from a crash
            shutil.rmtree(folder)
        tmp.rename(folder)
        # The exporter wrote absolute paths of the temporary folder into data.yaml: rewrite them.
        spec = yaml.safe_load((folder / "data.yaml").read_text())
        spec["path"] = str(folder)
        (folder / "data.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        hashes = _hash_pairs(folder)
        meta = {
            "key": key,
            "manifest": str(source.manifest),
            "settings": settings,
            "summary": summary,
            "files": {os.path.relpath(k, folder): v for k, v in hashes.items()},
        }
        meta_file.write_text(json.dumps(meta, indent=1))
    meta = json.loads(meta_file.read_text())
    files = {str(folder / rel): h for rel, h in meta["files"].items()}
    train = sorted(p for p in files if f"{os.sep}images{os.sep}train{os.sep}" in p)
    val = sorted(p for p in files if f"{os.sep}images{os.sep}val{os.sep}" in p)
    return PreparedSource(
        source=source,
        folder=folder,
        key=key,
        train=train,
        val=val,
        file_hashes=files,
        export_summary=meta["summary"],
        reused=reused,
    )


def _holdout(paths: Sequence[str], fraction: float) -> tuple[list[str], list[str]]:
    """Split by a hash of the file name: stable whatever else is in the list."""
    train, val = [], []
    for p in paths:
        bucket = int(hashlib.sha1(Path(p).name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if bucket < fraction else train).append(p)
    return train, val


def _draw(paths: list[str], n: int, rng: np.random.Generator) -> list[str]:
    """``n`` of ``paths``: a subsample without repeats, or every path plus a random remainder."""
    if n <= 0 or not paths:
        return []
    if n <= len(paths):
        return [paths[i] for i in sorted(rng.choice(len(paths), size=n, replace=False))]
    whole, rest = divmod(n, len(paths))
    extra = [paths[i] for i in sorted(rng.choice(len(paths), size=rest, replace=False))]
    return sorted(paths * whole + extra)


def prepare_data(cfg: DictConfig, progress: bool = True) -> PreparedData:
    """Convert every source (cached) and write the weighted mix; returns where its data.yaml is."""
    task = str(cfg.model.task)
    sources = parse_sources(cfg.data, cfg.paths)
    cache_dir = Path(cfg.cache_dir)
    prepared = []
    for source in sources:
        ps = prepare_source(source, task, cfg.model, cfg.mix, cache_dir)
        if progress:
            print(
                f"data {source.label}: {'reused' if ps.reused else 'converted'} {ps.folder} - "
                f"{ps.export_summary}"
            )
        train, val = ps.train, ps.val
        if not val and train:
            train, val = _holdout(train, float(cfg.mix.holdout))
        if not train:
            raise DataMixError(
                f"{source.manifest}: no usable {task} training images ({ps.export_summary}); "
                + (
                    "a plate detector trains on scenes, not crops"
                    if task == "plate_det"
                    else "OCR needs plates with character boxes (see action=pseudo_label)"
                )
            )
        ps.train, ps.val = train, val
        prepared.append(ps)

    total_weight = sum(ps.source.weight for ps in prepared)
    epoch = int(cfg.mix.epoch_size) if cfg.mix.epoch_size else sum(len(ps.train) for ps in prepared)
    rng = np.random.default_rng(int(cfg.mix.seed))
    train_list: list[str] = []
    val_list: list[str] = []
    report = []
    for ps in prepared:
        n = int(round(epoch * ps.source.weight / total_weight))
        drawn = _draw(ps.train, n, rng)
        train_list += drawn
        val_list += ps.val
        report.append(
            {
                "label": ps.source.label,
                "manifest": str(ps.source.manifest),
                "weight": ps.source.weight,
                "cache": str(ps.folder),
                "key": ps.key,
                "available": len(ps.train),
                "sampled": len(drawn),
                "val": len(ps.val),
                "export": ps.export_summary,
            }
        )
    if not val_list:
        raise DataMixError("no validation images in any source")

    hashes = {}
    for ps in prepared:
        hashes.update(ps.file_hashes)
    h = hashlib.sha256()
    for p in sorted(train_list):
        h.update(hashes[p].encode())
    train_hash = h.hexdigest()
    mix_key = hashlib.sha256(
        json.dumps([train_hash, sorted(val_list), list(cfg.model.names)]).encode()
    ).hexdigest()
    folder = cache_dir / task / f"mix-{mix_key[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("\n".join(train_list) + "\n")
    (folder / "val.txt").write_text("\n".join(sorted(val_list)) + "\n")
    spec = {
        "path": str(folder),
        "train": str(folder / "train.txt"),
        "val": str(folder / "val.txt"),
        "names": {i: str(n) for i, n in enumerate(cfg.model.names)},
    }
    data_yaml = folder / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return PreparedData(
        folder=folder,
        data_yaml=data_yaml,
        train_count=len(train_list),
        val_count=len(val_list),
        train_hash=train_hash,
        sources=report,
    )


def write_training_set(prepared: PreparedData, path: Path) -> Path:
    record = {
        "train_hash": prepared.train_hash,
        "train_images": prepared.train_count,
        "val_images": prepared.val_count,
        "data_yaml": str(prepared.data_yaml),
        "sources": prepared.sources,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
