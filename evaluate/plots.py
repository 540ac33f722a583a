"""The report's pictures: PR curve, character confusion matrix, time by stage, galleries of failures."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from data.images import read_image
from evaluate import metrics as M
from runtime.records import ALPHABET

GAP = "∅"
"""Confusion-matrix label of a missing character (truth side: an extra one was read)."""


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # Hydra's INFO root logger would echo its notes
    import matplotlib.pyplot as plt

    return plt


def pr_curve(detection: M.DetectionResult, path: Path, title: str = "") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot(
        detection.pr_recall,
        detection.pr_precision,
        color="tab:blue",
        lw=2,
        label=f"AP50 {detection.ap50:.3f}  AP50-95 {detection.ap50_95:.3f}",
    )
    if detection.precision is not None and detection.recall is not None:
        thr = "all returned" if detection.operating_conf is None else f"conf >= {detection.operating_conf:g}"
        ax.plot(
            [detection.recall],
            [detection.precision],
            "o",
            color="tab:red",
            ms=8,
            label=f"operating point ({thr}): P {detection.precision:.3f} R {detection.recall:.3f}",
        )
    ax.set(
        xlim=(0, 1.01),
        ylim=(0, 1.05),
        xlabel="recall",
        ylabel="precision",
        title=f"Plate detection, IoU 0.5 {title}".strip(),
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_matrix(pairs: Counter, path: Path, equivalences: Sequence[str] = ()) -> Path:
    """Rows: the label's character; columns: what was read. Only characters that occur are shown."""
    plt = _plt()
    chars = sorted(
        {c for pair in pairs for c in pair if c}, key=lambda c: ALPHABET.index(c) if c in ALPHABET else 99
    )
    classes = chars + [GAP]
    index = {c: i for i, c in enumerate(classes)}
    mat = np.zeros((len(classes), len(classes)), dtype=int)
    for (t, r), n in pairs.items():
        mat[index[t or GAP], index[r or GAP]] += n
    size = max(5.0, 0.32 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    shown = np.where(mat > 0, np.log10(np.maximum(mat, 1)) + 1, 0)
    im = ax.imshow(shown, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel(f"read ({GAP}: character missed)")
    ax.set_ylabel(f"label ({GAP}: extra character read)")
    for i, j in zip(*np.nonzero(mat), strict=True):
        ax.text(
            j,
            i,
            str(mat[i, j]),
            ha="center",
            va="center",
            fontsize=6,
            color="white" if shown[i, j] > shown.max() * 0.6 else ("black" if i == j else "darkred"),
        )
    eq = (
        f" (equal: {', '.join('/'.join(g) for g in equivalences)}, shown as the first)"
        if equivalences
        else ""
    )
    ax.set_title(f"Characters on ground-truth crops{eq}", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04, label="log10(count) + 1")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def speed_chart(speed: dict, path: Path) -> Path:
    """p50 per stage with a whisker to p90; the pipeline's FPS in the title."""
    plt = _plt()
    names = {k.rsplit("_ms_", 1)[0] for k in speed if k.endswith("_ms_p50") and speed[k] is not None}
    order = [s for s in M.STAGES if s in names] + ["pipeline"] * ("pipeline" in names)
    stages = order + sorted(names - set(order))
    fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(stages) + 1.8))
    p50 = np.array([speed[f"{s}_ms_p50"] for s in stages], dtype=float)
    p90 = np.array([speed[f"{s}_ms_p90"] for s in stages], dtype=float)
    y = np.arange(len(stages))
    ax.barh(y, p50, color=["tab:orange" if s == "pipeline" else "tab:blue" for s in stages], label="p50")
    ax.errorbar(
        p50, y, xerr=[np.zeros(len(stages)), p90 - p50], fmt="none", ecolor="black", capsize=3, label="to p90"
    )
    for yi, a, b in zip(y, p50, p90, strict=False):
        ax.text(b + p90.max() * 0.01, yi, f" {a:.1f} / {b:.1f} ms", va="center", fontsize=8)
    ax.set_yticks(y, stages)
    ax.invert_yaxis()
    ax.set_xlim(0, p90.max() * 1.3)
    ax.set_xlabel("ms per call (p50 / p90)")
    fps = speed.get("pipeline_fps")
    what = ", ".join(
        f"{k} {speed.get(k)}" for k in ("backend", "precision", "threads") if speed.get(k) is not None
    )
    ax.set_title(
        (f"pipeline {fps:.1f} FPS" if fps else "time by stage") + (f"  ({what})" if what else ""), fontsize=10
    )
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _interleave(groups: Sequence[Sequence], n: int) -> list:
    """Up to n items taking from each group in turn, so every kind of failure gets shown."""
    out, its = [], [iter(g) for g in groups]
    while len(out) < n and its:
        for it in list(its):
            item = next(it, None)
            if item is None:
                its.remove(it)
            elif len(out) < n:
                out.append(item)
    return out


