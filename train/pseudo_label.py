"""Pseudo-labelling: character boxes for real plates that only have their text.

Most real plates come with a text but no character boxes, so the OCR model cannot learn from them
directly. Here the current OCR model reads each such plate (cut exactly as the runtime cuts it)
and its boxes are kept when one of two rules vouches for them:

* ``exact``: the text read equals the known text - every box has the right class;
* ``count``: class-agnostic, the model found exactly ``len(text)`` boxes; in reading order they
  get the known characters one by one. A model that reads few real plates right still finds
  where the characters are (training-findings.md, point 3), so this rule bootstraps a region.
  Since the count can come out right by accident (a box on an emblem, two on one character, none
  on another), the boxes must also look like a row of characters: little mutual overlap and
  similar heights within a line.

The accepted plates are written as a manifest (boxes in the original image's pixels, each plate
marked with the rule that accepted it) that joins the OCR training mix like any other source;
a contact sheet per rule shows what was accepted, to check before training on it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from data.exporters import cut_region
from data.images import read_image
from data.manifest import LabeledImage, read_manifest, rebase, write_manifest
from runtime.geometry import Letterbox
from runtime.records import ALPHABET, Char, Plate
from stage.errors import UsageError
from stage.runs import run_dir
from train.reading import draw_reads, ordered, predict_chars, read

RULES = ("exact", "count")


@dataclass
class Judgement:
    rule: str | None  # the rule that accepted the plate, None when rejected
    chars: list[Char]  # accepted characters in reading order, known text assigned
    read: str  # what the model read (confident boxes, reading order)
    reason: str


def implausible(chars: Sequence[Char], max_overlap: float = 0.6, height_ratio: float = 1.4) -> str | None:
    """Why ``chars`` (reading order, lines set) do not look like characters of one plate, or None.

    Two boxes may share at most ``max_overlap`` of the smaller one's area; within a line, no box
    may be more than ``height_ratio`` times taller or shorter than the line's median height."""
    boxes = np.array([c.box for c in chars], dtype=np.float32).reshape(-1, 4)
    if len(boxes) < 2:
        return None
    x1, y1, x2, y2 = boxes.T
    iw = np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]), 0, None)
    ih = np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]), 0, None)
    area = (x2 - x1) * (y2 - y1)
    share = iw * ih / np.maximum(np.minimum(area[:, None], area[None]), 1e-6)
    np.fill_diagonal(share, 0)
    if share.max() > max_overlap:
        i, j = np.unravel_index(int(share.argmax()), share.shape)
        return f"boxes {i} and {j} overlap by {share.max():.0%}"
    heights = y2 - y1
    lines = np.array([c.line or 0 for c in chars])
    for line in np.unique(lines):
        h = heights[lines == line]
        med = float(np.median(h))
        if h.max() > height_ratio * med or h.min() * height_ratio < med:
            return f"character heights {h.min():.0f}..{h.max():.0f} px vary too much for one line"
    return None


def judge(
    text: str,
    predictions: Sequence[Char],
    exact: bool = True,
    count: bool = True,
    conf: float = 0.25,
    count_conf: float = 0.1,
    max_overlap: float = 0.6,
    height_ratio: float = 1.4,
) -> Judgement:
    """Decide whether the model's characters for a plate of known ``text`` become its labels.

    ``predictions``: class-agnostic detections (one per place) with scores, any order."""
    confident = [c for c in predictions if (c.score or 0.0) >= conf]
    reading = read(confident)  # as the runtime reads it: duplicates merged, reading order
    read_text = reading.text
    if exact and read_text == text:
        chars = [replace(c, alternatives=[]) for c in reading.chars]
        return Judgement("exact", chars, read_text, "read text equals the known text")
    candidates = [c for c in predictions if (c.score or 0.0) >= count_conf]
    odd = None
    if count and len(candidates) == len(text):
        chars = [replace(c, char=t, alternatives=[]) for t, c in zip(text, ordered(candidates), strict=False)]
        odd = implausible(chars, max_overlap, height_ratio)
        if odd is None:
            return Judgement(
                "count",
                chars,
                read_text,
                f"{len(text)} boxes for {len(text)} characters, known text assigned in order",
            )
    why = [f"read {read_text!r} != {text!r}"] if exact else []
    if count:
        why.append(f"{len(candidates)} boxes for {len(text)} characters" + (f" but {odd}" if odd else ""))
    return Judgement(None, [], read_text, "; ".join(why) or "no rule enabled")


