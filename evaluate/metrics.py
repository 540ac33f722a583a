"""Accuracy metrics over plate records: detection, OCR on ground-truth crops, end to end, speed.

Pure functions of ground truth (``runtime.records.Plate`` lists from a manifest) and predictions
(``Plate`` lists from a predictor); no files, no models. Average precision comes from Ultralytics'
``ap_per_class`` (the numbers its validator prints), fed with matches made the way its validator
makes them: predictions in descending confidence each take the best unclaimed label at or above
the IoU threshold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from evaluate.text import Label, OcrScore, TextRules, is_exact
from runtime.geometry import iou_matrix
from runtime.records import Plate

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
"""COCO's IoU thresholds for AP50-95 (Ultralytics' ``iouv``)."""


def _ratio(num: float, den: float) -> float | None:
    return float(num) / den if den else None


# ---------------------------------------------------------------------------------------------
# Matching


def det_scores(plates: Sequence[Plate]) -> np.ndarray:
    """Detector confidences; a plate without one (e.g. a replayed label) counts as certain."""
    return np.array([1.0 if p.det_score is None else p.det_score for p in plates], dtype=np.float64)


def boxes_of(plates: Sequence[Plate]) -> np.ndarray:
    return np.array([p.box for p in plates], dtype=np.float64).reshape(-1, 4)


def confidence_order(plates: Sequence[Plate]) -> np.ndarray:
    """Indices of ``plates`` by descending detector score (stable: ties keep their order)."""
    return np.argsort(-det_scores(plates), kind="stable")


def greedy_match(iou: np.ndarray, order: Sequence[int], threshold: float) -> dict[int, int]:
    """One-to-one matching: prediction -> label. ``iou`` is [labels, predictions]; predictions are
    visited in ``order`` and each takes the unclaimed label with the highest IoU >= threshold."""
    claimed = np.zeros(iou.shape[0], dtype=bool)
    matches: dict[int, int] = {}
    for j in order:
        if iou.shape[0] == 0:
            break
        available = np.where(claimed, -1.0, iou[:, j])
        k = int(available.argmax())
        if available[k] >= threshold:
            claimed[k] = True
            matches[int(j)] = k
    return matches


def keep_operating(plates: Sequence[Plate], operating_conf: float | None) -> list[Plate]:
    """The predictions a user would see at the operating threshold (None: all that were returned)."""
    if operating_conf is None:
        return list(plates)
    return [p for p, s in zip(plates, det_scores(plates), strict=False) if s >= operating_conf]


# ---------------------------------------------------------------------------------------------
# Detection


@dataclass
class DetectionResult:
    precision: float | None
    recall: float | None
    f1: float | None
    ap50: float | None
    ap50_95: float | None
    fp_per_image: float | None
    tp: int
    fp: int
    fn: int
    images: int
    labels: int
    predictions: int
    operating_conf: float | None
    iou: float
    pr_recall: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pr_precision: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """The precision-recall curve at IoU 0.5 (Ultralytics' interpolated envelope)."""

    def summary(self) -> dict:
        out = {
            k: getattr(self, k)
            for k in (
                "precision",
                "recall",
                "f1",
                "ap50",
                "ap50_95",
                "fp_per_image",
                "tp",
                "fp",
                "fn",
                "images",
                "labels",
                "predictions",
                "operating_conf",
                "iou",
            )
        }
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def average_precision(
    correct: np.ndarray, conf: np.ndarray, n_labels: int
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """AP at each IoU threshold (Ultralytics' ``ap_per_class``, one class) and the PR curve at 0.5.

    ``correct`` [N, T] marks each prediction a true positive at threshold t. None when there is no
    label (AP is undefined)."""
    from ultralytics.utils.metrics import ap_per_class  # heavy import (torch), only when scoring detection

    if n_labels == 0:
        return None, np.zeros(0), np.zeros(0)
    zeros = np.zeros(len(conf))
    result = ap_per_class(correct.astype(float), conf, zeros, np.zeros(n_labels))
    ap, x, prec_values = result[5], result[10], result[11]
    return ap[0], x, prec_values[0]


def operating_matches(
    iou: np.ndarray, preds: Sequence[Plate], operating_conf: float | None, iou_threshold: float
) -> tuple[list[int], dict[int, int]]:
    """The predictions kept at the operating threshold (most confident first) and their one-to-one
    matches to labels (prediction -> label); ``iou`` is [labels, predictions]."""
    scores = det_scores(preds)
    kept = [j for j in confidence_order(preds) if operating_conf is None or scores[j] >= operating_conf]
    return kept, greedy_match(iou, kept, iou_threshold)


def false_positives(
    labels: Sequence[Plate], preds: Sequence[Plate], operating_conf: float | None, iou_threshold: float
) -> list[int]:
    """Indices of the predictions kept at the operating threshold that match no label (most
    confident first): what ``fp_per_image`` counts, plates the labels miss included."""
    if not preds:
        return []
    kept, matched = operating_matches(
        iou_matrix(boxes_of(labels), boxes_of(preds)), preds, operating_conf, iou_threshold
    )
    return [j for j in kept if j not in matched]


def detection_metrics(
    images: Sequence[tuple[Sequence[Plate], Sequence[Plate]]],
    operating_conf: float | None = None,
    iou_threshold: float = 0.5,
) -> DetectionResult:
    """Plate detection over images given as (labels, predictions).

    P/R/F1, FP per image: predictions at the operating threshold, matched one to one at
    ``iou_threshold``. AP50 and AP50-95: every prediction returned, ranked by detector score.
    """
    correct_rows, confs = [], []
    tp = fp = n_labels = n_preds = 0
    for labels, preds in images:
        gt = boxes_of(labels)
        n_labels += len(labels)
        order = confidence_order(preds)
        iou = iou_matrix(gt, boxes_of(preds)) if len(preds) else np.zeros((len(labels), 0))
        correct = np.zeros((len(preds), len(IOU_THRESHOLDS)), dtype=bool)
        for t, thr in enumerate(IOU_THRESHOLDS):
            for j in greedy_match(iou, order, float(thr)):
                correct[j, t] = True
        correct_rows.append(correct)
        confs.append(det_scores(preds))
        kept, matched = operating_matches(iou, preds, operating_conf, iou_threshold)
        tp += len(matched)
        fp += len(kept) - len(matched)
        n_preds += len(kept)
    n_images = len(images)
    conf = np.concatenate(confs) if confs else np.zeros(0)
    correct_all = (
        np.concatenate(correct_rows) if correct_rows else np.zeros((0, len(IOU_THRESHOLDS)), dtype=bool)
    )
    ap, pr_x, pr_y = average_precision(correct_all, conf, n_labels)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, n_labels)
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else (0.0 if precision is not None and recall is not None else None)
    )
    return DetectionResult(
        precision=precision,
        recall=recall,
        f1=f1,
        ap50=None if ap is None else float(ap[0]),
        ap50_95=None if ap is None else float(ap.mean()),
        fp_per_image=_ratio(fp, n_images),
        tp=tp,
        fp=fp,
        fn=n_labels - tp,
        images=n_images,
        labels=n_labels,
        predictions=n_preds,
        operating_conf=operating_conf,
        iou=iou_threshold,
        pr_recall=pr_x,
        pr_precision=pr_y,
    )