def _crop(image: np.ndarray, box, margin: float) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    cx1, cy1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
    cx2, cy2 = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    if cx2 - cx1 < 2 or cy2 - cy1 < 2:
        return np.full((16, 32, 3), 114, np.uint8), (0, 0)
    return image[cy1:cy2, cx1:cx2].copy(), (cx1, cy1)


def gallery(tiles: Sequence[dict], path: Path, title: str, columns: int = 4) -> Path:
    """tiles: {"image": BGR crop, "label": str, "read": str, "note": str, "boxes": [(xyxy, colour)]};
    ``title`` (lines of text) and ``colour`` replace the label/read/note caption and its colour."""
    plt = _plt()
    from matplotlib.patches import Rectangle

    columns = max(1, min(columns, len(tiles)))

    rows = int(np.ceil(len(tiles) / columns))
    # captions of more than the usual 3 lines (label, read, note) need more room above each tile
    caption = max((t["title"].count("\n") + 1 if t.get("title") else 3) for t in tiles)
    row_h = 2.1 + 0.16 * max(0, caption - 3)
    extra_h = 0.3 if caption > 3 else 0.0  # and the suptitle above the first row
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, row_h * rows + extra_h), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, tile in zip(axes.flat, tiles, strict=False):
        ax.imshow(cv2.cvtColor(tile["image"], cv2.COLOR_BGR2RGB))
        for (x1, y1, x2, y2), colour in tile.get("boxes", []):  # drawn as vectors: thin at any zoom
            ax.add_patch(
                Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=colour, lw=1.2)
            )
        text = tile.get("title") or (
            f"label {tile['label']}\nread  {tile['read']}" + (f"\n{tile['note']}" if tile.get("note") else "")
        )
        ax.set_title(text, fontsize=8, family="monospace", color=tile.get("colour", "darkred"), loc="left")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _image_cache(run):
    cache: dict[int, np.ndarray | None] = {}

    def get(idx: int) -> np.ndarray | None:
        if idx not in cache:
            try:
                cache[idx] = read_image(run.manifest.image_path(run.items[idx]))
            except (FileNotFoundError, ValueError):
                cache[idx] = None
        return cache[idx]

    return get


def worst_ocr_tiles(run, rows, n: int) -> list[dict]:
    """Failed OCR reads, worst first: most edits per label character, then the most confident;
    two wrong readings for every plate read as nothing."""
    failed = [r for r in rows if r.ocr is not None and not r.ocr.exact]
    failed.sort(key=lambda r: (-r.ocr.distance / max(1, r.ocr.length), -(r.crop_read.score or 0.0)))
    # confidently wrong readings and plates where nothing was read, taken in turn
    misread = [r for r in failed if r.crop_read.text]
    unread = [r for r in failed if not r.crop_read.text]
    get = _image_cache(run)
    tiles = []
    for r in _interleave([misread[0::2], misread[1::2], unread], n):
        image = get(r.image)
        if image is None:
            continue
        crop, _ = _crop(image, run.items[r.image].plates[r.plate].box, 0.1)
        score = f" ({r.crop_read.score:.2f})" if r.crop_read.score is not None else ""
        tiles.append(
            {
                "image": crop,
                "label": r.label.text,
                "read": (r.crop_read.text or "-") + score,
                "note": f"{r.ocr.distance} edits, {r.lines} line(s), {r.region}",
            }
        )
    return tiles


def worst_e2e_tiles(run, rows, n: int) -> list[dict]:
    """Plates not read end to end, missed / misread / no text in turn, the largest plates first
    (a large plate should have been easy)."""
    kinds = (M.MISSED, M.MISREAD, M.NO_TEXT)
    groups = [
        sorted((r for r in rows if r.e2e == k), key=lambda r: -run.items[r.image].plates[r.plate].width)
        for k in kinds
    ]
    get = _image_cache(run)
    tiles = []
    for r in _interleave(groups, n):
        image = get(r.image)
        if image is None:
            continue
        gt = run.items[r.image].plates[r.plate].box
        crop, (ox, oy) = _crop(image, gt, 0.6)
        boxes = [((gt[0] - ox, gt[1] - oy, gt[2] - ox, gt[3] - oy), "lime")]
        read = "-"
        if r.e2e_pred is not None:
            p = r.e2e_pred.box
            boxes.append(((p[0] - ox, p[1] - oy, p[2] - ox, p[3] - oy), "red"))
            read = r.e2e_pred.text or "-"
        tiles.append(
            {
                "image": crop,
                "label": r.label.text,
                "read": read,
                "boxes": boxes,
                "note": f"{r.e2e}, {run.items[r.image].image}"[-48:],
            }
        )
    return tiles


