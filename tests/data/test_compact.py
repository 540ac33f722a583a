"""Compact copies of datasets: images shrunk, boxes scaled, unreadable images reported."""

from __future__ import annotations

import cv2
import numpy as np
from helpers.data_scenes import draw_scene, run_data

from data.manifest import LabeledImage, read_manifest, write_manifest
from runtime.records import Char, Plate


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
    for a, b in zip(src.images, out.images, strict=True):
        image = cv2.imread(str(out.image_path(b)))
        assert (image.shape[1], image.shape[0]) == (b.width, b.height) and max(b.width, b.height) == 400
        s = b.width / a.width
        for pa, pb in zip(a.plates, b.plates, strict=True):
            assert pb.text == pa.text and pb.raw_text == pa.raw_text
            assert np.allclose(pb.box, np.array(pa.box) * s, atol=0.01)
            assert np.allclose(pb.extra["corners"], np.array(pa.extra["corners"]) * s, atol=0.01)
            # Under the scaled box lie the original plate's pixels, shrunk (JPEG noise aside: about 6 of
            # 255 on these sharp plates), and not those 4 pixels off (17-52 measured).
            shrunk = cv2.resize(
                cv2.imread(str(src.image_path(a))), (b.width, b.height), interpolation=cv2.INTER_AREA
            )
            x1, y1, x2, y2 = (int(round(v)) for v in pb.box)

            def diff(dx: int, image=image, shrunk=shrunk, x1=x1, y1=y1, x2=x2, y2=y2) -> float:
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
