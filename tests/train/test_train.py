"""The training stage: config composition, model definition, data mixing, tiny real trainings,
resume and fine-tuning, offline safety, pseudo-labelling on real crops."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers.model_fixtures import PROJECT_ROOT, tiny_overrides, write_subset

from runtime.records import Char
from stage.config import compose

# ----------------------------------------------------------------------------------------- config


def test_config_composes_per_model():
    det = compose("train", ["model=plate_det"])
    ocr = compose("train", ["model=plate_ocr"])
    assert det.model.task == "plate_det" and len(det.model.names) == 1
    assert ocr.model.task == "plate_ocr" and len(ocr.model.names) == 36
    # Each model gets its own default data and augmentation.
    assert det.data[0].manifest == "uc3m_lp" and ocr.data[0].manifest == "uc3m_lp_crops"
    assert ocr.augment.rect is True and ocr.augment.fliplr == 0 and ocr.augment.mosaic == 0
    assert det.augment.rect is False
    # The schedule comes from the profile, per model, and any key can be overridden.
    cpu = compose("train", ["model=plate_ocr", "profile=cpu"])
    gpu = compose("train", ["model=plate_ocr", "profile=gpu"])
    assert cpu.device == "cpu" and str(gpu.device) == "0"
    assert cpu.epochs == cpu.profile.plate_ocr.epochs and gpu.epochs == gpu.profile.plate_ocr.epochs
    assert compose("train", ["model=plate_det", "epochs=3", "imgsz=160"]).imgsz == 160
    mixed = compose("train", ["model=plate_ocr", "data=[{manifest:/x/a.jsonl,weight:0.7},uc3m_lp_crops]"])
    assert mixed.data[0].weight == 0.7 and mixed.data[1] == "uc3m_lp_crops"


def test_parse_sources_errors_name_the_problem(tmp_path, shared_datasets):
    from train.mix import DataMixError, parse_sources

    paths = compose("train").paths
    src = parse_sources(
        ["uc3m_lp_crops", {"manifest": str(shared_datasets / "uc3m_lp"), "weight": 0.5}], paths
    )
    assert src[0].manifest == (shared_datasets / "uc3m_lp_crops" / "labels.jsonl").resolve()
    assert src[1].weight == 0.5 and src[1].label == "uc3m_lp"
    with pytest.raises(DataMixError, match="nowhere.jsonl"):
        parse_sources([str(tmp_path / "nowhere.jsonl")], paths)
    with pytest.raises(DataMixError, match="weight"):
        parse_sources([{"manifest": "uc3m_lp", "weight": -1}], paths)
    with pytest.raises(DataMixError, match="unknown keys"):
        parse_sources([{"manifest": "uc3m_lp", "wieght": 1}], paths)
    with pytest.raises(DataMixError, match="no training data"):
        parse_sources([], paths)


# ------------------------------------------------------------------------------------ architecture


@pytest.mark.parametrize("activation,module", [("relu6", "ReLU6"), ("silu", "SiLU")])
def test_model_is_ultralytics_yolov8n_with_our_activation(activation, module):
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    from train.architecture import model_yaml

    cfg = compose("train", ["model=plate_ocr", f"model.activation={activation}"])
    spec = model_yaml(cfg.model)
    stock = yaml_model_load("yolov8n.yaml")
    assert spec["backbone"] == stock["backbone"] and spec["head"] == stock["head"] and spec["scale"] == "n"
    assert (
        spec["nc"] == 36
        and spec["lpr"]["task"] == "plate_ocr"
        and spec["lpr"]["crop"]["pad_x"] == cfg.model.crop.pad_x
    )
    net = DetectionModel(spec, verbose=False)
    acts = {type(m.act).__name__ for m in net.modules() if hasattr(m, "act") and hasattr(m, "conv")}
    assert acts == {module}
    assert net.model[-1].nc == 36


# ------------------------------------------------------------------------------------ data mixing


@pytest.mark.shared_data
def test_data_mix_weights_and_cache(tmp_path, shared_datasets):
    from train.mix import prepare_data

    crops = shared_datasets / "uc3m_lp_crops" / "labels.jsonl"
    a = write_subset(crops, tmp_path / "a", 20, 4)
    b_full = write_subset(crops, tmp_path / "b_full", 60, 8)
    # b: other images than a (the 40 after a's 20), so the two sources differ.
    lines = b_full.read_text().splitlines()
    b = tmp_path / "b" / "labels.jsonl"
    b.parent.mkdir()
    b.write_text("\n".join(lines[20:]) + "\n")
    b_rel = [json.loads(x) for x in lines[20:]]
    for rec in b_rel:  # images are relative to the manifest: re-anchor them for the new folder
        rec["image"] = os.path.relpath((b_full.parent / rec["image"]).resolve(), b.parent)
    b.write_text("\n".join(json.dumps(r) for r in b_rel) + "\n")

    def cfg(*extra):
        return compose("train", ["model=plate_ocr", f"cache_dir={tmp_path / 'cache'}", *extra])

    mixed = prepare_data(cfg(f"data=[{{manifest:{a},weight:3}},{{manifest:{b},weight:1}}]"), progress=False)
    by_label = {s["label"]: s for s in mixed.sources}
    assert by_label["a"]["available"] == 20 and by_label["b"]["available"] == 40
    assert mixed.train_count == 60  # epoch = all train images together
    assert by_label["a"]["sampled"] == 45 and by_label["b"]["sampled"] == 15  # 3:1
    train_list = Path(yaml.safe_load(mixed.data_yaml.read_text())["train"]).read_text().split()
    assert len(train_list) == 60 and len(set(train_list)) < 60  # a's 20 images repeated to reach 45
    assert all(Path(p).is_file() for p in train_list)
    # Same inputs: the conversion is reused (same folder, files untouched), same training set hash.
    folder = Path(by_label["a"]["cache"])
    stamp = (folder / "meta.json").stat().st_mtime_ns
    again = prepare_data(cfg(f"data=[{{manifest:{a},weight:3}},{{manifest:{b},weight:1}}]"), progress=False)
    assert again.train_hash == mixed.train_hash and (folder / "meta.json").stat().st_mtime_ns == stamp
    # Other weights: same conversions, another training set.
    even = prepare_data(cfg(f"data=[{a},{b}]"), progress=False)
    assert even.train_hash != mixed.train_hash
    assert {s["cache"] for s in even.sources} == {s["cache"] for s in mixed.sources}
    # A changed input (manifest edited) or a changed crop config -> converted again.
    a.write_text(a.read_text().replace('"val"', '"train"', 1))
    edited = prepare_data(cfg(f"data=[{a}]"), progress=False)
    assert edited.sources[0]["cache"] != str(folder)
    padded = prepare_data(cfg(f"data=[{b}]", "model.crop.pad_x=0.2"), progress=False)
    assert padded.sources[0]["cache"] != by_label["b"]["cache"]


@pytest.mark.shared_data
def test_crops_are_no_detector_data(tmp_path, shared_datasets):
    from train.mix import DataMixError, prepare_data

    crops = write_subset(shared_datasets / "uc3m_lp_crops" / "labels.jsonl", tmp_path / "c", 4, 2)
    with pytest.raises(DataMixError, match="scenes, not crops"):
        prepare_data(
            compose("train", ["model=plate_det", f"data=[{crops}]", f"cache_dir={tmp_path / 'cache'}"]),
            progress=False,
        )


# ----------------------------------------------------------------------------------- tiny trainings


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("model", ["plate_det", "plate_ocr"])
def test_tiny_training_writes_a_complete_run(tiny_runs, model, shared_datasets):
    from ultralytics import YOLO

    from data.images import read_image
    from train.architecture import lpr_info

    run = tiny_runs[model]
    d = run.run_dir
    for name in (
        "weights/best.pt",
        "weights/last.pt",
        "results.csv",
        "config.yaml",
        "training_set.json",
        "summary.json",
        "summary.txt",
        "results.png",
    ):
        assert (d / name).is_file(), name
    assert len((d / "results.csv").read_text().strip().splitlines()) == 2  # header + 1 epoch
    training_set = json.loads((d / "training_set.json").read_text())
    assert (
        len(training_set["train_hash"]) == 64
        and run.summary["training_set_hash"] == training_set["train_hash"]
    )
    assert yaml.safe_load((d / "config.yaml").read_text())["model"]["task"] == model
    if model == "plate_ocr":
        assert (d / "val_reads.png").is_file() and run.summary["readout"]["plates"] == 12

    net = YOLO(str(run.best))
    info = lpr_info(net)
    assert info["task"] == model and info["activation"] == "relu6"
    assert {
        type(m.act).__name__ for m in net.model.modules() if hasattr(m, "act") and hasattr(m, "conv")
    } == {"ReLU6"}
    assert list(net.names.values()) == list(compose("train", [f"model={model}"]).model.names)
    image = read_image(
        next(
            (
                shared_datasets / ("uc3m_lp" if model == "plate_det" else "uc3m_lp_crops") / "images" / "val"
            ).iterdir()
        )
    )
    result = net.predict(image, imgsz=128, conf=0.0001, verbose=False)[0]
    assert result.boxes.xyxy.shape[1] == 4 and result.orig_shape == image.shape[:2]


class _Crash(Exception):
    pass


@pytest.mark.slow
@pytest.mark.shared_data
def test_resume_continues_an_interrupted_run(tiny_subsets, tmp_path):
    import torch

    from train.run import TrainError, train

    def crash_after_first_epoch(trainer):
        if trainer.epoch == 0:
            raise _Crash("simulated interruption")

    overrides = tiny_overrides(tmp_path, "plate_ocr", tiny_subsets["plate_ocr"], ["epochs=2", "plots=false"])
    with pytest.raises(_Crash):
        train(compose("train", overrides), callbacks={"on_model_save": crash_after_first_epoch})
    (last,) = tmp_path.glob("runs/train/plate_ocr/*/weights/last.pt")
    assert torch.load(last, weights_only=False)["epoch"] == 0
    result = train(compose("train", [*overrides, "resume=true"]))
    assert (
        result.run_dir == last.parent.parent and result.summary["resumed"] and result.summary["epochs"] == 2
    )
    with pytest.raises(TrainError, match="no unfinished plate_ocr run"):
        train(compose("train", [*overrides, "resume=true"]))


@pytest.mark.slow
@pytest.mark.shared_data
def test_init_fine_tunes_from_earlier_weights(tiny_subsets, tiny_weights, tmp_path):
    from train.run import TrainError, train

    overrides = tiny_overrides(
        tmp_path, "plate_ocr", tiny_subsets["plate_ocr"], ["plots=false", "readout.max_images=4"]
    )
    # lr0=0 (SGD): the weights cannot move, so the result must hold exactly the init weights - the
    # proof that training started from them and not from a fresh network of the same shape.
    result = train(
        compose("train", [*overrides, f"init={tiny_weights['plate_ocr']}", "optimizer=SGD", "lr0=0.0"])
    )
    assert result.summary["init_tensors"] > 300 and result.best.is_file()
    import torch

    def first_conv(path):
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        return (ckpt.get("ema") or ckpt["model"]).float().state_dict()["model.0.conv.weight"]

    assert torch.equal(first_conv(result.last), first_conv(tiny_weights["plate_ocr"]))
    with pytest.raises(TrainError, match="plate_det model, not plate_ocr"):
        train(compose("train", [*overrides, f"init={tiny_weights['plate_det']}"]))
    with pytest.raises(TrainError, match="missing.pt: no such weights file"):
        train(compose("train", [*overrides, f"init={tmp_path / 'missing.pt'}"]))


def _unshare_works() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare -n` (root or user namespaces)")
def test_training_runs_with_the_network_cut_off(tiny_subsets, tmp_path):
    """A tiny training in a network namespace with no interfaces up, fresh Ultralytics config dir
    (so no font or settings file is left from earlier runs): it must succeed, plots included,
    and never try to download."""
    overrides = tiny_overrides(
        tmp_path,
        "plate_ocr",
        tiny_subsets["plate_ocr"],
        [f"out={tmp_path / 'run'}", "imgsz=64", "readout.max_images=4"],
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOLO_")}
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "train", *overrides],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert (tmp_path / "run" / "weights" / "best.pt").is_file() and (
        tmp_path / "run" / "results.png"
    ).is_file()
    assert "download" not in log.lower(), [line for line in log.splitlines() if "download" in line.lower()]
    assert (tmp_path / "ultralytics" / "Ultralytics" / "Arial.ttf").is_file()


def test_cli_reports_bad_data_cleanly(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "train",
            "model=plate_ocr",
            f"data=[{tmp_path / 'none.jsonl'}]",
            f"paths.runs={tmp_path}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "none.jsonl" in proc.stderr and "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------------- pseudo-labels


def test_training_reads_in_the_deployed_reading_order():
    """The read-out and pseudo-labels order characters as the runtime does (runtime.reading): a
    two-line plate given shuffled reads top line first, a tilted single line stays one line, and a
    character boxed twice is read once, as deployed."""
    from runtime.reading import read_chars
    from train.reading import ordered, text_of

    top = [Char(char=c, box=(10 + 20 * i, 5, 26 + 20 * i, 25), score=0.9) for i, c in enumerate("ABC")]
    bottom = [Char(char=c, box=(5 + 20 * i, 40, 21 + 20 * i, 60), score=0.9) for i, c in enumerate("1234")]
    chars = bottom[::-1] + top[::-1]
    assert [(c.char, c.line) for c in ordered(chars)] == [
        (c.char, k) for k, row in enumerate((top, bottom)) for c in row
    ]
    assert text_of(chars) == read_chars(chars).text == "ABC1234"
    tilted = [
        Char(char=c, box=(10 + 20 * i, 30 - 3 * i, 26 + 20 * i, 50 - 3 * i), score=0.9)
        for i, c in enumerate("ABC1234")
    ]
    assert text_of(tilted[::-1]) == "ABC1234" and {c.line for c in ordered(tilted[::-1])} == {0}
    doubled = tilted + [Char(char="8", box=tuple(v + 1 for v in tilted[3].box), score=0.5)]
    assert text_of(doubled) == "ABC1234" and len(ordered(doubled)) == 8


def _real_plates(shared_datasets, n):
    """Real uc3m crops with their labelled characters (the visible ones) and the text they spell."""
    from data.manifest import read_manifest
    from train.reading import text_of

    m = read_manifest(shared_datasets / "uc3m_lp_crops" / "labels.jsonl")
    plates = [p for item in m.images[:400] for p in item.plates if len(p.chars) >= 4][:n]
    return [(text_of(p.chars), p.chars) for p in plates]


@pytest.mark.shared_data
def test_pseudo_label_rules_on_real_character_boxes(shared_datasets):
    """The labelled characters of real crops stand in for a model's reads: the rules must accept
    a read that equals the text, accept a wrong read with the right box count only under the
    count rule (known characters assigned in reading order), and reject a missing box."""
    from train.pseudo_label import judge
    from train.reading import ordered

    plates = _real_plates(shared_datasets, 60)
    assert len(plates) == 60
    assert any(c.line == 1 for _, chars in plates for c in ordered(chars))  # two-line plates among them
    rng = np.random.default_rng(0)
    for text, chars in plates:
        reads = [replace(c, score=0.9) for c in chars]
        shuffled = [reads[i] for i in rng.permutation(len(reads))]
        exact = judge(text, shuffled)
        assert exact.rule == "exact" and "".join(c.char for c in exact.chars) == text
        # One character misread (a plausible confusion): exact rejects, count accepts and relabels.
        k = len(reads) // 2
        wrong = reads[:k] + [replace(reads[k], char="B" if reads[k].char != "B" else "8")] + reads[k + 1 :]
        counted = judge(text, wrong)
        assert counted.rule == "count" and counted.read != text
        assert "".join(c.char for c in counted.chars) == text
        assert [c.box for c in counted.chars] == [c.box for c in ordered(chars)]
        assert judge(text, wrong, count=False).rule is None
        # A character not found: neither rule may guess where it is.
        missing = judge(text, reads[1:])
        assert missing.rule is None and f"{len(text) - 1} boxes for {len(text)}" in missing.reason
        # The right count by accident - one character boxed twice, its neighbour not at all - is no row
        # of characters: rejected.
        doubled = reads[:k] + [replace(wrong[k], box=tuple(v + 1 for v in reads[k - 1].box))] + reads[k + 1 :]
        twice = judge(text, doubled)
        assert twice.rule is None and "overlap" in twice.reason
        # Low-scoring boxes count for the count rule only above its own threshold.
        faint = [replace(c, score=0.05) for c in wrong]
        assert (
            judge(text, faint, count_conf=0.1).rule is None
            and judge(text, faint, count_conf=0.01).rule == "count"
        )


@pytest.mark.slow
@pytest.mark.shared_data
def test_pseudo_label_step_on_real_text_only_crops(tiny_weights, shared_datasets, tmp_path):
    from data.manifest import read_manifest
    from train.pseudo_label import run_pseudo_label

    cfg = compose(
        "train",
        [
            "model=plate_ocr",
            "action=pseudo_label",
            f"pseudo_label.weights={tiny_weights['plate_ocr']}",
            "pseudo_label.src=[openalpr_us_crops]",
            "pseudo_label.max_plates=40",
            f"pseudo_label.out={tmp_path / 'pl'}",
            f"ultralytics_dir={tmp_path / 'ul'}",
        ],
    )
    report = run_pseudo_label(cfg)
    assert report.plates == 40
    assert sum(report.accepted.values()) + report.rejected + sum(report.skipped.values()) == 40
    written = read_manifest(report.manifest, roots=[shared_datasets])  # its images stay in the dataset
    assert not written.issues and len(written.images) <= 40
    for _item, plate in written.plates:
        assert plate.extra["pseudo_label"] in ("exact", "count") and len(plate.chars) == len(plate.text)
    assert json.loads((tmp_path / "pl" / "report.json").read_text())["plates"] == 40
    bad = compose(
        "train",
        [
            "model=plate_ocr",
            f"pseudo_label.weights={tiny_weights['plate_det']}",
            "pseudo_label.src=[openalpr_us_crops]",
            f"pseudo_label.out={tmp_path / 'bad'}",
        ],
    )
    with pytest.raises(Exception, match="plate_det model, not plate_ocr"):
        run_pseudo_label(bad)


@pytest.mark.slow
@pytest.mark.shared_data
def test_pseudo_label_accepts_plates_with_a_trained_model(shared_datasets, tmp_path):
    """With real OCR weights (LPR_TEST_OCR_WEIGHTS, else the shipped model's checkpoint in
    paths.weights), some real text-only crops must be accepted, and every accepted plate's
    characters must spell its known text."""
    shipped = sorted(Path(compose("train").paths.weights).glob("*plate_ocr*.pt"))
    weights = os.environ.get("LPR_TEST_OCR_WEIGHTS") or (str(shipped[0]) if shipped else None)
    if not weights:
        pytest.skip("set LPR_TEST_OCR_WEIGHTS to trained OCR weights (.pt) to check acceptance on real crops")
    from data.manifest import read_manifest
    from train.pseudo_label import run_pseudo_label

    cfg = compose(
        "train",
        [
            "model=plate_ocr",
            f"pseudo_label.weights={weights}",
            "pseudo_label.src=[openalpr_us_crops]",
            "pseudo_label.max_plates=200",
            f"pseudo_label.out={tmp_path}",
            f"ultralytics_dir={tmp_path / 'ul'}",
        ],
    )
    report = run_pseudo_label(cfg)
    assert sum(report.accepted.values()) > 0, report.line()
    for _, plate in read_manifest(report.manifest, roots=[shared_datasets]).plates:
        if "pseudo_label" in plate.extra:
            assert (
                "".join(c.char for c in sorted(plate.chars, key=lambda c: (c.line or 0, c.box[0])))
                == plate.text
            )