def false_positive_tiles(run, false_positives, n: int) -> list[dict]:
    """Detections that match no label, the most confident first, with the labels nearby: a person
    sees at once which are plates the labels miss, a part of a labelled plate, or not a plate."""
    get = _image_cache(run)
    tiles = []
    ranked = sorted(false_positives, key=lambda fp: -(fp[1].det_score or 0.0))
    for idx, pred in ranked[:n]:
        image = get(idx)
        if image is None:
            continue
        crop, origin = _crop(image, pred.box, 0.6)
        boxes = [(_shift(pred.box, origin), "red")]
        ch, cw = crop.shape[:2]
        for label in run.items[idx].plates:  # labels that show in the crop (a split or shifted box)
            x1, y1, x2, y2 = _shift(label.box, origin)
            if x2 > 0 and y2 > 0 and x1 < cw and y1 < ch:
                boxes.append(((x1, y1, x2, y2), "lime"))
        score = f"{pred.det_score:.2f}" if pred.det_score is not None else "-"
        tiles.append(
            {
                "image": crop,
                "boxes": boxes,
                "title": f"det {score}  read {pred.text or '-'}\n{run.items[idx].image[-40:]}",
                "colour": "darkred",
            }
        )
    return tiles


def _shift(box, origin: tuple[int, int]) -> tuple:
    ox, oy = origin
    return (box[0] - ox, box[1] - oy, box[2] - ox, box[3] - oy)


def versus_tiles(run, rows, name: str, n: int) -> list[dict]:
    """Plates the baseline ``name`` gets right and we do not: on GT crops (our worst readings
    first) and end to end (the largest plates first), taken in turn."""
    ocr = [r for r in rows if r.ocr is not None and not r.ocr.exact and name in r.baselines]
    ocr = [r for r in ocr if r.baselines[name].exact]
    ocr.sort(key=lambda r: -r.ocr.distance / max(1, r.ocr.length))
    e2e = [r for r in rows if r.e2e is not None and r.e2e != M.READ and name in r.baseline_e2e]
    e2e = [r for r in e2e if r.baseline_e2e[name].outcome == M.READ]
    e2e.sort(key=lambda r: -run.items[r.image].plates[r.plate].width)
    get = _image_cache(run)
    tiles = []
    for kind, r in _interleave([[("ocr", r) for r in ocr], [("e2e", r) for r in e2e]], n):
        image = get(r.image)
        if image is None:
            continue
        gt = run.items[r.image].plates[r.plate].box
        where = run.items[r.image].image
        if kind == "ocr":
            crop, _ = _crop(image, gt, 0.1)
            ours = (r.crop_read.text if r.crop_read else None) or "-"
            theirs = r.baseline_reads[name].text or "-"
            tiles.append(
                {
                    "image": crop,
                    "title": f"GT crop  label {r.label.text}\nours     {ours}\n{name:<8} {theirs}"[:200],
                    "colour": "darkblue",
                }
            )
            continue
        crop, origin = _crop(image, gt, 0.6)
        boxes = [(_shift(gt, origin), "lime")]
        if r.e2e_pred is not None:
            boxes.append((_shift(r.e2e_pred.box, origin), "red"))
        line = r.baseline_e2e[name].pick.line
        boxes.append((_shift(line.box, origin), "deepskyblue"))
        ours = (r.e2e_pred.text if r.e2e_pred is not None else None) or "-"
        tiles.append(
            {
                "image": crop,
                "boxes": boxes,
                "title": f"e2e ({r.e2e})  label {r.label.text}\nours     {ours}\n{name:<8} {line.text}"
                + f"\n{where[-40:]}",
                "colour": "darkblue",
            }
        )
    return tiles


def report_pictures(
    run, scored, out: Path, gallery_size: int = 24, versus: Sequence[str] = ()
) -> dict[str, Path]:
    files: dict[str, Path] = {}
    if scored.detection is not None and scored.detection.ap50 is not None:
        files["pr_curve"] = pr_curve(scored.detection, out / "pr_curve.png")
    if scored.confusion:
        files["confusion"] = confusion_matrix(
            scored.confusion, out / "confusion.png", scored.report["config"]["equivalences"]
        )
    if any(k.endswith("_ms_p50") and v is not None for k, v in scored.report["speed"].items()):
        files["speed"] = speed_chart(scored.report["speed"], out / "speed.png")
    if gallery_size:
        tiles = worst_ocr_tiles(run, scored.rows, gallery_size)
        if tiles:
            files["failures_ocr"] = gallery(
                tiles,
                out / "failures_ocr.png",
                "Worst OCR failures on ground-truth crops (label / read (score))",
            )
        tiles = worst_e2e_tiles(run, scored.rows, gallery_size)
        if tiles:
            files["failures_end_to_end"] = gallery(
                tiles,
                out / "failures_end_to_end.png",
                "End-to-end failures (green: label box, red: matched prediction)",
            )
        tiles = false_positive_tiles(run, scored.false_positives, gallery_size)
        if tiles:
            files["false_positives"] = gallery(
                tiles,
                out / "false_positives.png",
                "False positives at the operating threshold, most confident first "
                "(red: detection, green: labels nearby)",
            )
    for name in versus if gallery_size else ():
        tiles = versus_tiles(run, scored.rows, name, gallery_size)
        if tiles:
            files[f"versus_{name}"] = gallery(
                tiles,
                out / f"versus_{name}.png",
                f"Where {name} is right and we are wrong "
                f"(green: label box, red: our prediction, blue: {name}'s line)",
            )
    return files
