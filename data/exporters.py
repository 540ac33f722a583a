"""Exporters: plate manifests -> Ultralytics detection datasets (images + labels + data.yaml).

* ``det``: full images, one class (plate), resized so the long side is at most ``image_size``.
* ``ocr``: plate crops cut exactly as the runtime cuts them (``runtime.geometry``: padding from the
  OCR model's config, then a letterbox into the model's input size with fill 114), with the
  character boxes in crop coordinates. Every crop has the model's shape, so Ultralytics'
  rectangular batches do not group crops by source (they sort by aspect ratio).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from data.images import read_image, write_image
from data.manifest import Issue, LabeledImage, Manifest
from runtime.geometry import Letterbox, letterbox, plate_crop_box
from runtime.records import Box, Char, Plate


@dataclass
class ExportResult:
    out: Path
    data_yaml: Path
    images: Counter = field(default_factory=Counter)  # per split
    labels: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    issues: list[Issue] = field(default_factory=list)

    def summary(self) -> str:
        per_split = ", ".join(f"{s}: {n}" for s, n in sorted(self.images.items()))
        skipped = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common()) or "none"
        return (
            f"wrote {sum(self.images.values())} images ({per_split}), {self.labels} boxes to {self.out}; "
            f"skipped: {skipped}"
        )


def _unique_name(manifest: Manifest, item: LabeledImage, suffix: str = "") -> str:
    """A file name unique across manifests (two datasets may both have images/00001.jpg)."""
    digest = hashlib.sha1(f"{manifest.path.resolve()}::{item.image}{suffix}".encode()).hexdigest()[:10]
    return f"{Path(item.image).stem}{suffix}_{digest}"


def _yolo_line(cls: int, box: Box, width: float, height: float) -> str:
    # Labels may overshoot the image by a rounding pixel (validate tolerates 1 px); YOLO wants 0..1.
    x1, y1 = max(0.0, box[0]), max(0.0, box[1])
    x2, y2 = min(float(width), box[2]), min(float(height), box[3])
    cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
    bw, bh = (x2 - x1) / width, (y2 - y1) / height
    return f"{cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}"


def _write_data_yaml(out: Path, names: Sequence[str], splits: Sequence[str]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    spec = {"path": str(out.resolve()), "names": {i: n for i, n in enumerate(names)}}
    for split in splits:
        spec[split] = f"images/{split}"
    path = out / "data.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path


def _split_of(item: LabeledImage, splits: Sequence[str]) -> str | None:
    if item.split is None:
        return splits[0]
    return item.split if item.split in splits else None


def export_det(
    manifests: Sequence[Manifest],
    out: str | Path,
    splits: Sequence[str] = ("train", "val"),
    image_size: int = 640,
    names: Sequence[str] = ("plate",),
) -> ExportResult:
    """Full images with plate boxes. Crop datasets are skipped (a crop is not a scene)."""
    out = Path(out)
    result = ExportResult(out=out, data_yaml=_write_data_yaml(out, names, splits))
    _make_split_dirs(out, splits)
    for manifest in manifests:
        for item in tqdm(manifest.images, desc=f"yolo det {manifest.root.name}", unit="img", leave=False):
            split = _split_of(item, splits)
            if split is None:
                result.skipped["split not exported"] += 1
                continue
            if item.is_crop:
                result.skipped["crop image (not a scene)"] += 1
                continue
            try:
                image = read_image(manifest.image_path(item))
            except (FileNotFoundError, ValueError) as e:
                result.issues.append(Issue(str(manifest.path), item.line, "bad_image", str(e)))
                result.skipped["unreadable image"] += 1
                continue
            h, w = image.shape[:2]
            scale = min(1.0, image_size / max(h, w)) if image_size else 1.0
            if scale < 1.0:
                image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            name = _unique_name(manifest, item)
            write_image(out / "images" / split / f"{name}.jpg", image)
            # Normalised coordinates do not change with the resize: label against the record's size.
            lines = [
                _yolo_line(0, p.box, item.width, item.height)
                for p in item.plates
                if p.width > 0 and p.height > 0
            ]
            (out / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            result.images[split] += 1
            result.labels += len(lines)
    return result


def _make_split_dirs(out: Path, splits: Sequence[str]) -> None:
    """images/<split>/ and labels/<split>/, as Ultralytics' YOLO layout has them."""
    for split in splits:
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)


def jitter_box(box: Box, amount: float, rng: np.random.Generator) -> Box:
    """Shift each side by up to ``amount`` of the plate's size, as a detector's boxes wander."""
    if amount <= 0:
        return box
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    dx1, dx2, dy1, dy2 = ((2 * rng.random(4) - 1) * amount).tolist()
    nx1, nx2 = sorted((x1 + dx1 * w, x2 + dx2 * w))
    ny1, ny2 = sorted((y1 + dy1 * h, y2 + dy2 * h))
    return (nx1, ny1, nx2, ny2)


