"""Score a run and write what people and machines read: report.json, report.md, PNGs, predictions.jsonl.

report.json schema (keys always present; a metric is null when it cannot be computed, e.g.
detection on a crop dataset): see docs/evaluate.md and :func:`build_report`.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluate import metrics as M
from evaluate.errors import EvaluateError
from evaluate.predictions import write_predictions
from evaluate.runner import Run
from evaluate.spotting import FALLBACK, NO_LINES, OVERLAP, LinePick, PickRules, any_line_reads, pick_line
from evaluate.text import Label, OcrScore, TextRules, score_reading
from runtime.records import Plate

SCHEMA_VERSION = 2
"""2: each baseline block is shaped like the report's own blocks (ocr, end_to_end, speed, by_region,
by_size with ``ocr``/``end_to_end`` inside), plus ``end_to_end_any_line``, ``end_to_end_blind`` and
``versus``; version 1 held ``by_region`` as {region: ocr block} (still read by ``action=compare``)."""


@dataclass
class SpotRow:
    """A spotting baseline on one labelled plate of a scene (see ``evaluate.spotting``)."""

    any_line: bool
    """Some line it found in the image equals the label (upper bound)."""
    outcome: str
    """The one picked line: ``read``, ``misread``, or ``missed`` (no text line in the image)."""
    score: OcrScore
    """The picked line's text scored against the label (an empty reading when none)."""
    pick: LinePick
    blind_read: bool
    """The line picked without the labelled box (plate-likeness alone) equals the label."""


@dataclass
class PlateRow:
    """One labelled plate of the dataset and how every reader did on it."""

    image: int
    plate: int
    region: str
    bucket: str
    lines: str
    label: Label | None
    input_bucket: str | None = None
    """The plate's width as the detector sees it, letterboxed into its input (None: unknown)."""
    evaluated: bool = True
    """False when the image could not be evaluated (unreadable, predictor error)."""
    crop_read: Plate | None = None
    ocr: OcrScore | None = None
    detected: bool | None = None
    """Matched by a prediction at the operating threshold (None: detection not run)."""
    e2e: str | None = None
    e2e_pred: Plate | None = None
    baselines: dict[str, OcrScore] = field(default_factory=dict)
    baseline_reads: dict[str, Plate] = field(default_factory=dict)
    """Each baseline's reading of this plate's crop (scored in ``baselines``)."""
    baseline_e2e: dict[str, SpotRow] = field(default_factory=dict)


@dataclass
class Scored:
    report: dict[str, Any]
    rows: list[PlateRow]
    detection: M.DetectionResult | None
    confusion: Counter
    false_positives: list[tuple[int, Plate]] = field(default_factory=list)
    """(image index, prediction) of every false positive at the operating threshold."""


TWO_LINE_RESIDUAL = 0.35
"""Character centres further than this many character heights from one fitted straight line are
on two lines. On uc3m_lp (31 two-line plates among 2547, boxes on the visible characters) one-line
plates, slanted ones included, stay within 0.14 and every two-line plate reaches 0.58."""


def lines_from_chars(plate: Plate) -> int | None:
    """1 or 2 from the label's character boxes; None with fewer than 3 characters."""
    if len(plate.chars) < 3:
        return None
    x = np.array([(c.box[0] + c.box[2]) / 2 for c in plate.chars])
    y = np.array([(c.box[1] + c.box[3]) / 2 for c in plate.chars])
    height = float(np.median([c.box[3] - c.box[1] for c in plate.chars]))
    if height <= 0 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return 2 if np.abs(y - (slope * x + intercept)).max() > TWO_LINE_RESIDUAL * height else 1


def plate_lines(plate: Plate) -> str:
    """The label's line count: ``lines`` when given, else its characters' line indices, else
    inferred from its character boxes; "unknown" without any of them."""
    if plate.lines is not None:
        return str(plate.lines)
    lines = {c.line for c in plate.chars if c.line is not None}
    if lines:
        return str(len(lines))
    inferred = lines_from_chars(plate)
    return "unknown" if inferred is None else str(inferred)


def _detected_flags(
    labels: Sequence[Plate], preds: Sequence[Plate], operating_conf, iou_threshold
) -> list[bool]:
    kept = M.keep_operating(preds, operating_conf)
    if not kept or not labels:
        return [False] * len(labels)
    iou = M.iou_matrix(M.boxes_of(labels), M.boxes_of(kept))
    matched = set(M.greedy_match(iou, M.confidence_order(kept), iou_threshold).values())
    return [i in matched for i in range(len(labels))]


