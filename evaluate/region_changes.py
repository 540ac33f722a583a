"""Region rules on real plate crops: what they change, in which direction, and what they cost.

    python -m evaluate.region_changes MANIFEST [--splits val,test] [--regions none,us,auto]
                                      [--equivalences O0] [--repeat 5] [--examples 10] [--learn]

The OCR model reads every labelled plate once (as ``python -m evaluate`` reads crops: the runtime's
crop padding from the model); then each region's rules are applied to the same readings. For each
region it prints (one JSON object) the exact readings, how many exact readings the rules turned
wrong (``right_to_wrong``) and wrong ones right (``wrong_to_right``), which edits were used, and
``ms_per_plate``: the time of turning one reading into a plate record with those rules (the best
of ``--repeat`` passes; ``none`` is the cost without rules, for comparison). The readings are in
manifest order; ``--learn`` lets umbrellas learn the camera's region over them as the Predictor
does (``runtime.rules.RegionMemory``, a fresh one per pass; the default is the static umbrella).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.images import read_image
from data.manifest import LabeledImage, Manifest, read_manifest
from evaluate.text import Label, TextRules, equivalences_from, is_exact
from runtime.config import PipelineConfig
from runtime.geometry import plate_crop_box
from runtime.pipeline import Predictor, plate_from_reading, read_detections
from runtime.reading import Reading
from runtime.records import Char
from runtime.rules import RegionMemory, RegionRules, load_rules


@dataclass
class Read:
    """One labelled plate and the model's reading of it, before any rules."""

    image: str
    label: Label
    box: tuple[float, float, float, float]
    reading: Reading | None
    weak: list[tuple[int, Char]]


@dataclass
class Changes:
    """What one region's rules did to the readings."""

    region: str
    plates: int = 0
    exact_before: int = 0
    exact_after: int = 0
    right_to_wrong: int = 0
    wrong_to_right: int = 0
    changed: int = 0
    """Readings whose text the rules changed (whatever the label)."""
    edits: Counter = field(default_factory=Counter)
    matched: Counter = field(default_factory=Counter)
    """region_match -> plates (for an umbrella: which member fitted)."""
    examples: list[dict[str, str]] = field(default_factory=list)
    ms_per_plate: float | None = None

    @property
    def right_to_wrong_share(self) -> float:
        """Exact readings turned wrong, as a share of the exact readings."""
        return self.right_to_wrong / self.exact_before if self.exact_before else 0.0

    def to_dict(self) -> dict[str, Any]:
        n = self.plates or 1
        return {
            "region": self.region,
            "plates": self.plates,
            "exact_before": self.exact_before,
            "exact_after": self.exact_after,
            "exact_before_pct": round(100 * self.exact_before / n, 2),
            "exact_after_pct": round(100 * self.exact_after / n, 2),
            "right_to_wrong": self.right_to_wrong,
            "right_to_wrong_share": round(self.right_to_wrong_share, 4),
            "wrong_to_right": self.wrong_to_right,
            "changed": self.changed,
            "edits": dict(self.edits),
            "matched": dict(self.matched.most_common(8)),
            "ms_per_plate": None if self.ms_per_plate is None else round(self.ms_per_plate, 4),
            "examples": self.examples,
        }


def select(manifest: Manifest, splits: Sequence[str] | None) -> list[LabeledImage]:
    wanted = set(splits) if splits else None
    return [i for i in manifest.images if wanted is None or i.split in wanted]


def read_plates(
    predictor: Predictor, manifest: Manifest, items: Sequence[LabeledImage], text_rules: TextRules
) -> list[Read]:
    """The model's reading of every labelled plate of ``items`` (one OCR batch per image)."""
    meta, config = predictor.ocr_meta, predictor.config
    out: list[Read] = []
    for item in items:
        plates = [(p, lab) for p in item.plates if (lab := text_rules.label(p)) is not None]
        if not plates:
            continue
        image = read_image(manifest.image_path(item))
        h, w = image.shape[:2]
        regions = [plate_crop_box(p.box, w, h, meta.crop_pad_x, meta.crop_pad_y) for p, _ in plates]
        crops = [image[r[1] : r[3], r[0] : r[2]] for r in regions if r is not None]
        dets = iter(predictor.backend.read(crops) if crops else [])
        for (plate, label), region in zip(plates, regions, strict=True):
            read = None if region is None else read_detections(next(dets), meta.names, region[:2], config)
            reading, weak = read if read is not None else (None, [])
            out.append(Read(item.image, label, plate.box, reading, weak))
    return out