def cut_region(
    image: np.ndarray,
    box: Box,
    input_height: int,
    input_width: int,
    pad_x: float,
    pad_y: float,
    fill: int = 114,
) -> tuple[np.ndarray, Letterbox, tuple[int, int, int, int]] | None:
    """The OCR model's input for the plate at ``box``: the padded region (as the runtime cuts it)
    letterboxed to the input size; with the letterbox and the region (image pixels) to map boxes
    back. None when the region is empty."""
    region = plate_crop_box(box, image.shape[1], image.shape[0], pad_x, pad_y)
    if region is None:
        return None
    x1, y1, x2, y2 = region
    crop, lb = letterbox(image[y1:y2, x1:x2], input_height, input_width, fill)
    return crop, lb, region


def cut_plate(
    image: np.ndarray,
    plate: Plate,
    input_height: int,
    input_width: int,
    pad_x: float,
    pad_y: float,
    fill: int = 114,
    box: Box | None = None,
    min_visible: float = 0.6,
) -> tuple[np.ndarray, list[Char]] | None:
    """The OCR model's input for one plate, and the plate's characters in that input's pixels.

    Characters less than ``min_visible`` inside the crop are dropped (a jittered crop can cut one
    off). None when the crop is empty.
    """
    cut = cut_region(image, box or plate.box, input_height, input_width, pad_x, pad_y, fill)
    if cut is None:
        return None
    crop, lb, (cx1, cy1, cx2, cy2) = cut
    chars = []
    for ch in plate.chars:
        bx1, by1, bx2, by2 = ch.box
        area = max(0.0, bx2 - bx1) * max(0.0, by2 - by1)
        vx1, vy1, vx2, vy2 = max(bx1, cx1), max(by1, cy1), min(bx2, cx2), min(by2, cy2)
        visible = max(0.0, vx2 - vx1) * max(0.0, vy2 - vy1)
        if area <= 0 or visible / area < min_visible:
            continue
        chars.append(Char(char=ch.char, box=lb.box_to_model((vx1, vy1, vx2, vy2), (cx1, cy1)), line=ch.line))
    return crop, chars


def export_ocr(
    manifests: Sequence[Manifest],
    out: str | Path,
    names: Sequence[str],
    input_height: int,
    input_width: int,
    pad_x: float,
    pad_y: float,
    fill: int = 114,
    splits: Sequence[str] = ("train", "val"),
    jitter: float = 0.0,
    copies: int = 1,
    seed: int = 0,
) -> ExportResult:
    """Plate crops with character boxes. Plates without character boxes are skipped and counted
    (text-only plates reach OCR training through pseudo-labelling)."""
    out = Path(out)
    result = ExportResult(out=out, data_yaml=_write_data_yaml(out, names, splits))
    index = {n: i for i, n in enumerate(names)}
    rng = np.random.default_rng(seed)
    _make_split_dirs(out, splits)
    for manifest in manifests:
        for item in tqdm(manifest.images, desc=f"yolo ocr {manifest.root.name}", unit="img", leave=False):
            split = _split_of(item, splits)
            if split is None:
                result.skipped["split not exported"] += len(item.plates)
                continue
            usable = [p for p in item.plates if p.chars]
            result.skipped["plate without character boxes"] += len(item.plates) - len(usable)
            if not usable:
                continue
            try:
                image = read_image(manifest.image_path(item))
            except (FileNotFoundError, ValueError) as e:
                result.issues.append(Issue(str(manifest.path), item.line, "bad_image", str(e)))
                result.skipped["unreadable image"] += len(usable)
                continue
            for pi, plate in enumerate(usable):
                unknown = sorted({c.char for c in plate.chars if c.char not in index})
                if unknown:
                    result.issues.append(
                        Issue(
                            str(manifest.path),
                            item.line,
                            "illegal_char",
                            f"{item.image} plate {pi}: {unknown} not among the model's classes",
                        )
                    )
                    result.skipped["characters outside the alphabet"] += 1
                    continue
                for copy in range(copies):
                    box = jitter_box(plate.box, jitter, rng) if copy or jitter else plate.box
                    cut = cut_plate(image, plate, input_height, input_width, pad_x, pad_y, fill, box=box)
                    if cut is None:
                        result.skipped["empty crop"] += 1
                        continue
                    crop, chars = cut
                    name = _unique_name(manifest, item, suffix=f"_p{pi}_c{copy}")
                    write_image(out / "images" / split / f"{name}.jpg", crop)
                    lines = [_yolo_line(index[c.char], c.box, input_width, input_height) for c in chars]
                    (out / "labels" / split / f"{name}.txt").write_text(
                        "\n".join(lines) + ("\n" if lines else "")
                    )
                    result.images[split] += 1
                    result.labels += len(lines)
    return result
