"""Proof that an exported model behaves like its weights: PyTorch vs ONNX Runtime (parity),
fp32 vs int8 (the quantisation loss), our decoding vs DeGirum PySDK (the zoo entry), and
ONNX Runtime latency.

Images come from a manifest (real photographs; scenes for the detector, plate crops cut as the
runtime cuts them for the OCR model) or, when none is configured, from the synthetic engine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.errors import ExportError
from runtime.backends.base import preprocess
from runtime.geometry import Letterbox, iou_matrix, plate_crop_box
from runtime.metadata import ModelMetadata
from runtime.postprocess import Detections, decode_yolov8

# ------------------------------------------------------------------------------------------ images


def sample_images(
    source: str | None,
    task: str,
    split: str | None,
    count: int,
    paths,
    meta: ModelMetadata,
    seed: int = 0,
    scratch: Path | None = None,
) -> list[tuple[str, np.ndarray]]:
    """``count`` images a model of ``task`` sees before its letterbox: whole scenes for the
    detector, the padded plate region for the OCR model. ``source``: manifest path or dataset name;
    None = synthetic images (written under ``scratch``)."""
    from data.manifest import read_manifest
    from train.mix import parse_sources

    access: dict = {}
    if source is None:
        manifest_path = _synthetic(task, count, seed, scratch)
        split = None
    else:
        parsed = parse_sources([source], paths)[0]
        manifest_path, access = parsed.manifest, parsed.access
    manifest = read_manifest(manifest_path, **access)
    items = [i for i in manifest.images if split is None or i.split == split] or list(manifest.images)
    out: list[tuple[str, np.ndarray]] = []
    for item, image in shuffled_images(manifest, items, seed, scenes_only=task == "plate_det"):
        if len(out) >= count:
            break
        if task == "plate_det":
            out.append((item.image, image))
            continue
        for plate in item.plates:
            region = plate_crop_box(
                plate.box, image.shape[1], image.shape[0], meta.crop_pad_x or 0.0, meta.crop_pad_y or 0.0
            )
            if region is not None:
                x1, y1, x2, y2 = region
                out.append((item.image, image[y1:y2, x1:x2]))
                break
    if not out:
        raise ExportError(
            f"{manifest_path}: no usable {task} images" + (f" in split {split!r}" if split else "")
        )
    return out


def shuffled_images(
    manifest, items: list, seed: int, scenes_only: bool = False
) -> Iterator[tuple[Any, np.ndarray]]:
    """``(item, image)`` for the readable images of ``items`` (of ``manifest``) in a random order
    fixed by ``seed``; ``scenes_only`` leaves plate crops out (the detector sees whole scenes).
    An image that cannot be read is passed over: these are samples, not the data under test."""
    from data.images import read_image

    for k in np.random.default_rng(seed).permutation(len(items)):
        item = items[int(k)]
        if scenes_only and item.is_crop:
            continue
        try:
            image = read_image(manifest.image_path(item))
        except (FileNotFoundError, ValueError):
            continue
        yield item, image


def _synthetic(task: str, count: int, seed: int, scratch: Path | None) -> Path:
    try:
        from data.synth import generate
    except ImportError:
        raise ExportError(
            "no images configured (images.<task>=null) and the synthetic engine (data.synth) is not "
            "installed: give images.<task>=MANIFEST_OR_DATASET"
        ) from None
    if scratch is None:
        raise ExportError("synthetic images need a scratch folder")
    kind = "scenes" if task == "plate_det" else "crops"
    return generate(kind, count, seed, scratch / f"synth_{kind}", progress=False)


# ------------------------------------------------------------------------------------------ models


def ort_session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_ort(session, x: np.ndarray) -> np.ndarray:
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def run_torch(net, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        y = net(torch.from_numpy(x))
    y = y[0] if isinstance(y, (list, tuple)) else y
    return y.cpu().numpy()


def decode(
    raw: np.ndarray,
    meta: ModelMetadata,
    conf: float,
    iou: float,
    lb: Letterbox,
    image: np.ndarray,
    max_det: int = 300,
    agnostic: bool = True,
) -> Detections:
    """Boxes in ``image``'s pixels from a raw output, decoded by the runtime's own code (so what
    the checks compare is what deploys)."""
    return decode_yolov8(raw, meta.num_classes, conf, iou, max_det, agnostic=agnostic).to_image(
        lb, image.shape[1], image.shape[0]
    )


# ------------------------------------------------------------------------------------------ compare


@dataclass
class BoxAgreement:
    reference: int = 0  # confident boxes of the reference (above conf + margin)
    matched: int = 0  # of those, found in the other output at IoU >= box_iou
    other: int = 0  # confident boxes of the other output
    other_matched: int = 0
    min_iou: float = 1.0  # worst IoU among matched pairs
    iou_sum: float = 0.0
    pairs: int = 0
    ties: int = 0  # reproduced by an equal-scoring overlapping box (NMS order among ties)

    @property
    def mean_iou(self) -> float:
        return self.iou_sum / self.pairs if self.pairs else 1.0

    @property
    def ok(self) -> bool:
        return self.matched == self.reference and self.other_matched == self.other


def match_boxes(
    a: Detections,
    b: Detections,
    box_iou: float,
    conf: float,
    margin: float,
    agree: BoxAgreement | None = None,
    nms_iou: float | None = None,
) -> BoxAgreement:
    """Every box of ``a`` clearly above ``conf`` must have a counterpart in ``b`` (at ``conf - margin``)
    of the same class at IoU >= ``box_iou``, and vice versa: scores straddling the threshold by
    less than the tolerance do not count as a difference.

    With ``nms_iou``, a box also counts as reproduced when the other side kept, instead, an
    overlapping box (IoU > ``nms_iou``) whose score is equal within ``margin``: among candidates
    with equal scores, NMS keeps whichever comes first, and that is not a difference of the models."""
    agree = agree or BoxAgreement()
    ious: list[float] = []

    def one_way(x: Detections, y: Detections) -> tuple[int, int, int]:
        keep_x = x.scores >= conf + margin
        keep_y = y.scores >= conf - margin
        xb, xc, xs = x.boxes[keep_x], x.classes[keep_x], x.scores[keep_x]
        yb, yc, ys = y.boxes[keep_y], y.classes[keep_y], y.scores[keep_y]
        if not len(xb):
            return 0, 0, 0
        if not len(yb):
            return len(xb), 0, 0
        same = xc[:, None] == yc[None, :]
        m = iou_matrix(xb, yb) * same
        best = m.max(axis=1)
        matched = best >= box_iou
        ious.extend(float(v) for v in best[matched])
        ties = np.zeros(len(xb), dtype=bool)
        if nms_iou is not None:
            close = np.abs(xs[:, None] - ys[None, :]) <= margin
            ties = ~matched & ((m > nms_iou) & close).any(axis=1)
        return len(xb), int(matched.sum() + ties.sum()), int(ties.sum())

    n, k, t = one_way(a, b)
    agree.reference += n
    agree.matched += k
    agree.ties += t
    n, k, t = one_way(b, a)
    agree.other += n
    agree.other_matched += k
    agree.ties += t
    if ious:
        agree.min_iou = min(agree.min_iou, min(ious))
        agree.iou_sum += sum(ious)
        agree.pairs += len(ious)
    return agree


@dataclass
class ParityReport:
    images: int
    max_abs_boxes: float
    max_abs_scores: float
    boxes: BoxAgreement = field(default_factory=BoxAgreement)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        return d

    def line(self) -> str:
        b = self.boxes
        return (
            f"parity PyTorch vs ONNX Runtime on {self.images} images: max |diff| boxes "
            f"{self.max_abs_boxes:.2e} px, "
            f"scores {self.max_abs_scores:.2e}; boxes matched {b.matched}/{b.reference} (ONNX side "
            f"{b.other_matched}/{b.other}; {b.ties} equal-score NMS ties), min IoU {b.min_iou:.4f} -> "
            f"{'OK' if self.ok else 'FAILED'}"
        )


def parity(
    net,
    onnx_path: Path,
    meta: ModelMetadata,
    images: list[tuple[str, np.ndarray]],
    conf: float,
    iou: float,
    box_iou: float,
    atol_boxes: float,
    atol_scores: float,
) -> ParityReport:
    """Raw outputs and final boxes of the PyTorch model and the ONNX model on the same inputs."""
    session = ort_session(onnx_path)
    report = ParityReport(images=len(images), max_abs_boxes=0.0, max_abs_scores=0.0)
    for name, image in images:
        x, lb = preprocess(image, meta)
        a, b = run_torch(net, x), run_ort(session, x)
        if a.shape != b.shape:
            report.problems.append(f"{name}: output shapes differ, PyTorch {a.shape} vs ONNX {b.shape}")
            continue
        report.max_abs_boxes = max(report.max_abs_boxes, float(np.abs(a[:, :4] - b[:, :4]).max()))
        report.max_abs_scores = max(report.max_abs_scores, float(np.abs(a[:, 4:] - b[:, 4:]).max()))
        match_boxes(
            decode(a, meta, conf, iou, lb, image),
            decode(b, meta, conf, iou, lb, image),
            box_iou,
            conf,
            atol_scores,
            report.boxes,
            nms_iou=iou,
        )
    if report.max_abs_boxes > atol_boxes:
        report.problems.append(
            f"box outputs differ by up to {report.max_abs_boxes:.3g} px (tolerance {atol_boxes})"
        )
    if report.max_abs_scores > atol_scores:
        report.problems.append(
            f"class scores differ by up to {report.max_abs_scores:.3g} (tolerance {atol_scores})"
        )
    if not report.boxes.ok:
        report.problems.append(
            f"final boxes differ: {report.boxes.matched}/{report.boxes.reference} PyTorch boxes and "
            f"{report.boxes.other_matched}/{report.boxes.other} ONNX boxes matched at IoU >= {box_iou}"
        )
    return report


def compare_onnx(
    reference: Path,
    other: Path,
    meta: ModelMetadata,
    images: list[tuple[str, np.ndarray]],
    conf: float,
    iou: float,
    box_iou: float,
) -> dict:
    """How far ``other`` (e.g. int8) strays from ``reference`` (fp32): score error and box agreement."""
    ra, rb = ort_session(reference), ort_session(other)
    agree = BoxAgreement()
    score_err = []
    for _, image in images:
        x, lb = preprocess(image, meta)
        a, b = run_ort(ra, x), run_ort(rb, x)
        score_err.append(float(np.abs(a[:, 4:] - b[:, 4:]).max()))
        match_boxes(
            decode(a, meta, conf, iou, lb, image),
            decode(b, meta, conf, iou, lb, image),
            box_iou,
            conf,
            0.0,
            agree,
        )
    return {"images": len(images), "max_abs_scores": max(score_err, default=0.0), **asdict(agree)}


def benchmark(path: Path, meta: ModelMetadata, runs: int, threads: int) -> dict:
    """ONNX Runtime latency of one input (median of ``runs`` after 3 warm-ups) and the file size."""
    session = ort_session(path, threads)
    x = np.random.default_rng(0).random((1, 3, meta.input_height, meta.input_width), dtype=np.float32)
    for _ in range(3):
        run_ort(session, x)
    times = []
    for _ in range(max(1, runs)):
        t = time.perf_counter()
        run_ort(session, x)
        times.append((time.perf_counter() - t) * 1000)
    return {
        "median_ms": round(float(np.median(times)), 2),
        "threads": threads,
        "runs": len(times),
        "size_mb": round(path.stat().st_size / 1e6, 2),
    }


def degirum_agreement(
    config: Path,
    onnx_path: Path,
    meta: ModelMetadata,
    images: list[tuple[str, np.ndarray]],
    box_iou: float,
    fill: int,
    margin: float = 0.02,
) -> dict:
    """DeGirum PySDK (the zoo entry, ONNX/CPU) vs our ONNX Runtime decoding of the same model, both
    with the entry's score threshold, NMS threshold and detection limit."""
    import json

    from export.zoo import load_degirum
    from runtime.backends.degirum import detections_from_results

    post = json.loads(Path(config).read_text())["POST_PROCESS"][0]
    conf, nms_iou, max_det = (
        float(post["OutputConfThreshold"]),
        float(post["OutputNMSThreshold"]),
        int(post["MaxDetections"]),
    )
    # DeGirum's DetectionYoloV8 suppresses per class with UseRegularNMS (its default), over all
    # classes without it (one class per anchor at MaxClassesPerDetection 1, as our decoding).
    agnostic = not bool(post.get("UseRegularNMS", True))
    dg_model = load_degirum(config, fill=fill)
    session = ort_session(onnx_path)
    agree = BoxAgreement()
    for _, image in images:
        x, lb = preprocess(image, meta)
        ours = decode(run_ort(session, x), meta, conf, nms_iou, lb, image, max_det=max_det, agnostic=agnostic)
        theirs = detections_from_results(dg_model(image), image.shape[1], image.shape[0])
        match_boxes(ours, theirs, box_iou, conf, margin, agree, nms_iou=nms_iou)
    return {"fill": fill, "images": len(images), "conf": conf, **asdict(agree), "ok": agree.ok}


def degirum_available(zoo_dir: Path) -> bool:
    """DeGirum PySDK is installed and its ONNX/CPU agent runs here (asked through a local zoo, so
    nothing reaches for DeGirum's cloud)."""
    try:
        import degirum as dg

        # An absolute path: PySDK takes a relative one for the name of a cloud zoo.
        return "ONNX/CPU" in dg.connect("@local", str(Path(zoo_dir).resolve()), "").supported_device_types()
    except Exception:  # not installed, or the agent cannot start
        return False