def _e2e_block(rows: Sequence[PlateRow], wrong: int, images: int) -> dict:
    return M.end_to_end_summary([r.e2e for r in rows if r.e2e is not None], wrong, images)


def _ocr_block(rows: Sequence[PlateRow]) -> dict:
    return M.ocr_summary([r.ocr for r in rows if r.ocr is not None])


def _rule_changes(rows: Sequence[PlateRow], rules: TextRules) -> dict | None:
    """What region rules did to the crop readings (plates that carry the model's ``raw_text``):
    exact readings they turned wrong and wrong ones they turned right, and the regions matched.
    None when the predictor ran without rules."""
    checked = [r for r in rows if r.ocr is not None and r.crop_read.raw_text is not None]
    if not checked:
        return None
    out: dict[str, Any] = {"plates": len(checked), "changed": 0, "right_to_wrong": 0, "wrong_to_right": 0}
    matched: Counter = Counter()
    for r in checked:
        before = score_reading(rules, r.label, r.crop_read.raw_text).exact
        out["changed"] += r.crop_read.raw_text != r.crop_read.text
        out["right_to_wrong"] += before and not r.ocr.exact
        out["wrong_to_right"] += r.ocr.exact and not before
        matched[r.crop_read.region_match or "none"] += 1
    out["matched"] = dict(matched.most_common(10))
    return out


def spot_row(
    lines: Sequence[Plate],
    plate: Plate,
    label: Label,
    rules: TextRules,
    spotting: PickRules,
    blind: LinePick | None = None,
) -> SpotRow:
    """Score a spotting baseline's lines against one labelled plate (``blind``: the image's pick
    without the label, computed once per image by the caller)."""
    pick = pick_line(lines, plate.box, rules, spotting)
    blind = blind if blind is not None else pick_line(lines, None, rules, spotting)
    text = pick.line.text if pick.line is not None else None
    score = score_reading(rules, label, text)
    outcome = M.MISSED if pick.how == NO_LINES else (M.READ if score.exact else M.MISREAD)
    return SpotRow(
        any_line=any_line_reads(lines, label, rules),
        outcome=outcome,
        score=score,
        pick=pick,
        blind_read=blind.line is not None and rules.is_read(label, blind.line.text),
    )


def spot_summary(spots: Sequence[SpotRow]) -> dict:
    """The one-line pick as an end-to-end block (the keys of ours, plus its CER and how lines were
    picked); wrong reads per image are not defined for an engine that reads every text it sees."""
    out = M.end_to_end_summary([s.outcome for s in spots], 0, 0)
    chars = sum(s.score.length for s in spots)
    out.update(
        {
            "cer": None if chars == 0 else round(sum(s.score.distance for s in spots) / chars, 4),
            "wrong_reads": None,
            "picked_by_overlap": sum(s.pick.how == OVERLAP for s in spots),
            "picked_by_plate_like": sum(s.pick.how == FALLBACK for s in spots),
        }
    )
    out.pop("images", None)
    return out


def _share(flags: Sequence[bool]) -> dict:
    n = len(flags)
    return {"exact": None if n == 0 else round(sum(flags) / n, 4), "n": n, "read": sum(flags)}


def _baseline_breakdown(name: str, rows: Sequence[PlateRow]) -> dict:
    spots = [r.baseline_e2e[name] for r in rows if name in r.baseline_e2e]
    return {
        "ocr": M.ocr_summary([r.baselines[name] for r in rows if name in r.baselines]),
        "end_to_end": spot_summary(spots),
        "end_to_end_any_line": _share([s.any_line for s in spots]),
    }


def _versus(pairs: Sequence[tuple[bool, bool]]) -> dict:
    """(ours right, theirs right) per plate -> how often each is right where the other is not."""
    c = Counter(pairs)
    return {
        "both": c[(True, True)],
        "only_ours": c[(True, False)],
        "only_baseline": c[(False, True)],
        "neither": c[(False, False)],
        "n": len(pairs),
    }


def baseline_speed(name: str, run: Run, info: dict) -> dict:
    """ms per GT crop (``ocr_ms_*``) and per whole image spotted (``pipeline_ms_*``, ``pipeline_fps``)."""
    ocr: list[float] = []
    spot: list[float] = []
    for rec in run.records:
        if rec.error is None:
            stages = rec.baseline_timings_ms.get(name) or {}
            ocr += stages.get("ocr", [])
            spot += stages.get("spot", [])
    out = M.speed_summary({"ocr": ocr}, spot, info, None)
    out = {k: v for k, v in out.items() if not k.startswith(("pre_", "det_", "post_"))}
    out.pop("peak_rss_mb", None)
    return out


