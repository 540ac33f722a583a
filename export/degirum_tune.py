"""DeGirum post-processing settings of a zoo entry, chosen by measurement with DeGirum's own
post-processor (the one users of DeGirum's guide run: ``dg.load_model`` + ``predict``).

Our runtime decodes the raw tensor itself; DeGirum's ``DetectionYoloV8`` post-processor has its
own switches, and the guide's code reads whatever it returns. For the OCR model the one that
matters is the suppression: ``UseRegularNMS: true`` (DeGirum's default) suppresses per class, so an
O and a 0 on one glyph both survive and the x-sort puts both into the text; ``false`` runs one
suppression over all classes. ``MaxClassesPerDetection`` (classes kept per anchor by that fast
suppression) and the score and overlap thresholds are swept with it.

The sweep runs on labelled real images of TRAINING splits only (held-out splits and evaluation
sets stay untouched): plate crops read as the guide reads them (characters in
:func:`runtime.reading.in_reading_order`, i.e. sorted by x per line) for the OCR model, plates
found (IoU >= 0.5) against false boxes for the detector. The chosen setting goes into the entry's
JSON; every row of the sweep goes into ``export_report.json``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.metadata import ModelMetadata


@dataclass(frozen=True)
class PostSetting:
    """One point of the sweep: what DeGirum's JSON (and model properties) call these."""

    use_regular_nms: bool
    max_classes_per_detection: int
    conf: float
    nms: float

    def apply(self, model: Any) -> None:
        model.output_use_regular_nms = self.use_regular_nms
        model.output_max_classes_per_detection = self.max_classes_per_detection
        model.output_confidence_threshold = self.conf
        model.output_nms_threshold = self.nms

    def json_keys(self) -> dict[str, Any]:
        """The POST_PROCESS keys of DeGirum's model JSON."""
        return {
            "OutputConfThreshold": float(self.conf),
            "OutputNMSThreshold": float(self.nms),
            "UseRegularNMS": bool(self.use_regular_nms),
            "MaxClassesPerDetection": int(self.max_classes_per_detection),
        }


@dataclass
class Sample:
    name: str
    image: np.ndarray
    texts: list[str]
    """OCR: the one text the crop shows (visible characters only); detector: unused."""
    boxes: list[tuple[float, float, float, float]]
    """Detector: every labelled plate box of the scene."""


def grid(spec: Mapping[str, Sequence[Any]]) -> list[PostSetting]:
    """Every combination of ``spec``'s lists, in order (the first equally good one is chosen).

    ``MaxClassesPerDetection`` only acts in the fast (not regular) suppression, so with
    ``UseRegularNMS`` it keeps its first value instead of repeating identical runs."""
    first_mc = int(spec["max_classes_per_detection"][0])
    out: list[PostSetting] = []
    for r, m, c, n in itertools.product(
        spec["use_regular_nms"], spec["max_classes_per_detection"], spec["conf"], spec["nms"]
    ):
        setting = PostSetting(bool(r), first_mc if r else int(m), float(c), float(n))
        if setting not in out:
            out.append(setting)
    return out


def visible_text(plate: Any) -> str | None:
    """The characters a crop shows: the text, or a partial text without its masked ('*') places
    (uc3m_lp paints those over)."""
    if plate.text:
        return str(plate.text)
    partial = plate.extra.get("partial_text") if hasattr(plate, "extra") else None
    return partial.replace("*", "") if partial else None


def training_items(manifest: Any, split: str, ratios: Mapping[str, float], seed: int) -> list[Any]:
    """The manifest's images of ``split``; a manifest without splits is split by plate text as
    ``python -m data action=split`` splits it (the held-out sets of the model card)."""
    from data.split import assign_splits

    items = list(manifest.images)
    if not any(i.split for i in items):
        assign_splits(items, dict(ratios), key="text", seed=seed)
    return [i for i in items if i.split == split]


def load_samples(
    sources: Iterable[str],
    task: str,
    split: str,
    count: int,
    paths: Any,
    ratios: Mapping[str, float],
    seed: int,
) -> dict[str, list[Sample]]:
    """Up to ``count`` labelled samples per source (dataset name or manifest path) of ``split``.

    OCR: crop images whole, scene plates cut at their labelled box (the guide crops the bare box),
    each with a known text; detector: scenes with their plate boxes.
    """
    from data.manifest import read_manifest
    from export.checks import shuffled_images
    from train.mix import parse_sources

    out: dict[str, list[Sample]] = {}
    for source in sources:
        parsed = parse_sources([str(source)], paths)[0]
        manifest = read_manifest(parsed.manifest, **parsed.access)
        items = training_items(manifest, split, ratios, seed)
        picked: list[Sample] = []
        for item, image in shuffled_images(manifest, items, seed, scenes_only=task == "plate_det"):
            if len(picked) >= count:
                break
            if task == "plate_det":
                picked.append(Sample(item.image, image, [], [tuple(p.box) for p in item.plates]))
                continue
            for plate in item.plates:
                text = visible_text(plate)
                if not text:
                    continue
                if item.is_crop:
                    crop = image
                else:
                    x1, y1, x2, y2 = (int(round(v)) for v in plate.box)
                    crop = image[max(0, y1) : y2, max(0, x1) : x2]
                if crop.size:
                    picked.append(Sample(item.image, np.ascontiguousarray(crop), [text], []))
                    break
        out[str(source)] = picked
    return out


def guide_text(model: Any, crop: np.ndarray) -> str:
    """What the guide's code reads in a crop: DeGirum's detections, sorted by x (per line)."""
    from runtime.degirum_guide import chars_of
    from runtime.reading import in_reading_order

    return "".join(c.char for c in in_reading_order(chars_of(model(crop))))


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def score_ocr(model: Any, samples: list[Sample]) -> dict[str, int]:
    exact = sum(guide_text(model, s.image) == s.texts[0] for s in samples)
    return {"exact": int(exact), "crops": len(samples)}