def _fresh(rules: RegionRules | None, learn: bool) -> RegionRules | RegionMemory | None:
    return RegionMemory(rules) if learn and rules is not None and rules.members else rules


def count_changes(
    reads: Sequence[Read],
    rules: RegionRules | None,
    text_rules: TextRules,
    config: PipelineConfig,
    name: str,
    max_examples: int = 10,
    learn: bool = False,
) -> Changes:
    """Right -> wrong and wrong -> right changes of ``rules`` on ``reads`` (None: no rules)."""
    ch = Changes(region=name)
    applied = _fresh(rules, learn)
    for r in reads:
        ch.plates += 1
        if r.reading is None:
            continue
        raw = text_rules.normalise(r.reading.text)
        plate = plate_from_reading(r.box, None, r.reading, r.weak, config, applied)
        text = text_rules.normalise(plate.text)
        before, after = is_exact(r.label, raw), is_exact(r.label, text)
        ch.exact_before += before
        ch.exact_after += after
        ch.right_to_wrong += before and not after
        ch.wrong_to_right += after and not before
        if plate.region_match:
            ch.matched[plate.region_match] += 1
        if plate.text != r.reading.text:
            ch.changed += 1
            edit = "drop" if len(plate.text) < len(r.reading.text) else "insert"
            if len(plate.text) == len(r.reading.text):
                edit = "swap"
            ch.edits[edit] += 1
            if before != after and len(ch.examples) < max_examples:
                ch.examples.append(
                    {
                        "image": r.image,
                        "label": r.label.text,
                        "raw": r.reading.text,
                        "text": plate.text,
                        "region_match": plate.region_match or "",
                    }
                )
    return ch


def time_rules(
    reads: Sequence[Read], rules: RegionRules | None, config: PipelineConfig, repeat: int, learn: bool = False
) -> float:
    """Milliseconds per plate of turning a reading into a plate record (best of ``repeat`` passes)."""
    todo = [r for r in reads if r.reading is not None]
    if not todo:
        return 0.0
    best = float("inf")
    for _ in range(max(1, repeat)):
        applied = _fresh(rules, learn)
        t0 = time.perf_counter()
        for r in todo:
            plate_from_reading(r.box, None, r.reading, r.weak, config, applied)
        best = min(best, time.perf_counter() - t0)
    return 1000.0 * best / len(todo)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluate.region_changes", description=__doc__.split("\n")[0])
    ap.add_argument("manifest", help="a labels.jsonl of plate crops or scenes (labelled boxes are read)")
    ap.add_argument("--splits", default=None, help="only images of these splits, comma-separated")
    ap.add_argument("--regions", default="none,auto", help="comma-separated region names; none = no rules")
    ap.add_argument("--equivalences", default="", help="characters that compare equal, e.g. O0")
    ap.add_argument("--repeat", type=int, default=5, help="timing passes per region (the best is kept)")
    ap.add_argument("--examples", type=int, default=10, help="changed readings listed per region")
    ap.add_argument("--zoo", default=None, help="model zoo (default: the shipped one)")
    ap.add_argument("--learn", action="store_true", help="umbrellas learn the region over the readings")
    args = ap.parse_args(argv)
    try:
        manifest = read_manifest(Path(args.manifest))
        items = select(manifest, args.splits.split(",") if args.splits else None)
        if not items:
            raise ValueError(f"{args.manifest}: no images in splits {args.splits}")
        names = [r.strip() for r in args.regions.split(",") if r.strip()]
        rules = {n: None if n == "none" else load_rules(n) for n in names}
        text_rules = TextRules(equivalences=equivalences_from(args.equivalences or None))
        with Predictor(zoo=args.zoo, config=PipelineConfig(threads=1, workers=1)) as predictor:
            reads = read_plates(predictor, manifest, items, text_rules)
            config = predictor.config
        out = []
        for name, r in rules.items():
            ch = count_changes(reads, r, text_rules, config, name, args.examples, args.learn)
            ch.ms_per_plate = time_rules(reads, r, config, args.repeat, args.learn)
            out.append(ch.to_dict())
    except (OSError, ValueError) as e:  # RulesError is a ValueError; both name the file
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"manifest": str(args.manifest), "splits": args.splits, "regions": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
