"""Importers: public dataset layouts -> plate manifest.

Every importer opens each image (its size goes in the record, and a missing or corrupt file must
be caught here rather than in the middle of a training run), converts the labels, and reports
every record it skips as an :class:`Issue` with the file and line. Image paths in the written
manifest are relative to the output folder, so images stay where they are.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm import tqdm

from data.errors import DataError
from data.images import IMAGE_SUFFIXES, list_images, read_image_size
from data.manifest import Issue, LabeledImage, read_manifest, text_problem
from data.validate import record_issues
from runtime.records import ALPHABET, Char, Plate


@dataclass
class ImportResult:
    images: list[LabeledImage] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    skipped_images: int = 0
    skipped_plates: int = 0

    def summary(self) -> str:
        plates = sum(len(i.plates) for i in self.images)
        return (
            f"imported {len(self.images)} images, {plates} plates; skipped {self.skipped_images} images "
            f"and {self.skipped_plates} plates ({len(self.issues)} issues)"
        )


class _Importer:
    """Shared bookkeeping: image opening, path rebasing, issue counting."""

    def __init__(self, out: Path, region: str | None):
        self.out = out
        self.region = region
        self.result = ImportResult()

    def issue(self, file: Path | str, line: int | None, kind: str, message: str) -> None:
        self.result.issues.append(Issue(str(file), line, kind, message))

    def size(self, image: Path, label_file: Path | str, line: int | None) -> tuple[int, int] | None:
        try:
            return read_image_size(image)
        except (FileNotFoundError, ValueError) as e:
            self.issue(label_file, line, "bad_image", str(e))
            self.result.skipped_images += 1
            return None

    def rel(self, image: Path) -> str:
        return Path(os.path.relpath(image.resolve(), self.out.resolve())).as_posix()

    def keep_plate(
        self,
        plate: Plate,
        width: int,
        height: int,
        label_file: Path | str,
        line: int | None,
        tol: float = 1.0,
    ) -> Plate | None:
        """The plate as labelled (boxes are not altered: an import reproduces its source), or None
        when it is unusable (box outside the image beyond ``tol`` px, empty box). A text outside
        the alphabet is moved to ``raw_text`` and the plate kept with an unknown text."""
        problem = text_problem(plate.text)
        if problem:
            self.issue(label_file, line, "illegal_text", f"{problem}; text set to null, kept in raw_text")
            if plate.raw_text is None:
                plate.raw_text = plate.text
            plate.text = None
        probe = LabeledImage(image=str(label_file), width=width, height=height, plates=[plate], line=line)
        problems = record_issues(probe, str(label_file), tol=tol)
        if problems:
            self.result.issues.extend(problems)
            self.result.skipped_plates += 1
            return None
        return plate

    def add(self, image: Path, width: int, height: int, plates: list[Plate], **extra) -> None:
        self.result.images.append(
            LabeledImage(
                image=self.rel(image),
                width=width,
                height=height,
                plates=plates,
                region=self.region,
                extra={k: v for k, v in extra.items() if v is not None},
            )
        )


def _progress(items, desc: str):
    return tqdm(items, desc=desc, unit="img", leave=False)


# --- OpenALPR benchmark folders -------------------------------------------------------------------


def import_openalpr(src: Path, out: Path, region: str | None = None) -> ImportResult:
    """OpenALPR benchmarks: ``<image>.txt`` beside each image, one plate per line:
    ``file<TAB>x<TAB>y<TAB>w<TAB>h<TAB>PLATE`` (x, y = top-left corner, pixels)."""
    imp = _Importer(out, region)
    label_files = sorted(src.rglob("*.txt"))
    if not label_files:
        raise FileNotFoundError(f"{src}: no OpenALPR label files (<image>.txt) found")
    for label in _progress(label_files, "import openalpr"):
        image = next(
            (
                label.with_suffix(s)
                for s in IMAGE_SUFFIXES | {s.upper() for s in IMAGE_SUFFIXES}
                if label.with_suffix(s).is_file()
            ),
            None,
        )
        plates_raw = []
        for lineno, raw in enumerate(
            label.read_text(encoding="utf-8", errors="replace").splitlines(), start=1
        ):
            if not raw.strip():
                continue
            fields = raw.split("\t") if "\t" in raw else raw.split()
            if len(fields) < 5:
                imp.issue(label, lineno, "malformed_line", f"expected file, x, y, w, h, plate; got {raw!r}")
                imp.result.skipped_plates += 1
                continue
            if image is None:
                named = label.parent / fields[0].strip()
                image = named if named.is_file() else None
            try:
                x, y, w, h = (float(v) for v in fields[1:5])
            except ValueError:
                imp.issue(label, lineno, "malformed_line", f"x, y, w, h are not numbers: {raw!r}")
                imp.result.skipped_plates += 1
                continue
            text = fields[5].strip().upper() if len(fields) > 5 and fields[5].strip() else None
            plates_raw.append((lineno, Plate(box=(x, y, x + w, y + h), text=text)))
        if image is None:
            imp.issue(label, None, "bad_image", f"no image beside {label.name}")
            imp.result.skipped_images += 1
            continue
        size = imp.size(image, label, None)
        if size is None:
            continue
        plates = [p for ln, p in plates_raw if imp.keep_plate(p, *size, label, ln) is not None]
        imp.add(image, *size, plates)
    return imp.result


# --- YOLO detection folders -----------------------------------------------------------------------


def _yolo_pairs(root: Path, data_yaml: dict) -> list[tuple[Path, str | None]]:
    """(image, split) pairs from a data.yaml's split entries (folders or list files)."""
    base = Path(data_yaml.get("path") or root)
    if not base.is_absolute():
        base = (root / base).resolve()
    pairs: list[tuple[Path, str | None]] = []
    for split in ("train", "val", "test"):
        entry = data_yaml.get(split)
        if not entry:
            continue
        for e in entry if isinstance(entry, list) else [entry]:
            p = base / e
            if p.is_dir():
                pairs += [(img, split) for img in list_images(p)]
            elif p.is_file() and p.suffix == ".txt":
                pairs += [
                    ((base / line.strip()).resolve(), split)
                    for line in p.read_text().splitlines()
                    if line.strip()
                ]
    return pairs