def baseline_block(name: str, info: dict, rows: Sequence[PlateRow], run: Run, size_buckets) -> dict:
    """One baseline's report block, shaped like the report's own (see SCHEMA_VERSION)."""
    ran = "skipped" not in info
    block: dict[str, Any] = {"describe": info, **_baseline_breakdown(name, rows)}
    spots = [r.baseline_e2e[name] for r in rows if name in r.baseline_e2e]
    block["end_to_end_blind"] = _share([s.blind_read for s in spots])
    block["speed"] = baseline_speed(name, run, info)
    regions = sorted({r.region for r in rows})
    block["by_region"] = {
        reg: _baseline_breakdown(name, [r for r in rows if r.region == reg]) for reg in regions
    }
    buckets = [b for b in M.bucket_labels(size_buckets) if any(r.bucket == b for r in rows)]
    buckets += sorted({r.bucket for r in rows} - set(buckets))
    block["by_size"] = {b: _baseline_breakdown(name, [r for r in rows if r.bucket == b]) for b in buckets}
    block["by_lines"] = {
        k: M.ocr_summary([r.baselines[name] for r in rows if r.lines == k and name in r.baselines])
        for k in sorted({r.lines for r in rows})
    }
    block["versus"] = {
        "ocr": _versus(
            [(r.ocr.exact, r.baselines[name].exact) for r in rows if r.ocr and name in r.baselines]
        ),
        "end_to_end": _versus(
            [
                (r.e2e == M.READ, r.baseline_e2e[name].outcome == M.READ)
                for r in rows
                if r.e2e and name in r.baseline_e2e
            ]
        ),
    }
    if not ran:  # keys stay, numbers are null: nothing was measured
        block.update({k: None for k in block if k != "describe"})
    return block


