"""predictions.jsonl: every image's predictions from one evaluation, to re-score or diff two runs.

The first line is a header, then one line per manifest image, in manifest order:

    {"header": {"adapter": {name, backend, precision, threads, models}, "dataset": PATH,
                "created": ISO-TIME, "peak_rss_mb": 312.5, "baselines": {name: describe | {skipped}}}}
    {"image": "images/a.jpg", "line": 3, "region": "br",
     "plates": [PLATE, ...] | null,          # the pipeline on the whole image (null: not run)
     "crop_reads": [PLATE | null, ...] | null, # OCR of each labelled plate's box, in label order
     "baselines": {"tesseract": [PLATE | null, ...]},
     "baseline_lines": {"paddleocr": [PLATE, ...] | null},  # text lines a baseline spotted in the image
     "baseline_timings_ms": {"paddleocr": {"ocr": [..], "spot": [..]}},
     "timings_ms": {"pre": [..], "det": [..], "ocr": [..], "post": [..]}, "total_ms": 53.1,
     "crop_timings_ms": {...}, "error": null | "why the image was not evaluated"}

PLATE is the manifest's plate object (``runtime.records.Plate.to_dict``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.manifest import Issue, json_lines
from evaluate.errors import EvaluateError
from runtime.records import Plate


@dataclass
class ImageRecord:
    image: str
    line: int | None = None
    region: str | None = None
    plates: list[Plate] | None = None
    crop_reads: list[Plate | None] | None = None
    baselines: dict[str, list[Plate | None]] = field(default_factory=dict)
    """A baseline's reading of each labelled plate's crop (label order, None for unlabelled plates)."""
    baseline_lines: dict[str, list[Plate] | None] = field(default_factory=dict)
    """Every text line a spotting baseline found in the whole image (scene images only)."""
    baseline_timings_ms: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    timings_ms: dict[str, list[float]] = field(default_factory=dict)
    total_ms: float | None = None
    crop_timings_ms: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        def plates(ps):
            return None if ps is None else [None if p is None else p.to_dict() for p in ps]

        return {
            "image": self.image,
            "line": self.line,
            "region": self.region,
            "plates": plates(self.plates),
            "crop_reads": plates(self.crop_reads),
            "baselines": {k: plates(v) for k, v in self.baselines.items()},
            "baseline_lines": {k: plates(v) for k, v in self.baseline_lines.items()},
            "baseline_timings_ms": {
                name: {k: [round(x, 3) for x in v] for k, v in stages.items()}
                for name, stages in self.baseline_timings_ms.items()
            },
            "timings_ms": {k: [round(x, 3) for x in v] for k, v in self.timings_ms.items()},
            "total_ms": None if self.total_ms is None else round(self.total_ms, 3),
            "crop_timings_ms": {k: [round(x, 3) for x in v] for k, v in self.crop_timings_ms.items()},
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageRecord:
        def plates(ps, what):
            if ps is None:
                return None
            if not isinstance(ps, list):
                raise EvaluateError(f"'{what}' must be a list or null")
            return [None if p is None else Plate.from_dict(p) for p in ps]

        image = d.get("image")
        if not isinstance(image, str) or not image:
            raise EvaluateError("missing 'image'")
        return cls(
            image=image,
            line=d.get("line"),
            region=d.get("region"),
            plates=plates(d.get("plates"), "plates"),
            crop_reads=plates(d.get("crop_reads"), "crop_reads"),
            baselines={k: plates(v, f"baselines.{k}") for k, v in (d.get("baselines") or {}).items()},
            baseline_lines={
                k: plates(v, f"baseline_lines.{k}") for k, v in (d.get("baseline_lines") or {}).items()
            },
            baseline_timings_ms={
                name: {k: [float(x) for x in v] for k, v in (stages or {}).items()}
                for name, stages in (d.get("baseline_timings_ms") or {}).items()
            },
            timings_ms={k: [float(x) for x in v] for k, v in (d.get("timings_ms") or {}).items()},
            total_ms=None if d.get("total_ms") is None else float(d["total_ms"]),
            crop_timings_ms={k: [float(x) for x in v] for k, v in (d.get("crop_timings_ms") or {}).items()},
            error=d.get("error"),
        )


def write_predictions(
    path: str | os.PathLike, header: dict[str, Any], records: Iterable[ImageRecord]
) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(json.dumps({"header": header}, ensure_ascii=False) + "\n")
        for r in records:
            f.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
    tmp.replace(p)
    return p


def read_predictions(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, ImageRecord], list[Issue]]:
    """(header, image -> record, problems). Bad lines become issues naming file and line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no predictions file")
    header: dict[str, Any] = {}
    records: dict[str, ImageRecord] = {}
    issues: list[Issue] = []
    for lineno, obj, error in json_lines(p):
        try:
            if error is not None:
                raise EvaluateError(error)
            if not isinstance(obj, dict):
                raise EvaluateError(f"a line must hold a JSON object, got {type(obj).__name__}")
            if "header" in obj:
                header = obj["header"] or {}
                continue
            rec = ImageRecord.from_dict(obj)
        except ValueError as e:
            issues.append(Issue(str(p), lineno, "malformed_prediction", str(e)))
            continue
        if rec.image in records:
            issues.append(
                Issue(
                    str(p), lineno, "duplicate_prediction", f"{rec.image} appears twice; the later line wins"
                )
            )
        records[rec.image] = rec
    return header, records, issues
