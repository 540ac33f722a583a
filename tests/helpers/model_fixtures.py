"""Session fixtures with real (tiny) models, for every stage's tests (loaded by conftest.py).

* ``tiny_weights``: {"plate_det": best.pt, "plate_ocr": best.pt} trained through ``train.run.train``
  on a few dozen real images (1 epoch, small image size), once per test session, under the
  session's base temp folder. They load and predict, but detect nothing useful.
* ``tiny_runs``: the same trainings' ``TrainResult`` (run folders, summaries).
* ``tiny_onnx``: {"plate_det": .onnx, "plate_ocr": .onnx, "zoo": folder} exported from them.
* ``dev_zoo``: a zoo of UNTRAINED models at their real input sizes (640x640 detector, 128x256 OCR),
  for the runtime's tests and benchmark: no real data needed, speed as a trained model's.

Every model here is exported by the export stage itself (``export.run.export_model``: Ultralytics'
exporter, ``lpr.*`` metadata, DeGirum zoo entry), so the suite exports models one way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Plain Ultralytics calls in tests must not reach for the network either.
os.environ.setdefault("YOLO_OFFLINE", "1")

TINY = {
    # model: (dataset, train images, val images, overrides)
    "plate_det": ("uc3m_lp", 24, 8, ["imgsz=128", "batch=8"]),
    "plate_ocr": ("uc3m_lp_crops", 48, 12, ["imgsz=128", "batch=16"]),
}


@pytest.fixture(scope="session", autouse=True)
def _ultralytics_config_in_tmp(tmp_path_factory):
    """Ultralytics keeps settings (and our local fonts) in YOLO_CONFIG_DIR: during tests, a folder
    of the session, not the user's ~/.config (set before the first test imports Ultralytics)."""
    import sys

    if "ultralytics" not in sys.modules:
        os.environ["YOLO_CONFIG_DIR"] = str(tmp_path_factory.getbasetemp() / "ultralytics_config")


def write_subset(manifest: Path, out_dir: Path, n_train: int, n_val: int) -> Path:
    """A manifest of the first images of each split, pointing at the original images (no copies)."""
    from data.manifest import Manifest, read_manifest, rebase, write_manifest

    m = read_manifest(manifest)
    train = [i for i in m.images if i.split == "train"][:n_train]
    val = [i for i in m.images if i.split == "val"][:n_val]
    return write_manifest(
        out_dir / "labels.jsonl", rebase(Manifest(path=m.path, images=train + val), out_dir)
    )


def tiny_overrides(base: Path, model: str, manifest: Path, extra: list[str] | None = None) -> list[str]:
    """Config overrides for a tiny CPU training writing everything under ``base``."""
    return [
        f"model={model}",
        f"data=[{manifest}]",
        "epochs=1",
        "device=cpu",
        "workers=0",
        f"paths.runs={base / 'runs'}",
        f"cache_dir={base / 'cache'}",
        f"ultralytics_dir={base / 'ultralytics'}",
        "readout.max_images=16",
        "readout.sheet=8",
        *TINY[model][3],
        *(extra or []),
    ]