# ---------------------------------------------------------------------------------------------
# OCR on ground-truth crops


def ocr_summary(scores: Sequence[OcrScore]) -> dict:
    """Exact plate accuracy, character error rate (total edits / total label characters), n."""
    n = len(scores)
    chars = sum(s.length for s in scores)
    return {
        "exact": None if n == 0 else round(sum(s.exact for s in scores) / n, 4),
        "cer": None if chars == 0 else round(sum(s.distance for s in scores) / chars, 4),
        "n": n,
        "chars": chars,
        "exact_count": sum(s.exact for s in scores),
    }


def confusion_pairs(scores: Sequence[OcrScore]) -> Counter:
    """(truth, read) -> count over every aligned character; '' marks a missed or extra character."""
    counts: Counter = Counter()
    for s in scores:
        counts.update(s.pairs)
    return counts


# ---------------------------------------------------------------------------------------------
# End to end

READ, MISREAD, NO_TEXT, MISSED = "read", "misread", "no_text", "missed"
"""Outcomes of a labelled plate end to end: read right, detected but read wrong, detected but no
text read, not detected."""


@dataclass
class EndToEndImage:
    outcomes: list[tuple[str, Plate | None] | None]
    """Per labelled plate (same order as the labels): outcome and the prediction matched to it;
    None for a plate without a label text (not scored)."""
    wrong_reads: int
    """Predictions with a text that is not a correct read of a labelled plate."""


