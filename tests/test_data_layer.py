"""The data layer: manifest, importers, validation, split, exporters, stats, contact sheets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from data.exporters import export_det, export_ocr
from data.importers import import_dataset, parse_ccpd_name
from data.manifest import LabeledImage, read_manifest, rebase, write_manifest
from data.split import assign_splits
from data.validate import validate
from runtime.records import Char, Plate

ROOT = Path(__file__).resolve().parent.parent


def draw_scene(
    path: Path, width: int, height: int, plates: list[tuple[tuple[int, int, int, int], str]], seed: int = 0
) -> None:
    """A scene made by our own code: noise background, white plates with black characters."""
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 120, size=(height, width, 3), dtype=np.uint8)
    for (x1, y1, x2, y2), text in plates:
        cv2.rectangle(image, (x1, y1), (x2, y2), (235, 235, 235), -1)
        cv2.putText(image, text, (x1 + 3, y2 - 4), cv2.FONT_HERSHEY_SIMPLEX, (y2 - y1) / 30, (10, 10, 10), 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def run_data(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "data", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


# --- records and manifest -------------------------------------------------------------------------


def test_manifest_round_trip_keeps_unknown_fields(tmp_path):
    plate = Plate(
        box=(1, 2, 30, 12),
        text="AB12",
        lines=1,
        extra={"raw_text": "AB-12"},
        chars=[
            Char("A", (2, 3, 8, 11)),
            Char("B", (9, 3, 15, 11)),
            Char("1", (16, 3, 22, 11)),
            Char("2", (23, 3, 29, 11)),
        ],
    )
    item = LabeledImage(
        image="images/x.jpg",
        width=40,
        height=20,
        plates=[plate],
        region="br",
        split="val",
        extra={"source": "somewhere", "crop": False},
    )
    path = write_manifest(tmp_path, [item])
    back = read_manifest(path)
    assert back.issues == []
    assert back.images[0].to_dict() == item.to_dict()
    assert back.images[0].plates[0].extra == {"raw_text": "AB-12"}


def test_malformed_lines_are_reported_with_line_numbers(tmp_path):
    good = {"image": "a.jpg", "width": 10, "height": 10, "plates": []}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"image": "b.jpg", "width": 0, "height": 5}),
        json.dumps({"image": "c.jpg", "width": 10, "height": 10, "plates": [{"box": [5, 5, 1, 1]}]}),
    ]
    (tmp_path / "labels.jsonl").write_text("\n".join(lines) + "\n")
    manifest = read_manifest(tmp_path)
    assert len(manifest.images) == 1
    assert [(i.line, i.kind) for i in manifest.issues] == [
        (2, "malformed_json"),
        (3, "malformed_record"),
        (4, "malformed_record"),
    ]
    assert "x2 < x1" in manifest.issues[2].message


def test_validate_finds_every_kind_of_problem(tmp_path):
    draw_scene(tmp_path / "images" / "ok.jpg", 100, 60, [((10, 10, 50, 25), "AB1")])
    draw_scene(tmp_path / "images" / "small.jpg", 80, 60, [])
    (tmp_path / "images" / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    records = [
        LabeledImage("images/ok.jpg", 100, 60, [Plate((10, 10, 50, 25), "AB1")]),  # fine
        LabeledImage("images/ok.jpg", 100, 60, [Plate((10, 10, 120, 25), "ab-1")]),  # dup, outside, text
        LabeledImage("images/missing.jpg", 100, 60, []),
        LabeledImage("images/corrupt.jpg", 100, 60, []),
        LabeledImage("images/small.jpg", 100, 60, []),  # size mismatch
        LabeledImage(
            "images/small.jpg",
            80,
            60,
            [Plate((1, 1, 20, 9), "AB", chars=[Char("A", (1, 1, 9, 9)), Char("C", (10, 1, 19, 9))])],
        ),
    ]
    manifest = read_manifest(write_manifest(tmp_path, records))
    issues = validate(manifest, progress=False)
    by_line = {(i.line, i.kind) for i in issues}
    assert by_line == {
        (2, "duplicate_image"),
        (2, "box_outside_image"),
        (2, "illegal_text"),
        (3, "bad_image"),
        (4, "bad_image"),
        (5, "size_mismatch"),
        (6, "duplicate_image"),
        (6, "chars_mismatch"),
    }
    assert any("missing.jpg" in i.message and "no such image" in i.message for i in issues)
    assert any("corrupt.jpg" in i.message and "not a decodable image" in i.message for i in issues)


def test_validate_cli_exit_codes(tmp_path):
    draw_scene(tmp_path / "good" / "a.jpg", 64, 48, [((5, 5, 30, 15), "X1")])
    write_manifest(tmp_path / "good", [LabeledImage("a.jpg", 64, 48, [Plate((5, 5, 30, 15), "X1")])])
    ok = run_data("action=validate", f"src={tmp_path / 'good'}")
    assert ok.returncode == 0, ok.stderr
    assert "no issues" in ok.stdout
    write_manifest(tmp_path / "bad", [LabeledImage("gone.jpg", 64, 48, [])])
    bad = run_data("action=validate", f"src={tmp_path / 'bad'}")
    assert bad.returncode == 1
    assert "labels.jsonl:1" in bad.stdout and "gone.jpg" in bad.stdout
    missing = run_data("action=validate", f"src={tmp_path / 'nowhere'}")
    assert missing.returncode == 2 and "no manifest" in missing.stderr


# --- importers ------------------------------------------------------------------------------------


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
        for a, b in zip(sorted(p.box for p in item.plates), sorted(p.box for p in original.plates)):
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
        assert plate.extra["raw_text"] == expected.text
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


# --- split ----------------------------------------------------------------------------------------


def test_split_never_puts_one_plate_in_two_splits():
    rng = np.random.default_rng(1)
    texts = [f"AB{i:03d}" for i in range(150)]
    items = []
    for k in range(300):
        chosen = [texts[rng.integers(len(texts))] for _ in range(1 + (k % 15 == 0))]
        items.append(LabeledImage(f"i{k}.jpg", 10, 10, [Plate((0, 0, 5, 5), t) for t in chosen]))
    items.append(LabeledImage("unknown.jpg", 10, 10, [Plate((0, 0, 5, 5), None)]))
    counts = assign_splits(items, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    where: dict[str, set] = {}
    for it in items:
        for p in it.plates:
            if p.text:
                where.setdefault(p.text, set()).add(it.split)
    assert all(len(s) == 1 for s in where.values())
    assert sum(counts.values()) == len(items) and counts["train"] > counts["val"] > 0
    again = [LabeledImage(i.image, 10, 10, i.plates) for i in items]
    assign_splits(again, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    assert [i.split for i in again] == [i.split for i in items]


def test_split_by_record_field_keeps_videos_together():
    items = [LabeledImage(f"f{k}.jpg", 10, 10, [], extra={"video": f"v{k % 5}"}) for k in range(50)]
    assign_splits(items, {"train": 0.6, "val": 0.4}, key="video")
    per_video = {}
    for it in items:
        per_video.setdefault(it.extra["video"], set()).add(it.split)
    assert all(len(s) == 1 for s in per_video.values())


# --- exporters ------------------------------------------------------------------------------------


def test_ocr_export_cuts_model_sized_crops_with_char_labels(tmp_path):
    draw_scene(tmp_path / "s.jpg", 300, 200, [((100, 80, 220, 120), "")])
    chars = [Char(c, (104 + 28 * k, 86, 126 + 28 * k, 114)) for k, c in enumerate("AB1Z")]
    plate = Plate((100, 80, 220, 120), "AB1Z", chars=chars, lines=1)
    manifest = read_manifest(
        write_manifest(tmp_path, [LabeledImage("s.jpg", 300, 200, [plate], split="train")])
    )
    names = list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    result = export_ocr(
        [manifest], tmp_path / "ocr", names, 128, 256, pad_x=0.06, pad_y=0.12, splits=["train"]
    )
    assert result.images["train"] == 1 and result.labels == 4
    image = cv2.imread(str(next((tmp_path / "ocr" / "images" / "train").glob("*.jpg"))))
    assert image.shape == (128, 256, 3)
    rows = [
        line.split()
        for line in next((tmp_path / "ocr" / "labels" / "train").glob("*.txt")).read_text().splitlines()
    ]
    assert [names[int(r[0])] for r in rows] == list("AB1Z")
    centres = [float(r[1]) for r in rows]
    assert centres == sorted(centres) and all(0 < float(v) < 1 for r in rows for v in r[1:])
    spec = yaml.safe_load((tmp_path / "ocr" / "data.yaml").read_text())
    assert spec["names"][10] == "A" and spec["train"] == "images/train"


# --- stats and show -------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_stats_and_contact_sheet_on_real_data(tmp_path, shared_datasets):
    out = tmp_path / "stats"
    proc = run_data("action=stats", f"src={shared_datasets / 'uc3m_lp'}", f"out={out}")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((out / "stats.json").read_text())
    manifest = read_manifest(shared_datasets / "uc3m_lp")
    assert stats["images"] == len(manifest.images)
    assert stats["plates"] == sum(len(i.plates) for i in manifest.images)
    assert stats["char_boxes"] == sum(len(p.chars) for _, p in manifest.plates)
    assert sum(stats["plate_width_buckets"].values()) == stats["plates"]
    assert "plates_with_char_boxes" in proc.stdout
    plot = cv2.imread(str(out / "stats.png"))
    assert plot is not None and plot.shape[0] > 300
    sheet_dir = tmp_path / "show"
    proc = run_data(
        "action=show",
        f"src={shared_datasets / 'uc3m_lp'}",
        f"out={sheet_dir}",
        "show.n=12",
        "show.columns=4",
        "show.tile=200",
    )
    assert proc.returncode == 0, proc.stderr
    sheet = cv2.imread(str(sheet_dir / "contact_sheet.png"))
    assert sheet.shape == (3 * 200, 4 * 200, 3)
    assert sheet.std() > 10  # real pictures were drawn, not a blank canvas


def test_rebase_keeps_images_reachable(tmp_path):
    draw_scene(tmp_path / "a" / "img.jpg", 20, 20, [])
    manifest = read_manifest(write_manifest(tmp_path / "a", [LabeledImage("img.jpg", 20, 20)]))
    moved = read_manifest(
        write_manifest(tmp_path / "b" / "c", rebase(manifest, tmp_path / "b" / "c")), roots=[tmp_path / "a"]
    )
    assert moved.image_path(moved.images[0]).resolve() == (tmp_path / "a" / "img.jpg").resolve()


# --- compact copies ---------------------------------------------------------------------------------


def test_compact_copy_of_real_scenes_keeps_plates_where_they_are(tmp_path, shared_datasets):
    """ccpd_samples: 720x1160 scenes with plate boxes and four corners each, shrunk to 400 px."""
    src = read_manifest(shared_datasets / "ccpd_samples")
    proc = run_data(
        "action=compact",
        f"src={shared_datasets / 'ccpd_samples'}",
        f"out={tmp_path / 'c'}",
        "compact.max_side=400",
        "compact.quality=90",
    )
    assert proc.returncode == 0, proc.stderr
    out = read_manifest(tmp_path / "c")
    assert len(out.images) == len(src.images) and not out.issues
    assert sum(p.stat().st_size for p in (tmp_path / "c" / "images").iterdir()) < sum(
        src.image_path(i).stat().st_size for i in src.images
    )
    for a, b in zip(src.images, out.images):
        image = cv2.imread(str(out.image_path(b)))
        assert (image.shape[1], image.shape[0]) == (b.width, b.height) and max(b.width, b.height) == 400
        s = b.width / a.width
        for pa, pb in zip(a.plates, b.plates):
            assert pb.text == pa.text and pb.extra["raw_text"] == pa.extra["raw_text"]
            assert np.allclose(pb.box, np.array(pa.box) * s, atol=0.01)
            assert np.allclose(pb.extra["corners"], np.array(pa.extra["corners"]) * s, atol=0.01)
            # Under the scaled box lie the original plate's pixels, shrunk (JPEG noise aside: about 6 of
            # 255 on these sharp plates), and not those 4 pixels off (17-52 measured).
            shrunk = cv2.resize(
                cv2.imread(str(src.image_path(a))), (b.width, b.height), interpolation=cv2.INTER_AREA
            )
            x1, y1, x2, y2 = (int(round(v)) for v in pb.box)

            def diff(dx: int) -> float:
                return float(
                    np.abs(
                        image[y1:y2, x1:x2].astype(int) - shrunk[y1:y2, x1 + dx : x2 + dx].astype(int)
                    ).mean()
                )

            assert diff(0) < 10 and 2 * diff(0) < min(diff(4), diff(-4))


def test_compact_reports_unreadable_images_and_keeps_only_chosen_splits(tmp_path):
    draw_scene(tmp_path / "src" / "images" / "good.png", 800, 600, [((100, 100, 300, 160), "AB123")])
    draw_scene(tmp_path / "src" / "images" / "val.png", 800, 600, [((100, 100, 300, 160), "CD456")])
    (tmp_path / "src" / "images" / "broken.png").write_bytes(b"not an image")
    plate = Plate(box=(100, 100, 300, 160), text="AB123", chars=[Char("A", (104, 104, 140, 156))])
    write_manifest(
        tmp_path / "src",
        [
            LabeledImage("images/good.png", 800, 600, [plate], split="train"),
            LabeledImage("images/val.png", 800, 600, [plate], split="val"),
            LabeledImage("images/broken.png", 800, 600, [plate], split="train"),
        ],
    )
    proc = run_data(
        "action=compact",
        f"src={tmp_path / 'src'}",
        f"out={tmp_path / 'c'}",
        "compact.max_side=400",
        "compact.splits=[train]",
    )
    assert proc.returncode == 0, proc.stderr
    assert "broken.png" in proc.stdout and "1 outside the chosen splits" in proc.stdout
    out = read_manifest(tmp_path / "c")
    assert [i.image for i in out.images] == ["images/good.jpg"]
    (plate_out,) = out.images[0].plates
    assert plate_out.box == (50, 50, 150, 80) and plate_out.chars[0].box == (52, 52, 70, 78)
    assert "broken.png" in (tmp_path / "c" / "issues.txt").read_text()
