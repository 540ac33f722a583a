"""Run a predictor over a manifest: every image's predictions and timings, every problem counted.

Nothing stops the run but a predictor that fails on every one of the first images (then it is
broken, not the data): an unreadable image, a record whose size does not match its image, an
adapter error on one image become :class:`Issue` entries naming the file and line, and the image
is counted as not evaluated.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from tqdm import tqdm

from data.images import IMAGE_SUFFIXES, read_image
from data.manifest import Issue, LabeledImage, Manifest
from evaluate.adapters import CropReader, Pipeline
from evaluate.errors import EvaluateError, PredictorError
from evaluate.predictions import ImageRecord
from evaluate.text import TextRules
from runtime.records import Plate
from runtime.results import peak_rss_mb

log = logging.getLogger("evaluate")

FAIL_FAST_AFTER = 3
"""Stop when the predictor fails on each of the first this many images it is given."""


@dataclass
class Run:
    """What a pass over the dataset produced (scored later by ``evaluate.report``)."""

    manifest: Manifest
    items: list[LabeledImage]
    records: list[ImageRecord]
    describe: dict
    baselines: dict[str, dict]
    """name -> describe() of each baseline that ran, or {"skipped": reason}."""
    issues: list[Issue] = field(default_factory=list)
    peak_rss_mb: float | None = None

    def count(self, kind: str) -> int:
        return sum(1 for i in self.issues if i.kind == kind)


def unlabelled_images(manifest: Manifest) -> list[Issue]:
    """Image files that no manifest line names (a missing label), in the image folders that lie
    inside the manifest's own folder: a subset manifest kept elsewhere (a split under runs/) names
    images of a shared folder on purpose and is not checked."""
    named = {manifest.image_path(i).resolve() for i in manifest.images}
    root = manifest.root.resolve()
    folders = {p.parent for p in named if p.parent.is_relative_to(root)}
    issues = []
    for folder in sorted(folders):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and p.resolve() not in named:
                issues.append(
                    Issue(str(p), None, "unlabelled_image", f"not named by any line of {manifest.path}")
                )
    return issues


def _scorable(rules: TextRules, plate: Plate) -> bool:
    return rules.label(plate) is not None and plate.width > 0 and plate.height > 0


def _read_boxes(
    reader: CropReader, image, item: LabeledImage, rules: TextRules
) -> tuple[list[Plate | None], dict]:
    """The reader's reading of every labelled plate (None for plates without a label text)."""
    wanted = [i for i, p in enumerate(item.plates) if _scorable(rules, p)]
    out: list[Plate | None] = [None] * len(item.plates)
    if not wanted:
        return out, {}
    reads = reader.read_plates(image, [item.plates[i].box for i in wanted], item.image)
    if len(reads) != len(wanted):
        raise EvaluateError(
            f"{type(reader).__name__}.read_plates returned {len(reads)} plates for {len(wanted)} boxes"
        )
    for i, plate in zip(wanted, reads, strict=False):
        out[i] = plate
    return out, reader.timings()


def run_dataset(
    manifest: Manifest,
    pipeline: Pipeline,
    rules: TextRules,
    baselines: dict[str, CropReader] | None = None,
    baseline_skips: dict[str, str] | None = None,
    end_to_end: bool = True,
    limit: int | None = None,
    check_unlabelled: bool = True,
    progress: bool = True,
) -> Run:
    """Run ``pipeline`` (and the baselines) on every image of ``manifest``.

    Scene images get the full pipeline (``end_to_end``) and an OCR pass on every labelled plate's
    box; crop images (``"crop": true``) only the OCR pass. Baselines read the same boxes, and those
    that spot text (``spot``) also read each whole scene image when ``end_to_end``."""
    baselines = baselines or {}
    items = manifest.images[:limit] if limit else list(manifest.images)
    issues = list(manifest.issues) + (unlabelled_images(manifest) if check_unlabelled else [])
    issues += list(getattr(pipeline, "issues", []))  # e.g. malformed lines of a replayed predictions.jsonl
    records: list[ImageRecord] = []
    attempts = failures = 0
    replayed = getattr(pipeline, "baseline_reads", None)
    timed = pipeline.describe().get("timed", True)
    for item in tqdm(items, desc="evaluate", unit="img", disable=not progress):
        rec = ImageRecord(image=item.image, line=item.line, region=item.region)
        records.append(rec)
        where = (str(manifest.path), item.line)
        try:
            image = read_image(manifest.image_path(item))
        except (FileNotFoundError, ValueError) as e:
            rec.error = str(e)
            issues.append(Issue(*where, "unreadable_image", str(e)))
            continue
        h, w = image.shape[:2]
        if (w, h) != (item.width, item.height):
            issues.append(
                Issue(
                    *where,
                    "size_mismatch",
                    f"{item.image}: the record says {item.width}x{item.height}, the image is {w}x{h}",
                )
            )
        attempts += 1
        try:
            if end_to_end and not item.is_crop:
                pipeline.timings()  # drop anything timed outside this call
                t0 = time.perf_counter()
                rec.plates = list(pipeline.detect_and_read(image, item.image))
                wall_ms = (time.perf_counter() - t0) * 1000.0
                timings = pipeline.timings()
                total = timings.pop("total", None)
                rec.timings_ms = timings
                rec.total_ms = float(total[0]) if total else (wall_ms if timed else None)
            rec.crop_reads, rec.crop_timings_ms = _read_boxes(pipeline, image, item, rules)
        except Exception as e:  # one image's failure must not lose the whole evaluation: counted and listed
            failures += 1
            rec.error = f"{type(e).__name__}: {e}"
            issues.append(Issue(*where, "predictor_error", f"{item.image}: {rec.error}"))
            if failures == attempts == FAIL_FAST_AFTER:
                raise PredictorError(
                    f"the predictor failed on each of the first {attempts} images; last: {rec.error}"
                ) from e
            continue
        if replayed is not None:
            rec.baselines = replayed(item.image)
            rec.baseline_lines = pipeline.baseline_lines(item.image)
            rec.baseline_timings_ms = pipeline.baseline_timings(item.image)
        for name, reader in baselines.items():
            try:
                reader.timings()  # drop anything timed outside these calls
                rec.baselines[name], stage_ms = _read_boxes(reader, image, item, rules)
                if end_to_end and not item.is_crop and hasattr(reader, "spot"):
                    rec.baseline_lines[name] = list(reader.spot(image, item.image))
                    stage_ms = {**stage_ms, **reader.timings()}
                rec.baseline_timings_ms[name] = stage_ms
            except Exception as e:  # a baseline's failure is that baseline's problem, not the run's
                rec.baselines.pop(name, None)
                rec.baseline_lines.pop(name, None)
                issues.append(
                    Issue(*where, "baseline_error", f"{item.image}: {name}: {type(e).__name__}: {e}")
                )
    described = dict(pipeline.describe())
    rss = described.pop("peak_rss_mb", None) if "replayed_from" in described else None
    base_info = {name: dict(reader.describe()) for name, reader in baselines.items()}
    base_info.update({name: {"skipped": why} for name, why in (baseline_skips or {}).items()})
    if replayed is not None:
        recorded = (getattr(pipeline, "header", None) or {}).get("baselines") or {}
        for name in {n for r in records for n in r.baselines}:
            info = {"name": name, **(recorded.get(name) or {})}
            base_info.setdefault(name, {**info, "replayed_from": described.get("replayed_from")})
    return Run(
        manifest=manifest,
        items=items,
        records=records,
        describe=described,
        baselines=base_info,
        issues=issues,
        peak_rss_mb=rss if rss is not None else peak_rss_mb(),
    )