def build_report(
    run: Run,
    rules: TextRules,
    operating_conf: float | None = None,
    iou_threshold: float = 0.5,
    size_buckets: Sequence[float] = (0, 64, 128, 256, 100000),
    input_size_buckets: Sequence[float] = (0, 32, 64, 128, 240, 100000),
    dataset_name: str | None = None,
    confusion_top: int = 20,
    spotting: PickRules | None = None,
) -> Scored:
    """Every metric of the report from one run (pure: reads no files)."""
    spotting = spotting or PickRules()
    det_input = ((run.describe.get("models") or {}).get("det") or {}).get("input")
    rows: list[PlateRow] = []
    det_images: list[tuple[list[Plate], list[Plate]]] = []
    false_positives: list[tuple[int, Plate]] = []
    det_by_region: dict[str, list] = defaultdict(list)
    wrong_total = 0
    wrong_by_region: Counter = Counter()
    e2e_images_by_region: Counter = Counter()
    for idx, (item, rec) in enumerate(zip(run.items, run.records, strict=False)):
        region = item.region or "unknown"
        labels = [rules.label(p) for p in item.plates]
        image_rows = [
            PlateRow(
                image=idx,
                plate=i,
                region=region,
                bucket=M.width_bucket(p.width, size_buckets),
                lines=plate_lines(p),
                label=labels[i],
                input_bucket=None
                if not det_input or item.is_crop
                else M.width_bucket(
                    p.width * min(det_input[1] / item.width, det_input[0] / item.height), input_size_buckets
                ),
            )
            for i, p in enumerate(item.plates)
        ]
        rows += image_rows
        if rec.error is not None:
            for row in image_rows:
                row.evaluated = False
            continue
        if rec.crop_reads is not None:
            for row, read in zip(image_rows, rec.crop_reads, strict=False):
                if row.label is not None and read is not None:
                    row.crop_read = read
                    row.ocr = score_reading(rules, row.label, read.text)
        for name, reads in rec.baselines.items():
            for row, read in zip(image_rows, reads or [], strict=False):
                if row.label is not None and read is not None:
                    row.baselines[name] = score_reading(rules, row.label, read.text)
                    row.baseline_reads[name] = read
        for name, lines in rec.baseline_lines.items():
            if lines is None:
                continue
            blind = pick_line(lines, None, rules, spotting)
            for row, plate in zip(image_rows, item.plates, strict=True):
                if row.label is not None:
                    row.baseline_e2e[name] = spot_row(lines, plate, row.label, rules, spotting, blind)
        if rec.plates is None:
            continue
        det_images.append((item.plates, rec.plates))
        false_positives += [
            (idx, rec.plates[j])
            for j in M.false_positives(item.plates, rec.plates, operating_conf, iou_threshold)
        ]
        det_by_region[region].append((item.plates, rec.plates))
        e2e = M.end_to_end_image(item.plates, labels, rec.plates, rules, operating_conf, iou_threshold)
        for row, outcome, flag in zip(
            image_rows,
            e2e.outcomes,
            _detected_flags(item.plates, rec.plates, operating_conf, iou_threshold),
            strict=False,
        ):
            row.detected = flag
            if outcome is not None:
                row.e2e, row.e2e_pred = outcome
        wrong_total += e2e.wrong_reads
        wrong_by_region[region] += e2e.wrong_reads
        e2e_images_by_region[region] += 1

    detection = M.detection_metrics(det_images, operating_conf, iou_threshold) if det_images else None
    scores = [r.ocr for r in rows if r.ocr is not None]
    confusion = M.confusion_pairs(scores)
    errors = [(t, r, n) for (t, r), n in confusion.most_common() if t != r]

    ocr = _ocr_block(rows)
    ocr["partial_labels"] = sum(1 for r in rows if r.ocr is not None and r.label.partial)
    ocr["by_lines"] = {
        k: _ocr_block([r for r in rows if r.lines == k]) for k in sorted({r.lines for r in rows})
    }
    ocr["region_rules"] = _rule_changes(rows, rules)
    ocr["confusions"] = [
        {"truth": t or None, "read": r or None, "count": n} for t, r, n in errors[:confusion_top]
    ]

    by_region = {}
    for region in sorted({r.region for r in rows} | set(det_by_region)):
        region_rows = [r for r in rows if r.region == region]
        det = det_by_region.get(region)
        by_region[region] = {
            "detection": M.detection_metrics(det, operating_conf, iou_threshold).summary() if det else None,
            "ocr": _ocr_block(region_rows),
            "end_to_end": _e2e_block(region_rows, wrong_by_region[region], e2e_images_by_region[region]),
        }
    by_size = {}
    for bucket in M.bucket_labels(size_buckets) + sorted(
        {r.bucket for r in rows} - set(M.bucket_labels(size_buckets))
    ):
        b_rows = [r for r in rows if r.bucket == bucket]
        if not b_rows:
            continue
        det_rows = [r for r in b_rows if r.detected is not None]
        by_size[bucket] = {
            "plates": sum(r.evaluated for r in b_rows),
            "detection": {
                "recall": None
                if not det_rows
                else round(sum(r.detected for r in det_rows) / len(det_rows), 4),
                "n": len(det_rows),
            },
            "ocr": _ocr_block(b_rows),
            # wrong reads are per image, not per plate: not split by plate size
            "end_to_end": {
                k: v
                for k, v in _e2e_block(b_rows, 0, 0).items()
                if k not in ("wrong_reads", "wrong_per_image", "images")
            },
        }

    # The same plates by their width in the detector's input: what its heads see (a stride-8 anchor
    # draws at most 240 px of a 640 input), whatever the photo's resolution.
    by_input_size = {}
    for bucket in M.bucket_labels(input_size_buckets):
        det_rows = [r for r in rows if r.input_bucket == bucket and r.detected is not None]
        if det_rows:
            by_input_size[bucket] = {
                "plates": len(det_rows),
                "detection": {"recall": round(sum(r.detected for r in det_rows) / len(det_rows), 4)},
            }

    baselines = {
        name: baseline_block(name, info, rows, run, size_buckets) for name, info in run.baselines.items()
    }

    timings: dict[str, list[float]] = defaultdict(list)
    totals: list[float] = []
    for rec in run.records:
        if rec.error is not None:
            continue
        for stage, vals in rec.timings_ms.items():
            timings[stage] += vals
        for stage, vals in rec.crop_timings_ms.items():
            timings[f"crop_{stage}"] += vals
        if rec.total_ms is not None:
            totals.append(rec.total_ms)
    speed = M.speed_summary(timings, totals, run.describe, run.peak_rss_mb)

    problems = Counter(i.kind for i in run.issues)
    evaluated = sum(1 for r in run.records if r.error is None)
    d = detection.summary() if detection else None
    if d:
        d["fp_plate_like"] = plate_like(false_positives, run)
    report = {
        "schema": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "name": run.describe.get("name"),
        "detection": d
        if d
        else {k: None for k in ("precision", "recall", "f1", "ap50", "ap50_95", "fp_per_image")},
        "ocr": ocr,
        "end_to_end": _e2e_block(rows, wrong_total, len(det_images)),
        "speed": speed,
        "by_region": by_region,
        "by_size": by_size,
        "by_input_size": by_input_size,
        "baselines": baselines,
        "models": run.describe.get("models", {}),
        "predictor": run.describe,
        "dataset": {
            "name": dataset_name,
            "path": str(run.manifest.path.resolve()),
            "images": len(run.items),
            "plates": len(rows),
            "plates_with_text": sum(1 for r in rows if r.label is not None),
            "partial_labels": sum(1 for r in rows if r.label is not None and r.label.partial),
            "evaluated_images": evaluated,
            "scene_images": sum(1 for i in run.items if not i.is_crop),
            "crop_images": sum(1 for i in run.items if i.is_crop),
            "regions": dict(Counter(i.region or "unknown" for i in run.items).most_common()),
            "problems": {
                "malformed_lines": problems["malformed_json"]
                + problems["malformed_record"]
                + problems["not_utf8"],
                "paths_outside_root": problems["path_outside_root"],
                "duplicate_lines": problems["duplicate_image"],
                "boxes_outside_image": problems["box_outside_image"] + problems["char_outside_image"],
                "illegal_texts": problems["illegal_text"] + problems["illegal_char"],
                "unreadable_images": problems["unreadable_image"],
                "unlabelled_images": problems["unlabelled_image"],
                "size_mismatches": problems["size_mismatch"],
                "predictor_errors": problems["predictor_error"],
                "baseline_errors": problems["baseline_error"],
                "malformed_predictions": problems["malformed_prediction"] + problems["duplicate_prediction"],
                "plates_without_text": sum(1 for r in rows if r.label is None),
            },
            "issues": [str(i) for i in run.issues[:100]],
        },
        "config": {
            "operating_conf": operating_conf,
            "iou": iou_threshold,
            "equivalences": list(rules.equivalences),
            "size_buckets": list(size_buckets),
            "input_size_buckets": list(input_size_buckets),
            "detector_input": det_input,
        },
        "command": " ".join(sys.argv),
    }
    return Scored(
        report=report, rows=rows, detection=detection, confusion=confusion, false_positives=false_positives
    )