def _yolo_label_path(image: Path) -> Path:
    """Ultralytics' rule: the last /images/ in the path becomes /labels/, the suffix .txt."""
    parts = list(image.parts)
    idx = max((i for i, part in enumerate(parts) if part == "images"), default=None)
    if idx is None:
        return image.with_suffix(".txt")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def import_yolo(src: Path, out: Path, region: str | None = None) -> ImportResult:
    """Ultralytics detection layout: ``data.yaml`` (names, train/val/test) + images/ and labels/.

    A plate dataset (any class names) gives one plate per box. A character dataset (every class a
    single character of 0-9A-Z, as ``action=yolo yolo.kind=ocr`` writes) gives one crop record per
    image, the plate being the whole image and the boxes its characters.
    """
    imp = _Importer(out, region)
    yaml_path = (
        src
        if src.is_file()
        else next((src / n for n in ("data.yaml", "dataset.yaml") if (src / n).is_file()), None)
    )
    if yaml_path is None:
        raise FileNotFoundError(f"{src}: no data.yaml")
    spec = yaml.safe_load(yaml_path.read_text()) or {}
    names = spec.get("names")
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names or [])
    if not names:
        raise DataError(f"{yaml_path}: 'names' is missing or empty")
    is_chars = all(isinstance(n, str) and len(n) == 1 and n in ALPHABET for n in names)
    pairs = _yolo_pairs(yaml_path.parent, spec)
    if not pairs:
        raise FileNotFoundError(f"{yaml_path}: no images found under its train/val/test entries")
    for image, split in _progress(pairs, "import yolo"):
        label = _yolo_label_path(image)
        size = imp.size(image, label, None)
        if size is None:
            continue
        w, h = size
        boxes = []
        if label.is_file():
            for lineno, raw in enumerate(label.read_text().splitlines(), start=1):
                if not raw.strip():
                    continue
                fields = raw.split()
                try:
                    cls, cx, cy, bw, bh = int(fields[0]), *(float(v) for v in fields[1:5])
                    if not 0 <= cls < len(names):
                        raise IndexError
                except (ValueError, IndexError):
                    imp.issue(
                        label,
                        lineno,
                        "malformed_line",
                        f"expected 'class cx cy w h' with class < {len(names)}: {raw!r}",
                    )
                    imp.result.skipped_plates += 1
                    continue
                box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
                boxes.append((lineno, names[cls], box))
        if is_chars:
            chars = [Char(char=name, box=box) for _, name, box in boxes]
            plate = Plate(box=(0.0, 0.0, float(w), float(h)), chars=chars)
            kept = imp.keep_plate(plate, w, h, label, None)
            imp.add(image, w, h, [kept] if kept else [], crop=True)
            imp.result.images[-1].split = split
            continue
        plates = [
            p for ln, _, box in boxes if (p := imp.keep_plate(Plate(box=box), w, h, label, ln)) is not None
        ]
        imp.add(image, w, h, plates)
        imp.result.images[-1].split = split
    return imp.result


