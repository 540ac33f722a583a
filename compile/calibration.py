"""The calibration set the DFC quantises with: ``calib.npy``, float32 (N, H, W, 3), RGB 0..255.

Each frame is prepared exactly as the runtime prepares model inputs: the detector gets the whole
image letterboxed to its input size with the model's fill; the OCR model gets each plate cut with
:func:`data.exporters.cut_plate` and the crop padding stored in its metadata. Normalisation is not
applied here - it runs inside the network (the model script's ``normalization`` line).

Images come from a plate manifest (a real dataset by default), in a seeded random order; an image
that cannot be read is reported by file and line and replaced by the next one, never dropped
silently. A contact sheet PNG shows what the DFC will see.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from compile.errors import CalibrationError
from data.exporters import cut_plate
from data.images import read_image
from data.manifest import LabeledImage, Manifest, read_manifest
from runtime.geometry import letterbox
from runtime.metadata import ModelMetadata


@dataclass
class CalibrationSet:
    path: Path
    count: int
    shape: tuple[int, ...]
    manifest: Path
    sources: list[str]
    skipped: Counter = field(default_factory=Counter)
    issues: list[str] = field(default_factory=list)
    contact_sheet: Path | None = None
    value_range: tuple[float, float] = (0.0, 0.0)

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common()) or "none"
        return (
            f"calibration: {self.count} frames {list(self.shape[1:])} from {self.manifest} "
            f"(values {self.value_range[0]:.0f}..{self.value_range[1]:.0f}); skipped: {skipped}"
        )


def shown_path(path: str | os.PathLike) -> str:
    """A manifest as the bundle names it: its dataset folder and file (``uc3m_lp/labels.jsonl``),
    never the absolute path of the machine that built the bundle."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def _candidates(
    manifest: Manifest, task: str, splits: list[str] | None, skipped: Counter
) -> list[tuple[LabeledImage, int | None]]:
    """(image, plate index) pairs to draw from: whole scenes for the detector, plates for OCR."""
    out: list[tuple[LabeledImage, int | None]] = []
    for item in manifest.images:
        if splits is not None and item.split not in splits:
            skipped["not in calibration splits"] += 1
            continue
        if task == "plate_det":
            if item.is_crop:
                skipped["crop image (the detector sees scenes)"] += 1
                continue
            out.append((item, None))
        else:
            if not item.plates:
                skipped["image without plates"] += 1
            out.extend((item, i) for i in range(len(item.plates)))
    return out


def _frame(
    image: np.ndarray, item: LabeledImage, plate_index: int | None, meta: ModelMetadata
) -> np.ndarray | None:
    """One model input in BGR uint8, or None when a plate crop is empty."""
    h, w = meta.input_height, meta.input_width
    if plate_index is None:
        frame, _ = letterbox(image, h, w, meta.letterbox_fill)
        return frame
    cut = cut_plate(
        image, item.plates[plate_index], h, w, meta.crop_pad_x, meta.crop_pad_y, meta.letterbox_fill
    )
    return None if cut is None else cut[0]


def build(
    manifest_path: str | os.PathLike,
    meta: ModelMetadata,
    out_dir: str | os.PathLike,
    size: int,
    min_size: int,
    splits: list[str] | None = None,
    seed: int = 0,
    sheet_n: int = 48,
    sheet_columns: int = 8,
    sheet_tile: int = 160,
) -> CalibrationSet:
    """Write ``calib.npy`` (+ ``calib_sources.txt`` and ``calib_contact_sheet.png``) into ``out_dir``."""
    if size < min_size:
        raise CalibrationError(f"calib.size {size} is below calib.min_size {min_size}")
    manifest = read_manifest(Path(manifest_path).resolve())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    skipped: Counter = Counter()
    issues = [str(i) for i in manifest.issues]
    if manifest.issues:
        skipped["malformed manifest line"] += len(manifest.issues)
    pool = _candidates(manifest, meta.task, splits, skipped)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool)) if pool else []

    h, w = meta.input_height, meta.input_width
    tmp = out / "calib.npy.partial"
    data = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(size, h, w, 3))
    sources: list[str] = []
    image_cache: tuple[str, np.ndarray | None] = ("", None)
    progress = tqdm(total=size, desc=f"calibration {meta.task}", unit="frame", leave=False)
    for k in order:
        if len(sources) == size:
            break
        item, plate_index = pool[k]
        path = manifest.image_path(item)
        if image_cache[0] != str(path):
            try:
                image_cache = (str(path), read_image(path))
            except (FileNotFoundError, ValueError) as e:
                image_cache = (str(path), None)
                issues.append(f"{manifest.path}:{item.line}: {e}")
        if image_cache[1] is None:
            skipped["unreadable image"] += 1
            continue
        frame = _frame(image_cache[1], item, plate_index, meta)
        if frame is None:
            skipped["empty plate crop"] += 1
            continue
        data[len(sources)] = frame[..., ::-1]  # BGR -> RGB: HailoRT and DeGirum feed RGB frames
        where = f"{shown_path(manifest.path)}:{item.line}"
        sources.append(f"{where}\t{item.image}" + ("" if plate_index is None else f"\tplate {plate_index}"))
        progress.update(1)
    progress.close()
    count = len(sources)
    if count < min_size:
        del data
        tmp.unlink(missing_ok=True)
        raise CalibrationError(
            f"{manifest.path}: only {count} usable calibration frames for {meta.task} (splits {splits}), "
            f"need at least calib.min_size={min_size}; skipped: {dict(skipped)}"
        )
    path = out / "calib.npy"
    if count < size:  # fewer usable frames than asked: keep exactly the written rows
        final = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, h, w, 3))
        final[:] = data[:count]
        final.flush()
        del final, data
        tmp.unlink()
    else:
        data.flush()
        del data
        tmp.replace(path)
    calib = np.load(path, mmap_mode="r")
    value_range = (float(calib.min()), float(calib.max()))
    (out / "calib_sources.txt").write_text(
        "row\tmanifest:line\timage\tplate\n" + "\n".join(f"{i}\t{s}" for i, s in enumerate(sources)) + "\n"
    )
    result = CalibrationSet(
        path=path,
        count=count,
        shape=tuple(calib.shape),
        manifest=manifest.path,
        sources=sources,
        skipped=skipped,
        issues=issues,
        value_range=value_range,
    )
    result.contact_sheet = contact_sheet(
        calib, sources, out / "calib_contact_sheet.png", sheet_n, sheet_columns, sheet_tile
    )
    return result


def contact_sheet(
    calib: np.ndarray, sources: list[str], path: Path, n: int = 48, columns: int = 8, tile: int = 160
) -> Path:
    """The first ``n`` calibration frames as the DFC gets them (letterbox borders included)."""
    n = min(n, len(calib))
    h, w = calib.shape[1:3]
    scale = tile / max(h, w)
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    cap = 14
    rows = -(-n // columns)
    sheet = np.full((rows * (th + cap), min(columns, n) * tw, 3), 30, np.uint8)
    for i in range(n):
        frame = np.clip(calib[i], 0, 255).astype(np.uint8)[..., ::-1]  # RGB -> BGR for OpenCV
        small = cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, columns)
        y, x = r * (th + cap), c * tw
        sheet[y : y + th, x : x + tw] = small
        name = Path(sources[i].split("\t")[1]).name
        cv2.putText(
            sheet,
            f"{i} {name}"[: tw // 6],
            (x + 2, y + th + cap - 3),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.33,
            (220, 220, 220),
            1,
            cv2.LINE_AA,
        )
    cv2.imwrite(str(path), sheet)
    return path
