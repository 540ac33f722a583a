"""Plate-swap scenes and hard negatives (data/synth/swap.py) on the real scenes and crops."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from data.images import read_image
from data.manifest import read_manifest
from data.split import assign_splits
from data.synth.swap import ROLE_SPLITS, SwapConfigError, check_role, generate_swap, swap_settings

pytestmark = pytest.mark.shared_data

CONF = Path(__file__).resolve().parents[2] / "conf"


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _split_of(shared: Path, ref: str) -> tuple[str | None, dict]:
    """The split of one referenced image ("dataset:image"), recomputed here from the dataset's own
    split or its conf/dataset `split` block (the same rule as `python -m data action=split`)."""
    name, image = ref.split(":", 1)
    spec = OmegaConf.to_container(OmegaConf.load(CONF / "dataset" / f"{name}.yaml"))
    manifest = read_manifest(shared / name / "labels.jsonl")
    if any(im.split is None for im in manifest.images):
        split = spec.get("split") or {"ratios": {"train": 0.8, "val": 0.1, "test": 0.1}}
        assign_splits(manifest.images, dict(split["ratios"]), key="text", seed=0)
    item = next(im for im in manifest.images if im.image == image)
    return item.split, {"text": item.plates[0].text, "chars": len(item.plates[0].chars)}


@pytest.fixture(scope="module")
def swap_set(shared_datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("swap") / "a"
    return generate_swap("swap", 10, 3, out, progress=False)


def test_same_seed_same_bytes_other_seed_differs(swap_set, tmp_path):
    again = generate_swap("swap", 10, 3, tmp_path / "b", progress=False, workers=2)
    other = generate_swap("swap", 10, 4, tmp_path / "c", progress=False)
    assert _digest(swap_set.parent) == _digest(again.parent)
    assert _digest(swap_set.parent) != _digest(other.parent)


def test_boxes_inside_the_image_and_chars_inside_their_plate(swap_set):
    manifest = read_manifest(swap_set)
    assert len(manifest.images) == 10
    plates = 0
    for item in manifest.images:
        image = read_image(manifest.image_path(item))
        assert image.shape[:2] == (item.height, item.width)
        for plate in item.plates:
            plates += 1
            x1, y1, x2, y2 = plate.box
            assert 0 <= x1 < x2 <= item.width and 0 <= y1 < y2 <= item.height, (item.image, plate.box)
            for ch in plate.chars:
                cx, cy = (ch.box[0] + ch.box[2]) / 2, (ch.box[1] + ch.box[3]) / 2
                # a character's centre lies on its plate (a crop's margin is outside the plate box)
                assert x1 - 2 <= cx <= x2 + 2 and y1 - 2 <= cy <= y2 + 2, (item.image, ch)
    assert plates >= 10  # every scene has at least one labelled plate to replace


def test_texts_come_from_the_source_crops_of_train_splits_only(swap_set, shared_datasets):
    manifest = read_manifest(swap_set)
    crops = 0
    for item in manifest.images:
        scene_split, _ = _split_of(shared_datasets, item.extra["swap"]["scene"])
        assert scene_split == "train", item.extra["swap"]["scene"]
        for plate in item.plates:
            if plate.extra["kind"] != "crop":
                assert plate.extra["kind"] == "synthetic" and plate.extra["style"]
                continue
            crops += 1
            split, truth = _split_of(shared_datasets, plate.extra["source"])
            assert split == "train", plate.extra["source"]
            assert plate.text == truth["text"]
            assert len(plate.chars) + plate.extra.get("hidden_chars", 0) == truth["chars"]
    assert crops > 0


def test_heldout_sets_read_only_heldout_splits(shared_datasets, tmp_path):
    settings = swap_settings("heldout_us")
    assert settings["role"] == "heldout" and settings["synthetic"] == 0.0
    path = generate_swap("swap", 4, 1, tmp_path / "h", swap=settings, progress=False)
    for item in read_manifest(path).images:
        assert _split_of(shared_datasets, item.extra["swap"]["scene"])[0] in ROLE_SPLITS["heldout"]
        for plate in item.plates:
            assert plate.extra["source"].startswith("openalpr_us_crops:")
            assert _split_of(shared_datasets, plate.extra["source"])[0] in ROLE_SPLITS["heldout"]


def test_a_split_the_role_must_not_read_is_refused():
    with pytest.raises(SwapConfigError, match="not allowed for role=train"):
        check_role("train", [{"dataset": "uc3m_lp", "splits": ["train", "val"]}])
    with pytest.raises(SwapConfigError, match="not allowed for role=heldout"):
        check_role("heldout", [{"dataset": "openalpr_us_crops", "splits": ["train"]}])
    with pytest.raises(SwapConfigError, match="evaluation only"):
        bad = swap_settings(scenes=[{"dataset": "openalpr_br_endtoend", "splits": ["train"]}])
        generate_swap("swap", 1, 0, Path("/nonexistent-never-written"), swap=bad, progress=False)


def test_negatives_hold_no_plate_and_are_deterministic(shared_datasets, tmp_path):
    a = generate_swap("negatives", 4, 2, tmp_path / "a", progress=False)
    b = generate_swap("negatives", 4, 2, tmp_path / "b", progress=False)
    assert _digest(a.parent) == _digest(b.parent)
    lines = [json.loads(line) for line in a.read_text().splitlines()]
    assert len(lines) == 4 and all(rec["plates"] == [] and rec["negatives"] for rec in lines)


def test_plates_the_labels_miss_get_a_new_plate_from_a_detectors_predictions(shared_datasets, tmp_path):
    manifest = read_manifest(shared_datasets / "carplates_mixed" / "labels.jsonl")
    predictions = tmp_path / "predictions.jsonl"
    lines = [json.dumps({"header": {"adapter": {"name": "written by this test"}}})]
    for item in manifest.images:  # one confident plate in the top-left corner of every scene, one weak one
        lines.append(
            json.dumps(
                {
                    "image": item.image,
                    "plates": [
                        {"box": [2, 2, 42, 14], "det_score": 0.9},
                        {"box": [60, 2, 100, 14], "det_score": 0.2},
                    ],
                }
            )
        )
    predictions.write_text("\n".join(lines) + "\n")
    settings = swap_settings(
        scenes=[{"dataset": "carplates_mixed", "splits": ["train"], "unlabelled_boxes": str(predictions)}],
        zoom={"p": 0.0},
        synthetic=1.0,
    )
    path = generate_swap("swap", 3, 0, tmp_path / "u", swap=settings, progress=False)
    for item in read_manifest(path).images:
        scene = next(
            im for im in manifest.images if f"carplates_mixed:{im.image}" == item.extra["swap"]["scene"]
        )
        covered = [p for p in item.plates if p.extra.get("over_unlabelled")]
        assert len(covered) == 1  # the confident one only, with a plate and a label of its own
        assert len(item.plates) <= len(scene.plates) + 1
        x1, _, x2, _ = covered[0].box
        assert x1 < 30 or x2 > item.width - 30  # top-left, or top-right in a mirrored scene


@pytest.mark.parametrize("kind", ["no detector output", "another dataset"])
def test_predictions_that_cannot_cover_unlabelled_plates_are_refused(shared_datasets, tmp_path, kind):
    """An evaluation run with end_to_end=false writes `plates: null` on every line; predictions of
    another dataset name none of these scenes. Either would leave every unlabelled plate in the
    scenes as background without a word, so generation stops and says why."""
    manifest = read_manifest(shared_datasets / "carplates_mixed" / "labels.jsonl")
    predictions = tmp_path / "predictions.jsonl"
    if kind == "no detector output":
        rows = [{"image": im.image, "plates": None, "crop_reads": [None]} for im in manifest.images]
    else:
        rows = [{"image": f"images/other_{i}.jpg", "plates": []} for i in range(5)]
    predictions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = swap_settings(
        scenes=[{"dataset": "carplates_mixed", "splits": ["train"], "unlabelled_boxes": str(predictions)}]
    )
    with pytest.raises(SwapConfigError) as e:
        generate_swap("swap", 1, 0, tmp_path / "u", swap=settings, progress=False)
    assert str(predictions) in str(e.value)
    assert ("no detector output" if kind == "no detector output" else "names none") in str(e.value)
    assert not (tmp_path / "u" / "labels.jsonl").exists()


def test_pl_parking_splits_into_text_halves_by_its_own_split_block(shared_datasets, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "pl"
    run = subprocess.run(
        [sys.executable, "-m", "data", "action=split", "dataset=pl_parking", f"out={out}"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 0, run.stderr[-2000:]
    items = read_manifest(out / "labels.jsonl", roots=[shared_datasets]).images  # images stay in the dataset
    splits = {im.split for im in items}
    assert splits == {"train", "test"}  # the dataset's halves, no val
    train = {p.text for im in items if im.split == "train" for p in im.plates}
    test = {p.text for im in items if im.split == "test" for p in im.plates}
    assert not train & test and 0.4 < len([i for i in items if i.split == "test"]) / len(items) < 0.6