# --- COCO JSON ------------------------------------------------------------------------------------


def _coco_text(ann: dict) -> str | None:
    for holder in (ann, ann.get("attributes") or {}):
        for key in ("text", "plate", "plate_number", "license_plate", "label_text"):
            value = holder.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip().upper()
    return None


def import_coco(src: Path, out: Path, region: str | None = None) -> ImportResult:
    """COCO detection JSON: every annotation box becomes a plate; the plate text is read from the
    annotation's ``text`` / ``plate`` / ``attributes.*`` when present. Images resolve against the
    JSON's folder (or its ``images/`` subfolder)."""
    imp = _Importer(out, region)
    json_path = src if src.is_file() else next(iter(sorted(src.glob("*.json"))), None)
    if json_path is None:
        raise FileNotFoundError(f"{src}: no COCO JSON file")
    try:
        coco = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{json_path}:{e.lineno}: not valid JSON ({e.msg})") from None
    by_image: dict[int, list[dict]] = {}
    for ann in coco.get("annotations", []):
        by_image.setdefault(ann.get("image_id"), []).append(ann)
    for index, info in enumerate(_progress(coco.get("images", []), "import coco")):
        name = info.get("file_name", "")
        image = next(
            (p for p in (json_path.parent / name, json_path.parent / "images" / name) if p.is_file()),
            json_path.parent / name,
        )
        where = f"{json_path} images[{index}]"
        size = imp.size(image, where, None)
        if size is None:
            continue
        plates = []
        for ann in by_image.get(info.get("id"), []):
            try:
                x, y, w, h = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                imp.issue(
                    json_path, None, "malformed_record", f"annotation {ann.get('id')}: bad or missing bbox"
                )
                imp.result.skipped_plates += 1
                continue
            plate = imp.keep_plate(
                Plate(box=(x, y, x + w, y + h), text=_coco_text(ann)),
                *size,
                f"{json_path} annotation {ann.get('id')}",
                None,
            )
            if plate is not None:
                plates.append(plate)
        imp.add(image, *size, plates)
    return imp.result


# --- CCPD file names ------------------------------------------------------------------------------

# CCPD encodes the plate in the file name: the province index, then letters from ALPHABETS, then
# letters/digits from ADS (the dataset's README; 'O' is the "no character" marker at the end).
CCPD_PROVINCES = [
    "皖",
    "沪",
    "津",
    "渝",
    "冀",
    "晋",
    "蒙",
    "辽",
    "吉",
    "黑",
    "苏",
    "浙",
    "京",
    "闽",
    "赣",
    "鲁",
    "豫",
    "鄂",
    "湘",
    "粤",
    "桂",
    "琼",
    "川",
    "贵",
    "云",
    "藏",
    "陕",
    "甘",
    "青",
    "宁",
    "新",
    "警",
    "学",
    "O",
]
CCPD_ALPHABETS = list("ABCDEFGHJKLMNPQRSTUVWXYZ") + ["O"]
CCPD_ADS = list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") + ["O"]


