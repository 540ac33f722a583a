"""The export stage's DeGirum post-processing sweep (export/degirum_tune.py): real training crops,
DeGirum's own post-processor on the shipped OCR entry, the best setting chosen and every row kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stage.config import compose

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ZOO = PROJECT_ROOT / "runtime" / "zoo"


def test_grid_keeps_order_and_skips_runs_that_cannot_differ():
    from export.degirum_tune import PostSetting, grid

    settings = grid(
        {"use_regular_nms": [False, True], "max_classes_per_detection": [1, 2], "conf": [0.3], "nms": [0.6]}
    )
    # MaxClassesPerDetection only acts in the fast suppression: with UseRegularNMS one run, not two.
    assert settings == [
        PostSetting(False, 1, 0.3, 0.6),
        PostSetting(False, 2, 0.3, 0.6),
        PostSetting(True, 1, 0.3, 0.6),
    ]
    assert settings[0].json_keys() == {
        "OutputConfThreshold": 0.3,
        "OutputNMSThreshold": 0.6,
        "UseRegularNMS": False,
        "MaxClassesPerDetection": 1,
    }


@pytest.mark.shared_data
def test_training_items_split_a_manifest_without_splits_as_the_data_stage_does(shared_datasets):
    from data.manifest import read_manifest
    from export.degirum_tune import training_items

    manifest = read_manifest(shared_datasets / "openalpr_br_crops" / "labels.jsonl")
    ratios = dict(compose("data").split.ratios)
    train = training_items(manifest, "train", ratios, 0)
    held_out = {i.plates[0].text for i in manifest.images if i.split in ("val", "test")}
    assert 0.7 * len(manifest.images) < len(train) < 0.9 * len(manifest.images)
    assert not {i.plates[0].text for i in train} & held_out  # one plate never in two splits


@pytest.mark.shared_data
def test_sweep_on_training_crops_chooses_the_best_measured_setting(shared_datasets, tmp_path):
    import degirum as dg

    if "ONNX/CPU" not in dg.get_supported_devices("@local"):
        pytest.skip("DeGirum's ONNX/CPU agent is not enabled (python -m runtime.degirum_setup)")
    from export.degirum_tune import grid, load_samples, sweep, write_chosen

    src = next(p for p in ZOO.iterdir() if "_ocr" in p.name and "_float_" in p.name)
    entry = tmp_path / "zoo" / src.name
    shutil.copytree(src, entry)
    config = entry / f"{src.name}.json"
    cfg = compose("export")
    t = cfg.degirum.tune
    samples = load_samples(
        ["openalpr_br_crops"], "plate_ocr", "train", 25, cfg.paths, dict(t.split_ratios), int(t.seed)
    )
    assert len(samples["openalpr_br_crops"]) == 25
    spec = {
        "use_regular_nms": [True, False],
        "max_classes_per_detection": [1, 3],
        "conf": [0.3],
        "nms": [0.6],
    }
    result = sweep(config, "plate_ocr", samples, grid(spec), fill=114)
    rows = result["rows"]
    assert len(rows) == 3 and all(r["crops"] == 25 for r in rows)
    best = max(r["exact"] for r in rows)
    chosen = next(r for r in rows if r["exact"] == best)  # the first of the best
    assert result["chosen"] == {k: chosen[k] for k in result["chosen"]}
    write_chosen(config, result["chosen"])
    post = json.loads(config.read_text())["POST_PROCESS"][0]
    assert {k: post[k] for k in result["chosen"]} == result["chosen"]
    from export.zoo import check_entry

    check_entry(config)  # the checksum is the model's: still a valid entry
