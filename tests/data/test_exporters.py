"""Exports for training: OCR crops cut as the runtime cuts them, with character labels."""

from __future__ import annotations

import cv2
import yaml
from helpers.data_scenes import draw_scene

from data.exporters import export_ocr
from data.manifest import LabeledImage, read_manifest, write_manifest
from runtime.records import Char, Plate


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