def parse_ccpd_name(name: str) -> dict:
    """Fields of a CCPD file name ``area-tilt-x1&y1_x2&y2-corners-indices-brightness-blur.jpg``."""
    fields = Path(name).stem.split("-")
    if len(fields) != 7:
        raise DataError(f"expected 7 '-'-separated fields, got {len(fields)}")
    (x1, y1), (x2, y2) = ([float(v) for v in pt.split("&")] for pt in fields[2].split("_"))
    corners = [[int(v) for v in pt.split("&")] for pt in fields[3].split("_")]
    idx = [int(v) for v in fields[4].split("_")]
    chars = [CCPD_PROVINCES[idx[0]], CCPD_ALPHABETS[idx[1]]] + [CCPD_ADS[i] for i in idx[2:]]
    return {
        "box": (x1, y1, x2, y2),
        "corners": corners,
        "raw_text": "".join(chars),
        "text": "".join(chars[1:]),
        "brightness": fields[5],
        "blur": fields[6],
    }


def import_ccpd(src: Path, out: Path, region: str | None = "cn") -> ImportResult:
    """CCPD: labels in the file names. ``text`` is the alphanumeric part (the province glyph is
    outside the OCR alphabet); the full plate is kept in ``raw_text``."""
    imp = _Importer(out, region or "cn")
    images = list_images(src)
    if not images:
        raise FileNotFoundError(f"{src}: no images")
    for image in _progress(images, "import ccpd"):
        try:
            f = parse_ccpd_name(image.name)
        except (ValueError, IndexError) as e:
            imp.issue(image, None, "malformed_name", f"not a CCPD file name: {e}")
            imp.result.skipped_images += 1
            continue
        size = imp.size(image, image, None)
        if size is None:
            continue
        plate = Plate(box=f["box"], text=f["text"], raw_text=f["raw_text"], extra={"corners": f["corners"]})
        kept = imp.keep_plate(plate, *size, image, None)
        imp.add(
            image,
            *size,
            [kept] if kept else [],
            ccpd_fields={"brightness": f["brightness"], "blur": f["blur"]},
        )
    return imp.result


# --- our own manifest -----------------------------------------------------------------------------


def import_manifest(src: Path, out: Path, region: str | None = None) -> ImportResult:
    """Re-read a manifest: every line checked (images opened), paths rebased onto ``out``."""
    imp = _Importer(out, region)
    manifest = read_manifest(src)
    imp.result.issues.extend(manifest.issues)
    imp.result.skipped_images += len(manifest.issues)
    for item in _progress(manifest.images, "import manifest"):
        image = manifest.image_path(item)
        size = imp.size(image, manifest.path, item.line)
        if size is None:
            continue
        if size != (item.width, item.height):
            imp.issue(
                manifest.path,
                item.line,
                "size_mismatch",
                f"{item.image}: record says {item.width}x{item.height}, image is {size[0]}x{size[1]}; using "
                "the image's",
            )
        plates = [p for p in item.plates if imp.keep_plate(p, *size, manifest.path, item.line) is not None]
        imp.result.images.append(
            LabeledImage(
                image=imp.rel(image),
                width=size[0],
                height=size[1],
                plates=plates,
                region=region or item.region,
                split=item.split,
                extra=item.extra,
            )
        )
    return imp.result


IMPORTERS: dict[str, Callable[[Path, Path, str | None], ImportResult]] = {
    "openalpr": import_openalpr,
    "yolo": import_yolo,
    "coco": import_coco,
    "ccpd": import_ccpd,
    "manifest": import_manifest,
}


def import_dataset(
    fmt: str, src: str | os.PathLike, out: str | os.PathLike, region: str | None = None
) -> ImportResult:
    if fmt not in IMPORTERS:
        raise DataError(f"unknown format {fmt!r}; choose one of {', '.join(IMPORTERS)}")
    src_path, out_path = Path(src), Path(out)
    if not src_path.exists():
        raise FileNotFoundError(f"{src_path}: no such file or folder")
    out_path.mkdir(parents=True, exist_ok=True)
    return IMPORTERS[fmt](src_path, out_path, region)
