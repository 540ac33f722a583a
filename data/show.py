"""Contact sheets: a grid of images with plate boxes, texts and character boxes drawn."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from data.errors import DataError
from data.images import read_image
from data.manifest import LabeledImage, Manifest
from runtime.records import Plate

PLATE_COLOUR = (60, 220, 60)  # BGR
CHAR_COLOURS = [(255, 200, 0), (0, 160, 255)]  # per text line


def draw_plates(image: np.ndarray, plates: list[Plate], chars: bool = True, thickness: int = 1) -> np.ndarray:
    """Boxes and texts drawn on a copy of ``image`` (the runtime's --save uses the same look)."""
    out = image.copy()
    for plate in plates:
        x1, y1, x2, y2 = (int(round(v)) for v in plate.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), PLATE_COLOUR, thickness + 1)
        if chars:
            for ch in plate.chars:
                colour = CHAR_COLOURS[(ch.line or 0) % 2]
                a1, b1, a2, b2 = (int(round(v)) for v in ch.box)
                cv2.rectangle(out, (a1, b1), (a2, b2), colour, thickness)
        label = (
            plate.text
            or plate.extra.get("partial_text")
            or ("".join(c.char for c in plate.chars) if plate.chars else "?")
        )
        _label(out, label, x1, y1)
    return out


def _label(image: np.ndarray, text: str, x: int, y: int) -> None:
    scale = max(0.4, min(1.2, image.shape[1] / 700))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = max(th + base, y)
    cv2.rectangle(image, (x, y - th - base), (x + tw, y), (0, 0, 0), -1)
    cv2.putText(image, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _tile(image: np.ndarray, size: int, caption: str) -> np.ndarray:
    h, w = image.shape[:2]
    scale = min(size / w, (size - 16) / h)
    small = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    tile = np.full((size, size, 3), 40, np.uint8)
    y0, x0 = (size - 16 - small.shape[0]) // 2, (size - small.shape[1]) // 2
    tile[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    cv2.putText(
        tile, caption[:40], (3, size - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (220, 220, 220), 1, cv2.LINE_AA
    )
    return tile


def contact_sheet(
    manifest: Manifest,
    path: Path,
    n: int = 36,
    columns: int = 6,
    tile: int = 256,
    chars: bool = True,
    split: str | None = None,
    seed: int = 0,
) -> tuple[Path, list[str]]:
    """Draw up to ``n`` images (a seeded sample) into one PNG; returns it and the unreadable files."""
    items: list[LabeledImage] = [i for i in manifest.images if split is None or i.split == split]
    rng = np.random.default_rng(seed)
    if len(items) > n:
        items = [items[i] for i in sorted(rng.choice(len(items), size=n, replace=False))]
    tiles, problems = [], []
    for item in items:
        try:
            image = read_image(manifest.image_path(item))
        except (FileNotFoundError, ValueError) as e:
            problems.append(f"{manifest.path}:{item.line}: {e}")
            image = np.zeros((tile, tile, 3), np.uint8)
            cv2.putText(image, "unreadable", (10, tile // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 1)
        else:
            # Draw at a scale where the boxes will still be visible after shrinking to the tile.
            grow = max(1.0, tile / max(image.shape[:2]))
            if grow > 1:
                image = cv2.resize(image, None, fx=grow, fy=grow, interpolation=cv2.INTER_CUBIC)
                plates = [_scaled(p, grow) for p in item.plates]
            else:
                plates = item.plates
            image = draw_plates(
                image, plates, chars=chars, thickness=max(1, int(max(image.shape[:2]) / tile))
            )
        tiles.append(_tile(image, tile, Path(item.image).name))
    if not tiles:
        raise DataError(f"{manifest.path}: no images to show" + (f" in split {split!r}" if split else ""))
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * tile, min(columns, len(tiles)) * tile, 3), 25, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet)
    return path, problems


def _scaled(plate: Plate, f: float) -> Plate:
    from dataclasses import replace

    return replace(
        plate,
        box=tuple(v * f for v in plate.box),
        chars=[replace(c, box=tuple(v * f for v in c.box)) for c in plate.chars],
    )