@pytest.fixture(scope="session")
def tiny_subsets(shared_datasets, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.getbasetemp() / "tiny_data"
    out = {}
    for model, (dataset, n_train, n_val, _) in TINY.items():
        target = base / dataset / "labels.jsonl"
        out[model] = (
            target
            if target.is_file()
            else write_subset(shared_datasets / dataset / "labels.jsonl", base / dataset, n_train, n_val)
        )
    return out


@pytest.fixture(scope="session")
def tiny_runs(tiny_subsets, tmp_path_factory):
    from stage.config import compose
    from train.run import train

    base = tmp_path_factory.getbasetemp() / "tiny_models"
    runs = {}
    for model in TINY:
        cfg = compose("train", tiny_overrides(base, model, tiny_subsets[model], [f"out={base / model}"]))
        runs[model] = train(cfg)
    return runs


@pytest.fixture(scope="session")
def tiny_weights(tiny_runs) -> dict[str, Path]:
    return {model: run.best for model, run in tiny_runs.items()}


@pytest.fixture(scope="session")
def tiny_onnx(tiny_weights, tmp_path_factory) -> dict[str, Path]:
    """Both tiny models exported into one DeGirum-style zoo folder (parity checked on 2 images;
    no int8 entry and no DeGirum round trip, to stay fast)."""
    from export.run import export_model
    from stage.config import compose

    base = tmp_path_factory.getbasetemp() / "tiny_export"
    zoo = base / "zoo"
    out: dict[str, Path] = {"zoo": zoo}
    for model, weights in tiny_weights.items():
        cfg = compose("export", [f"weights={weights}", f"out={zoo}", *tiny_export_overrides(base)])
        out[model] = export_model(cfg).fp32.model
    return out


def tiny_export_overrides(base: Path) -> list[str]:
    return [
        f"paths.runs={base / 'runs'}",
        f"ultralytics_dir={base / 'ultralytics'}",
        "parity.count=2",
        "int8.enabled=false",
        "degirum.check=false",
        "benchmark.runs=2",
    ]


# -- untrained models at real size, exported by the export stage ------------------------------------


def untrained_weights(model: str, folder: Path, activation: str | None = None) -> Path:
    """Weights of an UNTRAINED plate model as ``python -m train`` defines it (Ultralytics' yolov8n
    with the model config's activation, class names and ``lpr`` block), saved as a checkpoint."""
    from ultralytics import YOLO

    from stage.config import compose
    from train.architecture import write_model_yaml

    model_cfg = compose(
        "train", [f"model={model}", *([f"model.activation={activation}"] if activation else [])]
    ).model
    yolo = YOLO(str(write_model_yaml(model_cfg, folder)), task="detect")
    yolo.model.names = dict(enumerate(str(n) for n in model_cfg.names))  # as the trainer sets them
    path = Path(folder) / f"untrained_{model_cfg.activation}_{model}.pt"
    yolo.save(path)
    return path


def export_untrained(model: str, zoo: Path, work: Path, activation: str | None = None) -> Path:
    """An untrained plate model exported into ``zoo`` by the export stage; returns the .onnx.
    Untrained weights have nothing to compare, so parity, int8 and the DeGirum round trip are off."""
    from export.run import export_model
    from stage.config import compose

    cfg = compose(
        "export",
        [
            f"weights={untrained_weights(model, work, activation)}",
            "trust_checkpoint=true",  # made just now by untrained_weights, not by a training run
            f"out={zoo}",
            f"paths.runs={work / 'runs'}",
            f"ultralytics_dir={work / 'ultralytics'}",
            "parity.enabled=false",
            "int8.enabled=false",
            "degirum.check=false",
            "benchmark.runs=1",
        ],
    )
    return export_model(cfg).fp32.model


def make_dev_zoo(zoo: Path) -> Path:
    """The untrained detector and OCR model exported into ``zoo``; returns ``zoo``."""
    with tempfile.TemporaryDirectory(prefix="lpr-dev-zoo-") as tmp:
        for model in ("plate_det", "plate_ocr"):
            export_untrained(model, Path(zoo), Path(tmp))
    return Path(zoo)


@pytest.fixture(scope="session")
def dev_zoo(tmp_path_factory) -> Path:
    """The development zoo of untrained real-size models, built once per test session."""
    return make_dev_zoo(tmp_path_factory.getbasetemp() / "dev_zoo")


def write_zoo_entry(zoo: Path, name: str, onnx_src: Path, meta) -> Path:
    """``onnx_src`` as zoo entry ``name`` carrying ``meta`` (its model_name set to ``name``), written
    with the export stage's functions: metadata_props, DeGirum JSON (the export config's zoo
    thresholds) and labels. Returns the entry's folder."""
    from export.onnx_export import write_metadata
    from export.zoo import entry_paths, write_entry
    from stage.config import compose

    entry = entry_paths(zoo, name)
    entry.folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_src, entry.model)
    meta = replace(meta, model_name=name)
    write_metadata(entry.model, meta)
    z = compose("export").zoo
    write_entry(
        entry,
        meta,
        float(z.conf_threshold),
        float(z.nms_threshold),
        int(z.max_detections[meta.task]),
        int(z.config_version),
    )
    return entry.folder