@dataclass
class PseudoLabelReport:
    plates: int = 0
    accepted: Counter = field(default_factory=Counter)  # rule -> plates
    rejected: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> plates
    manifest: Path | None = None
    sheets: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "plates": self.plates,
            "accepted": dict(self.accepted),
            "accepted_total": sum(self.accepted.values()),
            "rejected": self.rejected,
            "skipped": dict(self.skipped),
            "manifest": str(self.manifest) if self.manifest else None,
            "sheets": [str(s) for s in self.sheets],
        }

    def line(self) -> str:
        acc = ", ".join(f"{n} by {rule}" for rule, n in sorted(self.accepted.items())) or "none"
        skipped = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common()) or "none"
        return (
            f"pseudo-labels: {sum(self.accepted.values())} of {self.plates} text-only plates accepted "
            f"({acc}), "
            f"{self.rejected} rejected; skipped: {skipped}"
        )


def _to_image(chars: list[Char], lb: Letterbox, offset: tuple[int, int]) -> list[Char]:
    out = []
    for c in chars:
        x1, y1, x2, y2 = lb.to_image(np.array(c.box))
        out.append(
            replace(
                c,
                box=(
                    float(x1 + offset[0]),
                    float(y1 + offset[1]),
                    float(x2 + offset[0]),
                    float(y2 + offset[1]),
                ),
            )
        )
    return out