def plate_like(false_positives: Sequence[tuple[int, Plate]], run: Run) -> int:
    """How many false positives read as a whole plate of their image's region (a format of its
    region file fits the text): on a set that labels one plate per photo, most are the plates of
    other cars, which the labels leave out. Images of a region without a file count none."""
    from runtime.errors import RulesError
    from runtime.rules import available_regions, load_rules

    known = set(available_regions())
    rules: dict[str, Any] = {}
    count = 0
    for idx, plate in false_positives:
        region = run.items[idx].region
        if not plate.text or region not in known:
            continue
        if region not in rules:
            try:
                rules[region] = load_rules(region)
            except RulesError:
                rules[region] = None
        count += bool(rules[region] is not None and rules[region].matches(plate.text))
    return count


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_report(
    run: Run, scored: Scored, report_dir: str | Path, gallery: int = 24, versus: Sequence[str] = ()
) -> dict[str, Path]:
    """report.json, predictions.jsonl, issues.txt, the PNGs and report.md (which links them).
    ``versus``: baselines whose gallery of plates they read and we do not is drawn (those that ran)."""
    from evaluate import markdown, plots

    unknown = [n for n in versus if n not in run.baselines]
    if unknown:
        raise EvaluateError(
            f"gallery.versus names {', '.join(unknown)}, not among the baselines of this run "
            f"({', '.join(run.baselines) or 'none'}); add it to baselines=[...]"
        )
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["predictions"] = write_predictions(
        out / "predictions.jsonl",
        {
            "adapter": run.describe,
            "dataset": str(run.manifest.path),
            "created": scored.report["created"],
            "peak_rss_mb": run.peak_rss_mb,
            "baselines": run.baselines,
        },
        run.records,
    )
    if run.issues:
        files["issues"] = out / "issues.txt"
        files["issues"].write_text("\n".join(str(i) for i in run.issues) + "\n", encoding="utf-8")
    ran = [n for n in versus if "skipped" not in run.baselines[n]]
    pictures = plots.report_pictures(run, scored, out, gallery_size=gallery, versus=ran)
    files.update(pictures)
    files["json"] = out / "report.json"
    files["json"].write_text(
        json.dumps(scored.report, indent=2, default=_json_default, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    files["md"] = out / "report.md"
    files["md"].write_text(
        markdown.report_markdown(scored.report, {k: p.name for k, p in pictures.items()}), encoding="utf-8"
    )
    return files
