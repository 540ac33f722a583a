"""Reading characters with a PyTorch OCR model during training: predictions, read-out scores.

The training stage's quick read-out (validation summary, pseudo-labelling) reads characters into
text with the deployed code (``runtime.reading``: duplicate merging, line grouping, reading order)
and the runtime's default settings, so what training reports is what the runtime would read from
the same boxes. Only the predictions (Ultralytics/PyTorch) and the scoring are the stage's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from runtime.config import PipelineConfig
from runtime.geometry import iou_matrix
from runtime.reading import Reading, in_reading_order, read_chars
from runtime.records import Char
from train.errors import TrainError

DEPLOYED = PipelineConfig()
"""The runtime's default reading settings (dup_overlap, line_overlap, max_lines, line_max_slope)."""


def read(chars: Sequence[Char]) -> Reading:
    """What the runtime reads from these characters: duplicates merged, lines, text."""
    return read_chars(list(chars), DEPLOYED)


def ordered(chars: Sequence[Char]) -> list[Char]:
    """Characters in the runtime's reading order, each with its line set (none merged)."""
    return in_reading_order(list(chars), DEPLOYED)


def text_of(chars: Sequence[Char]) -> str:
    return read(chars).text


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def predict_chars(
    model, images: Sequence[np.ndarray], names: Sequence[str], conf: float, iou: float, batch: int = 32
) -> list[list[Char]]:
    """Characters found in each OCR input (BGR, already the model's input size), class-agnostic NMS
    (one character per place), boxes in input pixels, sorted by score."""
    out: list[list[Char]] = []
    if not len(images):
        return out
    h, w = images[0].shape[:2]
    for start in range(0, len(images), batch):
        chunk = list(images[start : start + batch])
        results = model.predict(
            chunk, imgsz=[h, w], conf=conf, iou=iou, agnostic_nms=True, verbose=False, batch=len(chunk)
        )
        for r in results:
            boxes = r.boxes
            xyxy = boxes.xyxy.cpu().numpy() if len(boxes) else np.zeros((0, 4), np.float32)
            cls = boxes.cls.cpu().numpy().astype(int) if len(boxes) else np.zeros(0, int)
            score = boxes.conf.cpu().numpy() if len(boxes) else np.zeros(0, np.float32)
            out.append(
                [
                    Char(char=str(names[c]), box=tuple(float(v) for v in b), score=float(s))
                    for b, c, s in zip(xyxy, cls, score, strict=True)
                ]
            )
    return out


def read_yolo_labels(label_file: Path, names: Sequence[str], width: int, height: int) -> list[Char]:
    """Ground-truth characters of one exported OCR crop (YOLO txt) in input pixels."""
    chars = []
    if not label_file.is_file():
        return chars
    for line in label_file.read_text().splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue
        c, cx, cy, bw, bh = int(parts[0]), *(float(v) for v in parts[1:])
        box = ((cx - bw / 2) * width, (cy - bh / 2) * height, (cx + bw / 2) * width, (cy + bh / 2) * height)
        chars.append(Char(char=str(names[c]), box=box))
    return chars


@dataclass
class Readout:
    plates: int
    exact_text: int  # predicted text == labelled text
    all_found: int  # every labelled character found (IoU >= 0.5) with the right class
    char_recall: float
    char_precision: float
    char_accuracy: float  # 1 - character error rate of the texts

    def as_dict(self) -> dict:
        return {
            "plates": self.plates,
            "exact_text": self.exact_text,
            "exact_text_rate": self.exact_text / max(self.plates, 1),
            "all_found": self.all_found,
            "all_found_rate": self.all_found / max(self.plates, 1),
            "char_recall": self.char_recall,
            "char_precision": self.char_precision,
            "char_accuracy": self.char_accuracy,
        }

    def line(self) -> str:
        d = self.as_dict()
        return (
            f"read-out on {self.plates} val crops: exact text {d['exact_text_rate']:.1%}, all labelled "
            "chars found "
            f"{d['all_found_rate']:.1%}, char recall {self.char_recall:.1%} / precision "
            f"{self.char_precision:.1%}, "
            f"char accuracy {self.char_accuracy:.1%}"
        )


def score_reads(truths: Iterable[list[Char]], preds: Iterable[list[Char]], match_iou: float = 0.5) -> Readout:
    plates = exact = all_found = tp = n_true = n_pred = 0
    errors = length = 0
    for truth, pred in zip(truths, preds, strict=False):
        plates += 1
        t_text, p_text = text_of(truth), text_of(pred)
        exact += t_text == p_text
        errors += edit_distance(t_text, p_text)
        length += len(t_text)
        n_true += len(truth)
        n_pred += len(pred)
        found = 0
        if truth and pred:
            m = iou_matrix(np.array([c.box for c in truth]), np.array([c.box for c in pred]))
            used: set[int] = set()
            for ti in np.argsort(-m.max(axis=1)):
                for pi in np.argsort(-m[ti]):
                    if m[ti, pi] < match_iou:
                        break
                    if pi not in used and pred[pi].char == truth[ti].char:
                        used.add(int(pi))
                        found += 1
                        break
        tp += found
        all_found += found == len(truth)
    return Readout(
        plates=plates,
        exact_text=exact,
        all_found=all_found,
        char_recall=tp / max(n_true, 1),
        char_precision=tp / max(n_pred, 1),
        char_accuracy=max(0.0, 1 - errors / max(length, 1)),
    )


def draw_reads(
    images: Sequence[np.ndarray],
    reads: Sequence[list[Char]],
    captions: Sequence[str],
    path: Path,
    columns: int = 4,
) -> Path:
    """A contact sheet of OCR inputs with their character boxes and captions (PNG)."""
    tiles = []
    for image, chars, caption in zip(images, reads, captions, strict=False):
        tile = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
        for k, c in enumerate(chars):
            colour = (0, 140, 255) if k % 2 else (255, 0, 200)  # alternate, so neighbours stay apart
            x1, y1, x2, y2 = (int(round(v * 2)) for v in c.box)
            cv2.rectangle(tile, (x1, y1), (x2, y2), colour, 2)
            (tw, th), _ = cv2.getTextSize(c.char, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
            cv2.rectangle(tile, (x1, y1), (x1 + tw + 2, y1 + th + 4), colour, -1)
            cv2.putText(
                tile,
                c.char,
                (x1 + 1, y1 + th + 2),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.6,
                (255, 255, 255),
                2,
                cv2.LINE_AA,
            )
        bar = np.full((22, tile.shape[1], 3), 30, np.uint8)
        cv2.putText(
            bar, caption[:60], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1, cv2.LINE_AA
        )
        tiles.append(np.vstack([tile, bar]))
    if not tiles:
        raise TrainError(f"{path}: nothing to draw")
    th, tw = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * th, min(columns, len(tiles)) * tw, 3), 20, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * th : r * th + t.shape[0], c * tw : c * tw + t.shape[1]] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet)
    return path