def end_to_end_image(
    labels: Sequence[Plate],
    label_texts: Sequence[Label | None],
    preds: Sequence[Plate],
    rules: TextRules,
    operating_conf: float | None = None,
    iou_threshold: float = 0.5,
) -> EndToEndImage:
    """Match predictions to labels (IoU >= threshold, one to one, by detector score) and score texts.

    A prediction with a text counts as a wrong read unless it is the correct read of its matched
    plate; a prediction matched to a plate whose text is unknown is neither right nor wrong."""
    kept = keep_operating(preds, operating_conf)
    iou = iou_matrix(boxes_of(labels), boxes_of(kept)) if kept else np.zeros((len(labels), 0))
    matches = greedy_match(iou, confidence_order(kept), iou_threshold)
    by_label = {k: j for j, k in matches.items()}
    outcomes: list[tuple[str, Plate | None] | None] = []
    wrong = 0
    for i, label in enumerate(label_texts):
        if label is None:
            outcomes.append(None)
            continue
        if i not in by_label:
            outcomes.append((MISSED, None))
            continue
        pred = kept[by_label[i]]
        reading = rules.normalise(pred.text)
        if not reading:
            outcomes.append((NO_TEXT, pred))
        elif is_exact(label, reading):
            outcomes.append((READ, pred))
        else:
            outcomes.append((MISREAD, pred))
    for j, pred in enumerate(kept):
        if not rules.normalise(pred.text):
            continue
        k = matches.get(j)
        if k is None:
            wrong += 1
        elif label_texts[k] is not None and not is_exact(label_texts[k], rules.normalise(pred.text)):
            wrong += 1
    return EndToEndImage(outcomes=outcomes, wrong_reads=wrong)


def end_to_end_summary(outcomes: Sequence[str], wrong_reads: int, images: int) -> dict:
    """``outcomes``: one per labelled plate; ``exact`` = read / n."""
    counts = Counter(outcomes)
    n = len(outcomes)
    return {
        "exact": None if n == 0 else round(counts[READ] / n, 4),
        "n": n,
        "read": counts[READ],
        "misread": counts[MISREAD],
        "no_text": counts[NO_TEXT],
        "missed": counts[MISSED],
        "wrong_reads": wrong_reads,
        "wrong_per_image": None if images == 0 else round(wrong_reads / images, 4),
        "images": images,
    }


# ---------------------------------------------------------------------------------------------
# Speed

STAGES = ("pre", "det", "ocr", "post")
"""Pipeline stages a predictor times (ms per call): pre-processing, detector, OCR, post-processing."""


def percentile(values: Sequence[float], q: float) -> float | None:
    return None if len(values) == 0 else round(float(np.percentile(np.asarray(values, dtype=float), q)), 3)


def speed_summary(
    timings: dict[str, Sequence[float]], totals_ms: Sequence[float], describe: dict, peak_rss_mb: float | None
) -> dict:
    """Per-stage p50/p90 (ms), pipeline FPS from per-image totals, and what ran.

    ``totals_ms``: one wall time per image for the whole pipeline (detect and read)."""
    out: dict = {}
    for stage in list(STAGES) + sorted(k for k in timings if k not in STAGES):
        vals = list(timings.get(stage, []))
        out[f"{stage}_ms_p50"] = percentile(vals, 50)
        out[f"{stage}_ms_p90"] = percentile(vals, 90)
        out[f"{stage}_calls"] = len(vals)
    mean_total = float(np.mean(totals_ms)) if len(totals_ms) else None
    out["pipeline_ms_p50"] = percentile(totals_ms, 50)
    out["pipeline_ms_p90"] = percentile(totals_ms, 90)
    out["pipeline_fps"] = None if not mean_total else round(1000.0 / mean_total, 2)
    out["images_timed"] = len(totals_ms)
    for key in ("backend", "precision", "threads"):
        out[key] = describe.get(key)
    out["peak_rss_mb"] = None if peak_rss_mb is None else round(float(peak_rss_mb), 1)
    return out


# ---------------------------------------------------------------------------------------------
# Breakdowns


def width_bucket(width: float, edges: Sequence[float]) -> str:
    """The label of the [lo, hi) bucket a plate width falls in (last edge open-ended as '>=lo')."""
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if lo <= width < hi:
            return bucket_label(lo, hi, edges)
    return f"<{edges[0]}" if width < edges[0] else f">={edges[-1]}"


def bucket_label(lo: float, hi: float, edges: Sequence[float]) -> str:
    lo_s, hi_s = f"{lo:g}", f"{hi:g}"
    return f">={lo_s}" if hi == edges[-1] and hi >= 10000 else f"{lo_s}-{hi_s}"


def bucket_labels(edges: Sequence[float]) -> list[str]:
    return [bucket_label(lo, hi, edges) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