def score_det(model: Any, samples: list[Sample], match_iou: float = 0.5) -> dict[str, int]:
    found = false = labelled = 0
    for s in samples:
        boxes = [r["bbox"] for r in model(s.image).results if "bbox" in r]
        labelled += len(s.boxes)
        used: set[int] = set()
        for b in boxes:
            best = max(range(len(s.boxes)), key=lambda i: _iou(b, s.boxes[i]), default=None)
            if best is not None and best not in used and _iou(b, s.boxes[best]) >= match_iou:
                used.add(best)
            else:
                false += 1
        found += len(used)
    return {"found": found, "false": false, "labelled": labelled}


def _quality(task: str, score: dict[str, int]) -> float:
    if task == "plate_ocr":
        return float(score["exact"])
    # F1 of plates found: a missed plate and a false one cost the same.
    return 2.0 * score["found"] / max(1, score["labelled"] + score["found"] + score["false"])


def sweep(
    config: Path, task: str, samples: Mapping[str, list[Sample]], settings: list[PostSetting], fill: int
) -> dict[str, Any]:
    """Every setting on every sample through DeGirum PySDK (the entry, local ONNX/CPU); returns
    {"chosen": POST_PROCESS keys, "rows": [...], "samples": {source: n}, ...}."""
    from export.zoo import load_degirum

    model = load_degirum(config, fill=fill)
    rows, best, best_q = [], None, -1.0
    for setting in settings:
        setting.apply(model)
        per_source = {
            src: (score_ocr if task == "plate_ocr" else score_det)(model, items)
            for src, items in samples.items()
        }
        total: dict[str, int] = {}
        for s in per_source.values():
            for k, v in s.items():
                total[k] = total.get(k, 0) + v
        q = _quality(task, total)
        rows.append({**setting.json_keys(), **total, "per_source": per_source})
        print(f"  DeGirum {task} {setting.json_keys()}: {total}", flush=True)
        if q > best_q:
            best, best_q = setting, q
    assert best is not None
    return {
        "measure": "exact guide-path reads of plate crops"
        if task == "plate_ocr"
        else "F1 of plates found (IoU >= 0.5) against false boxes",
        "samples": {src: len(items) for src, items in samples.items()},
        "fill": int(fill),
        "chosen": best.json_keys(),
        "rows": rows,
    }


def runtime_agreement(
    config: Path, onnx_path: Path, meta: ModelMetadata, samples: Mapping[str, list[Sample]], fill: int
) -> dict[str, Any]:
    """On real crops: the text the guide's code reads through DeGirum (the entry as written) vs the
    text our runtime reads (ONNX Runtime, its own decoding and reading order), and how often each
    is exactly right."""
    from export.checks import ort_session, run_ort
    from export.zoo import load_degirum
    from runtime.backends.base import decode_chars, preprocess
    from runtime.config import PipelineConfig
    from runtime.pipeline import chars_from_detections
    from runtime.reading import read_chars

    model = load_degirum(config, fill=fill)
    session = ort_session(onnx_path)
    pc = PipelineConfig()
    out: dict[str, Any] = {
        "crops": 0,
        "same_text": 0,
        "degirum_exact": 0,
        "runtime_exact": 0,
        "per_source": {},
    }
    for src, items in samples.items():
        counts = {"crops": 0, "same_text": 0, "degirum_exact": 0, "runtime_exact": 0}
        for s in items:
            theirs = guide_text(model, s.image)
            x, lb = preprocess(s.image, meta)
            h, w = s.image.shape[:2]
            dets = decode_chars(run_ort(session, x), meta, lb, w, h, pc)
            chars = chars_from_detections(dets, meta.names, (0.0, 0.0), pc)
            ours = read_chars(chars, pc).text
            counts["crops"] += 1
            counts["same_text"] += theirs == ours
            counts["degirum_exact"] += theirs == s.texts[0]
            counts["runtime_exact"] += ours == s.texts[0]
        out["per_source"][src] = counts
        for k, v in counts.items():
            out[k] += v
    return out


def tune_entry(cfg: Any, task: str, config: Path, onnx_path: Path, meta: ModelMetadata) -> dict[str, Any]:
    """Sweep ``cfg.degirum.tune`` (conf/export.yaml) for one entry; the report's ``degirum.tune``."""
    t = cfg.degirum.tune
    samples = load_samples(
        list(t.sources[task]),
        task,
        str(t.split),
        int(t.count[task]),
        cfg.paths,
        dict(t.split_ratios),
        int(t.seed),
    )
    if not any(samples.values()):
        raise ValueError(f"degirum.tune.sources.{task}: no labelled {t.split} images to tune on")
    result = sweep(config, task, samples, grid(t.grid[task]), int(cfg.degirum.fill))
    result["split"] = str(t.split)
    return result


def write_chosen(config: Path, chosen: Mapping[str, Any]) -> None:
    """Put the chosen POST_PROCESS keys into an entry's JSON (the checksum is the model's, unchanged)."""
    spec = json.loads(Path(config).read_text())
    spec["POST_PROCESS"][0].update(chosen)
    Path(config).write_text(json.dumps(spec, indent=2) + "\n")


def describe(result: Mapping[str, Any]) -> str:
    """One line for the console."""
    chosen = result["chosen"]
    row = next(r for r in result["rows"] if all(r[k] == v for k, v in chosen.items()))
    score = {k: v for k, v in row.items() if k not in chosen and k != "per_source"}
    return f"DeGirum post-processing chosen over {len(result['rows'])} settings: {chosen} -> {score}"