def pseudo_label(
    weights: Path,
    manifests: Sequence[Path],
    out: Path,
    model_cfg: DictConfig,
    rules: dict[str, bool],
    conf: float,
    count_conf: float,
    iou: float,
    max_plates: int | None = None,
    sheet: int = 48,
    batch: int = 32,
    max_overlap: float = 0.6,
    height_ratio: float = 1.4,
    access: dict | None = None,
) -> PseudoLabelReport:
    """Read every text-only plate of ``manifests`` with the OCR ``weights``; write the accepted ones."""
    from train.run import _check_weights

    unknown = set(rules) - set(RULES)
    if unknown:
        raise UsageError(f"pseudo_label.rules: unknown rules {sorted(unknown)} (known: {', '.join(RULES)})")
    model = _check_weights(Path(weights), "plate_ocr")
    names = [str(n) for n in model_cfg.names]
    h, w = int(model_cfg.input_height), int(model_cfg.input_width)
    pad_x, pad_y, fill = (
        float(model_cfg.crop.pad_x),
        float(model_cfg.crop.pad_y),
        int(model_cfg.letterbox_fill),
    )
    report = PseudoLabelReport()
    out.mkdir(parents=True, exist_ok=True)
    written: list[LabeledImage] = []
    examples: dict[str, list[tuple[np.ndarray, list[Char], str]]] = {r: [] for r in RULES}
    for path in manifests:
        manifest = read_manifest(path, **(access or {}))
        for issue in manifest.issues:
            report.skipped["malformed manifest line"] += 1
            print(f"  {issue}")
        accepted_items: list[LabeledImage] = []
        todo = [
            (item, k, p)
            for item in manifest.images
            for k, p in enumerate(item.plates)
            if p.text and not p.chars
        ]
        if max_plates is not None:
            todo = todo[: max(0, int(max_plates) - report.plates)]
        by_item: dict[int, dict[int, Plate]] = {}
        for start in tqdm(
            range(0, len(todo), batch), desc=f"pseudo-label {manifest.root.name}", unit="batch"
        ):
            crops, keys = [], []
            for item, k, plate in todo[start : start + batch]:
                report.plates += 1
                bad = sorted({c for c in plate.text if c not in ALPHABET})
                if bad:
                    report.skipped["text outside 0-9A-Z"] += 1
                    continue
                try:
                    image = read_image(manifest.image_path(item))
                except (FileNotFoundError, ValueError) as e:
                    print(f"  {manifest.path}:{item.line}: {e}")
                    report.skipped["unreadable image"] += 1
                    continue
                cut = cut_region(image, plate.box, h, w, pad_x, pad_y, fill)
                if cut is None:
                    report.skipped["empty crop"] += 1
                    continue
                crop, lb, region = cut
                crops.append(crop)
                keys.append((item, k, plate, lb, region[:2]))
            reads = (
                predict_chars(model, crops, names, conf=min(conf, count_conf), iou=iou, batch=batch)
                if crops
                else []
            )
            for crop, (item, k, plate, lb, offset), pred in zip(crops, keys, reads, strict=False):
                j = judge(
                    plate.text,
                    pred,
                    exact=rules.get("exact", False),
                    count=rules.get("count", False),
                    conf=conf,
                    count_conf=count_conf,
                    max_overlap=max_overlap,
                    height_ratio=height_ratio,
                )
                if j.rule is None:
                    report.rejected += 1
                    continue
                report.accepted[j.rule] += 1
                chars = _to_image(j.chars, lb, offset)
                lines = max(c.line or 0 for c in chars) + 1
                extra = {**plate.extra, "pseudo_label": j.rule, "pseudo_label_read": j.read}
                by_item.setdefault(id(item), {})[k] = replace(plate, chars=chars, lines=lines, extra=extra)
                if len(examples[j.rule]) < sheet:
                    examples[j.rule].append((crop, j.chars, f"{j.rule}: {plate.text} (read {j.read or '-'})"))
        for item in manifest.images:
            if id(item) in by_item:
                labelled = [by_item[id(item)].get(k, p) for k, p in enumerate(item.plates)]
                accepted_items.append(replace(item, plates=labelled))
        if accepted_items:
            from data.manifest import Manifest

            written += rebase(Manifest(path=manifest.path, images=accepted_items), out)
    report.manifest = write_manifest(out / "labels.jsonl", written)
    for rule, shots in examples.items():
        if shots:
            report.sheets.append(
                draw_reads(
                    [s[0] for s in shots],
                    [s[1] for s in shots],
                    [s[2] for s in shots],
                    out / f"pseudo_labels_{rule}.png",
                )
            )
    (out / "report.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return report


def run_pseudo_label(cfg: DictConfig) -> PseudoLabelReport:
    from train import offline
    from train.mix import parse_sources

    pl = cfg.pseudo_label
    if not pl.weights:
        raise UsageError("action=pseudo_label needs pseudo_label.weights=OCR_WEIGHTS.pt")
    if not pl.src:
        raise UsageError(
            "action=pseudo_label needs pseudo_label.src=[MANIFEST_OR_DATASET, ...] (plates with text, no "
            "chars)"
        )
    if str(cfg.model.task) != "plate_ocr":
        raise UsageError(
            f"action=pseudo_label reads characters: use model=plate_ocr (got model={cfg.model.name})"
        )
    from train.checkpoints import registry_path, require_trusted

    require_trusted(
        Path(str(pl.weights)), registry_path(cfg), cfg.get("trust_checkpoint", False), "pseudo_label.weights"
    )
    offline.prepare(cfg.ultralytics_dir)
    src = OmegaConf.to_container(pl.src, resolve=True) if OmegaConf.is_list(pl.src) else [str(pl.src)]
    sources = parse_sources(src, cfg.paths)
    manifests = [s.manifest for s in sources]
    out = Path(pl.out) if pl.out else run_dir()
    report = pseudo_label(
        Path(str(pl.weights)),
        manifests,
        out,
        cfg.model,
        dict(pl.rules),
        conf=float(pl.conf),
        count_conf=float(pl.count_conf),
        iou=float(pl.iou),
        max_plates=pl.max_plates,
        access=sources[0].access if sources else None,
        sheet=int(pl.sheet),
        max_overlap=float(pl.max_overlap),
        height_ratio=float(pl.height_ratio),
    )
    print(report.line())
    print(f"manifest: {report.manifest}" + "".join(f"\ncontact sheet: {s}" for s in report.sheets))
    return report
