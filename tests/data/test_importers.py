"""Importers of public layouts (OpenALPR, YOLO, COCO, CCPD) into manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.data_scenes import draw_scene, run_data

from data.exporters import export_det
from data.importers import import_dataset, parse_ccpd_name
from data.manifest import read_manifest


def test_openalpr_import_reproduces_boxes_and_texts(tmp_path):
    src = tmp_path / "br"
    truth = {
        "car1.jpg": [((40, 50, 90, 20), "ABC1234")],
        "car2.png": [((10, 10, 60, 25), "XYZ9876"), ((100, 70, 40, 15), "QWE1111")],
    }
    for name, plates in truth.items():
        draw_scene(src / name, 200, 120, [((x, y, x + w, y + h), t) for (x, y, w, h), t in plates])
        (src / name).with_suffix(".txt").write_text(
            "\n".join(f"{name}\t{x}\t{y}\t{w}\t{h}\t{t}" for (x, y, w, h), t in plates) + "\n"
        )
    (src / "broken.txt").write_text("broken.jpg\t1\t2\n")
    result = import_dataset("openalpr", src, tmp_path / "out", region="br")
    got = {Path(i.image).name: [(p.box, p.text) for p in i.plates] for i in result.images}
    assert got == {
        n: [((x, y, x + w, y + h), t) for (x, y, w, h), t in plates] for n, plates in truth.items()
    }
    assert all(i.region == "br" and (i.width, i.height) == (200, 120) for i in result.images)
    assert result.skipped_plates == 1 and result.issues[0].line == 1 and "broken.txt" in result.issues[0].file


@pytest.mark.shared_data
def test_openalpr_import_on_real_benchmark_layout(tmp_path, shared_datasets):
    """Write the OpenALPR benchmark's own layout for the real end-to-end set (links to the images,
    one .txt each), import it, and get back exactly the published boxes and texts."""
    manifest = read_manifest(shared_datasets / "openalpr_br_endtoend")
    src = tmp_path / "endtoend" / "br"
    src.mkdir(parents=True)
    for item in manifest.images:
        image = manifest.image_path(item)
        (src / image.name).symlink_to(image.resolve())
        x1, y1, x2, y2 = item.plates[0].box
        (src / image.name).with_suffix(".txt").write_text(
            f"{image.name}\t{int(x1)}\t{int(y1)}\t{int(x2 - x1)}\t{int(y2 - y1)}\t{item.plates[0].text}\n"
        )
    result = import_dataset("openalpr", src, tmp_path / "out", region="br")
    assert result.issues == [] and len(result.images) == len(manifest.images)
    expected = {
        Path(i.image).name: (i.plates[0].box, i.plates[0].text, i.width, i.height) for i in manifest.images
    }
    got = {Path(i.image).name: (i.plates[0].box, i.plates[0].text, i.width, i.height) for i in result.images}
    assert got == expected


@pytest.mark.shared_data
def test_yolo_round_trip_keeps_boxes_within_one_pixel(tmp_path, shared_datasets):
    manifest = read_manifest(shared_datasets / "uc3m_lp")
    manifest.images = [i for i in manifest.images if i.split in ("train", "val")][:40]
    exported = export_det([manifest], tmp_path / "yolo", splits=["train", "val"], image_size=0)
    assert sum(exported.images.values()) == 40
    back = import_dataset("yolo", tmp_path / "yolo", tmp_path / "back")
    assert back.issues == [] and len(back.images) == 40
    originals = {Path(i.image).stem: i for i in manifest.images}
    for item in back.images:
        original = originals[Path(item.image).stem.rsplit("_", 1)[0]]
        assert item.split == original.split
        assert len(item.plates) == len(original.plates)
        for a, b in zip(
            sorted(p.box for p in item.plates), sorted(p.box for p in original.plates), strict=True
        ):
            assert np.abs(np.subtract(a, b)).max() <= 1.0


def test_coco_import(tmp_path):
    draw_scene(tmp_path / "images" / "a.jpg", 120, 80, [((10, 20, 70, 40), "AB12")])
    coco = {
        "images": [
            {"id": 7, "file_name": "a.jpg", "width": 120, "height": 80},
            {"id": 8, "file_name": "lost.jpg", "width": 120, "height": 80},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "bbox": [10, 20, 60, 20],
                "category_id": 1,
                "attributes": {"plate": "ab12"},
            },
            {"id": 2, "image_id": 7, "bbox": [100, 70, 50, 20], "category_id": 1},
        ],
        "categories": [{"id": 1, "name": "plate"}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    result = import_dataset("coco", tmp_path / "ann.json", tmp_path / "out")
    assert len(result.images) == 1
    assert [(p.box, p.text) for p in result.images[0].plates] == [((10.0, 20.0, 70.0, 40.0), "AB12")]
    kinds = sorted(i.kind for i in result.issues)
    assert kinds == ["bad_image", "box_outside_image"]
    assert result.skipped_images == 1 and result.skipped_plates == 1


@pytest.mark.shared_data
def test_ccpd_import_matches_published_labels(tmp_path, shared_datasets):
    src = shared_datasets / "ccpd_samples"
    published = {Path(i.image).name: i for i in read_manifest(src).images}
    result = import_dataset("ccpd", src / "images", tmp_path / "out")
    assert len(result.images) == len(published) and result.issues == []
    for item in result.images:
        truth = published[Path(item.image).name]
        plate, expected = item.plates[0], truth.plates[0]
        assert plate.box == expected.box
        assert plate.raw_text == expected.text
        assert plate.text == expected.text[1:]  # the province glyph is outside the OCR alphabet
        assert item.region == "cn"


def test_ccpd_name_parsing_rejects_other_names():
    with pytest.raises(ValueError):
        parse_ccpd_name("holiday.jpg")


def test_import_cli_writes_manifest_and_counts_skips(tmp_path):
    src = tmp_path / "src"
    draw_scene(src / "a.jpg", 100, 50, [((5, 5, 45, 20), "AA11")])
    (src / "a.txt").write_text("a.jpg\t5\t5\t40\t15\tAA11\n")
    (src / "b.txt").write_text("b.jpg\t5\t5\t40\t15\tBB22\n")  # image missing
    out = tmp_path / "out"
    proc = run_data("action=import", "format=openalpr", f"src={src}", f"out={out}")
    assert proc.returncode == 0, proc.stderr
    assert "imported 1 images" in proc.stdout and "skipped 1 images" in proc.stdout
    # The images stay in src: reading the manifest needs src among the data roots (and says so).
    assert "paths.data_roots" in proc.stdout
    manifest = read_manifest(out, roots=[src])
    assert [p.text for _, p in manifest.plates] == ["AA11"]
    assert manifest.image_path(manifest.images[0]).resolve() == (src / "a.jpg").resolve()
    assert "b.txt" in (out / "issues.txt").read_text()
