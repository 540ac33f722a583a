"""Plate-swap scenes: real photographs whose labelled plates are replaced by other plates.

Every labelled plate of a real scene (uc3m_lp, ro_lp, carplates_mixed, ...) is covered by another
plate warped onto its place: a real crop (openalpr_us_crops, openalpr_br_crops, uc3m_lp_crops,
lprnet_cn_crops) or a synthetic plate of any style. The new plate is made to look as the scene's
camera saw the old one: its bright paper matched to the old plate's, the scene's colour cast, the
old plate's sharpness (the blur whose Laplacian energy comes closest), the scene's noise, and one
JPEG pass over the whole image. Half the scenes are first cut around one plate and rescaled, so the
plates land at new places and widths (20-400 px). The plate keeps its text and, where the source
has them (uc3m_lp_crops, synthetic plates), its character boxes mapped through the same warp.

``role`` (conf/swap/) decides which splits may be read: a training set reads only ``train``, a
held-out set only ``val``/``test``; anything else is refused before a pixel is drawn. Sets without
a split of their own are split in memory exactly as ``python -m data action=split`` splits them.

Every image ``i`` draws from its own generator seeded with (seed, kind, i): the same bytes whatever
the number of workers.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from omegaconf import OmegaConf

from data.errors import DataError
from data.images import read_image
from data.manifest import LabeledImage, read_manifest
from data.split import assign_splits
from data.synth import backgrounds as bgs
from data.synth.dataset import _deep_merge, default_settings, write_set
from data.synth.effects import degrade
from data.synth.plate import PlateWear, render
from data.synth.rand import uniform
from data.synth.style import PlateStyle, load_styles, weighted_index
from runtime.records import Char, Plate

log = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
KINDS = {"swap": 3, "negatives": 4}
ROLE_SPLITS = {"train": {"train"}, "heldout": {"val", "test"}}

Box = tuple[float, float, float, float]


class SwapConfigError(DataError):
    """The swap set cannot be built as configured (a split its role must not read, a missing set)."""


# -- settings and sources --------------------------------------------------------------------------


def swap_settings(name: str = "train", **overrides: Any) -> dict[str, Any]:
    """conf/swap/<name>.yaml resolved (its ``defaults`` followed), with ``overrides`` merged in."""

    def load(n: str) -> dict[str, Any]:
        path = CONF_DIR / "swap" / f"{n}.yaml"
        if not path.is_file():
            raise SwapConfigError(f"no swap config {path}")
        raw = OmegaConf.to_container(OmegaConf.load(path))
        assert isinstance(raw, dict)
        base: dict[str, Any] = {}
        for d in raw.pop("defaults", []) or []:
            if d != "_self_":
                base = _deep_merge(base, load(str(d)))
        return _deep_merge(base, raw)

    return _deep_merge(load(name), overrides)


def _dataset_spec(name: str, paths: dict[str, Any]) -> dict[str, Any]:
    spec_path = CONF_DIR / "dataset" / f"{name}.yaml"
    if not spec_path.is_file():
        raise SwapConfigError(f"swap: no dataset config {spec_path}")
    spec = OmegaConf.to_container(OmegaConf.merge({"paths": paths}, OmegaConf.load(spec_path)), resolve=True)
    assert isinstance(spec, dict)
    return spec


def check_role(role: str, entries: list[dict[str, Any]]) -> None:
    """Refuse a source whose splits its role must not read (train sets: train only; held out: val/test)."""
    if role not in ROLE_SPLITS:
        raise SwapConfigError(f"swap.role must be one of {sorted(ROLE_SPLITS)}, got {role!r}")
    for e in entries:
        splits = set(e.get("splits") or [])
        if not splits:
            raise SwapConfigError(f"swap: {e.get('dataset')}: give splits (role {role} reads only some)")
        bad = splits - ROLE_SPLITS[role]
        if bad:
            raise SwapConfigError(
                f"swap: {e.get('dataset')} splits {sorted(bad)} are not allowed for role={role} "
                f"(allowed: {sorted(ROLE_SPLITS[role])})"
            )


@functools.lru_cache(maxsize=32)
def _split_items(manifest: Path, ratios: tuple, key: str, seed: int) -> tuple[LabeledImage, ...]:
    """A manifest's images, split as ``python -m data action=split`` would where they have no split."""
    m = read_manifest(manifest)
    if any(im.split is None for im in m.images):
        assign_splits(m.images, dict(ratios), key=key, seed=seed, keep_existing=True)
    root = m.root
    for im in m.images:  # images resolve against their manifest's folder
        im.extra["_path"] = str(root / im.image)
    return tuple(m.images)


def load_source(
    entry: dict[str, Any], paths: dict[str, Any], default_split: dict[str, Any]
) -> list[LabeledImage]:
    """The images of one configured source in its allowed splits (evaluation-only sets refused)."""
    name = str(entry["dataset"])
    spec = _dataset_spec(name, paths)
    if spec.get("evaluation_only"):
        raise SwapConfigError(f"swap: {name} is for evaluation only; it must not be used to make scenes")
    manifest = Path(spec["manifest"])
    if not manifest.is_file():
        raise SwapConfigError(f"swap: dataset {name}: no manifest {manifest}")
    split = spec.get("split") or default_split
    items = _split_items(
        manifest.resolve(),
        tuple(dict(split["ratios"]).items()),  # in the configured order: it decides which split is first
        str(split.get("key", "text")),
        int(split.get("seed", 0)),
    )
    wanted = set(entry["splits"])
    return [im for im in items if im.split in wanted]


def _iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0


def unlabelled_boxes(
    predictions: Path, items: list[tuple[LabeledImage, str]], min_score: float
) -> list[list[Box]]:
    """Per scene, the plates a detector found that no label covers (score >= ``min_score``, IoU with
    every label < 0.3), from an evaluation's predictions.jsonl of that dataset (``python -m evaluate
    dataset=carplates_mixed``): visible plates the labels miss get a new plate and a label too,
    instead of staying in the scene as unlabelled plates."""
    if not predictions.is_file():
        raise SwapConfigError(f"swap: unlabelled_boxes: no predictions file {predictions}")
    found: dict[str, list[Box]] = {}
    recorded: set[str] = set()  # images whose line holds detector output (plates: a list, maybe empty)
    with predictions.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise SwapConfigError(f"{predictions}:{n}: not JSON ({e.msg})") from None
            if "header" in rec:
                continue
            if rec.get("plates") is not None:
                recorded.add(str(rec["image"]))
            if not rec.get("plates"):
                continue
            found[str(rec["image"])] = [
                tuple(float(v) for v in p["box"])  # type: ignore[misc]
                for p in rec["plates"]
                if p.get("det_score") is not None and float(p["det_score"]) >= min_score
            ]
    # Without detector output every scene would silently keep its unlabelled plates as background.
    if not recorded:
        raise SwapConfigError(
            f"swap: unlabelled_boxes: {predictions} holds no detector output (plates is null on every "
            "line, as end_to_end=false writes it): write it with python -m evaluate dataset=NAME"
        )
    if items and not any(im.image in recorded for im, _ in items):
        raise SwapConfigError(
            f"swap: unlabelled_boxes: {predictions} names none of this scene set's images "
            "(it was written for another dataset)"
        )
    out = []
    for im, _ in items:
        labels = [tuple(float(v) for v in p.box) for p in im.plates]
        out.append([b for b in found.get(im.image, []) if all(_iou(b, lb) < 0.3 for lb in labels)])  # type: ignore[arg-type]
    return out


def with_unlabelled(item: LabeledImage, boxes: list[Box]) -> LabeledImage:
    if not boxes:
        return item
    extra = [Plate(box=b, text=None, extra={"pseudo": True}) for b in boxes]
    return dataclasses.replace(item, plates=[*item.plates, *extra])


@dataclass
class CropPlate:
    path: str
    ref: str  # "dataset:image" (no machine path in the record)
    plate: Plate  # box = the whole crop; chars in crop pixels where known
    region: str | None
    width: int
    height: int
    inset: tuple[float, float]


@dataclass
class SwapContext:
    kind: str
    seed: int
    out: Path
    settings: dict[str, Any]  # synth settings (realism, model, ...)
    swap: dict[str, Any]
    scenes: list[list[tuple[LabeledImage, str]]]  # per source: (record, "dataset:image")
    scene_weights: tuple[float, ...]
    crops: list[list[CropPlate]]
    crop_weights: tuple[float, ...]
    styles: list[PlateStyle]
    pool: bgs.RealBackgrounds | None = None


def build_context(
    kind: str, seed: int, out: Path, swap: dict[str, Any], settings: dict[str, Any], styles: list[str] | None
) -> SwapContext:
    role = str(swap["role"])
    check_role(role, list(swap["scenes"]) + list(swap["crops"]))
    paths = settings["paths"]
    scenes, scene_w = [], []
    for e in swap["scenes"]:
        items = [(im, f"{e['dataset']}:{im.image}") for im in load_source(e, paths, swap["split"])]
        items = [(im, ref) for im, ref in items if not im.is_crop and im.plates]
        if e.get("unlabelled_boxes"):
            items = [
                (with_unlabelled(im, boxes), ref)
                for (im, ref), boxes in zip(
                    items,
                    unlabelled_boxes(
                        Path(str(e["unlabelled_boxes"])), items, float(swap["unlabelled_min_score"])
                    ),
                    strict=True,
                )
            ]
        if not items:
            raise SwapConfigError(f"swap: {e['dataset']} {list(e['splits'])}: no scene with a labelled plate")
        scenes.append(items)
        scene_w.append(float(e.get("weight", 1.0)))
    crops, crop_w = [], []
    insets = swap.get("inset") or {}
    for e in swap["crops"]:
        inset = tuple(float(v) for v in insets.get(e["dataset"], (0.0, 0.0)))
        plates = [
            CropPlate(
                path=im.extra["_path"],
                ref=f"{e['dataset']}:{im.image}",
                plate=im.plates[0],
                region=im.region,
                width=im.width,
                height=im.height,
                inset=inset,  # type: ignore[arg-type]
            )
            for im in load_source(e, paths, swap["split"])
            if im.is_crop and im.plates
        ]
        if plates:
            crops.append(plates)
            crop_w.append(float(e.get("weight", 1.0)))
    if not crops and float(swap["synthetic"]) < 1.0 and kind == "swap":
        raise SwapConfigError("swap: no crop source has plates and synthetic < 1: nothing to paste")
    pool = None
    if kind == "negatives":
        manifests = [_dataset_spec(str(e["dataset"]), paths)["manifest"] for e in swap["scenes"]]
        allowed = sorted({s for e in swap["scenes"] for s in e["splits"]})
        pool = bgs.RealBackgrounds([Path(m) for m in manifests], splits=allowed, pool=256, seed=seed)
    return SwapContext(
        kind=kind,
        seed=seed,
        out=out,
        settings=settings,
        swap=swap,
        scenes=scenes,
        scene_weights=tuple(scene_w),
        crops=crops,
        crop_weights=tuple(crop_w),
        styles=load_styles(styles),
        pool=pool,
    )


# -- measuring the scene ---------------------------------------------------------------------------


def noise_sigma(gray: np.ndarray) -> float:
    """Immerkaer's estimate of additive noise (grey levels): fast, one filter."""
    if min(gray.shape[:2]) < 3:
        return 0.0
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    r = cv2.filter2D(gray.astype(np.float32), -1, k)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2) * np.abs(r).mean() / 6.0)


def sharpness(gray: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Laplacian energy over the grey level spread: how sharp, whatever the contrast."""
    if gray.size < 9:
        return 0.0
    g = gray.astype(np.float32)
    lap = np.abs(cv2.Laplacian(g, cv2.CV_32F, ksize=1))
    if mask is not None:
        m = mask > 128
        if m.sum() < 9:
            return 0.0
        return float(lap[m].mean() / (g[m].std() + 4.0))
    return float(lap.mean() / (g.std() + 4.0))


def _clip_box(b: Box, w: int, h: int) -> tuple[int, int, int, int]:
    x1, y1 = max(0, int(math.floor(b[0]))), max(0, int(math.floor(b[1])))
    x2, y2 = min(w, int(math.ceil(b[2]))), min(h, int(math.ceil(b[3])))
    return x1, y1, x2, y2


@dataclass
class SceneLook:
    cast: np.ndarray  # BGR gains of the scene's grey-world colour
    noise: float


def scene_look(image: np.ndarray) -> SceneLook:
    small = cv2.resize(image, (64, 48), interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float64)
    mean = small.mean(axis=0) + 1.0
    return SceneLook(cast=mean / mean.mean(), noise=noise_sigma(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)))


def plate_paper(gray: np.ndarray) -> float:
    """The plate's bright paper (90th percentile grey level): what lighting scales."""
    return float(np.percentile(gray, 90)) + 1.0 if gray.size else 128.0


# -- one new plate ---------------------------------------------------------------------------------


@dataclass
class NewPlate:
    image: np.ndarray  # BGR, front-on
    alpha: np.ndarray  # 8-bit coverage of image
    text: str | None
    chars: list[Char]  # in image pixels
    lines: int | None
    inset: tuple[float, float]  # the plate inside image (fractions cut from each side)
    extra: dict[str, Any]
    rendered: Any = None  # synthetic: the RenderedPlate (its hulls give exact character boxes)

    @property
    def aspect(self) -> float:
        h, w = self.image.shape[:2]
        ix, iy = self.inset
        return w * (1 - 2 * ix) / max(1e-6, h * (1 - 2 * iy))


def _feathered(w: int, h: int, feather_px: float) -> np.ndarray:
    """Full coverage inside, ramping to 0 over ``feather_px`` at the border (a pasted crop's edge
    should not be a hard line: the crop's own margin fades into the scene)."""
    f = max(1.0, feather_px)
    yy = np.minimum(np.arange(h, dtype=np.float32) + 0.5, h - np.arange(h, dtype=np.float32) - 0.5)
    xx = np.minimum(np.arange(w, dtype=np.float32) + 0.5, w - np.arange(w, dtype=np.float32) - 0.5)
    a = np.minimum(yy[:, None], xx[None, :]) / f
    return (np.clip(a, 0, 1) * 255).astype(np.uint8)


def _real_plate(ctx: SwapContext, rng: np.random.Generator) -> NewPlate | None:
    source = ctx.crops[weighted_index(rng, ctx.crop_weights)]
    cp = source[int(rng.integers(len(source)))]
    try:
        img = read_image(cp.path)
    except (FileNotFoundError, ValueError) as e:
        log.warning("swap: crop skipped: %s", e)
        return None
    h, w = img.shape[:2]
    sx, sy = w / max(1, cp.width), h / max(1, cp.height)
    chars = [
        Char(char=c.char, box=(c.box[0] * sx, c.box[1] * sy, c.box[2] * sx, c.box[3] * sy), line=c.line)
        for c in cp.plate.chars
    ]
    feather = float(ctx.swap["match"]["feather"]) * h
    ix, iy = cp.inset
    feather = max(feather, ix * w, iy * h)  # a margin of car around the plate fades out entirely
    extra = {"source": cp.ref, "kind": "crop"}
    if cp.region:
        extra["region"] = cp.region
    for key in ("partial_text",):
        if key in cp.plate.extra:
            extra[key] = cp.plate.extra[key]
    return NewPlate(
        image=img,
        alpha=_feathered(w, h, min(feather, 0.3 * h)) if feather > 1 else np.full((h, w), 255, np.uint8),
        text=cp.plate.text,
        chars=chars,
        lines=cp.plate.lines,
        inset=cp.inset,
        extra=extra,
    )


def _synthetic_plate(ctx: SwapContext, rng: np.random.Generator, width_px: float) -> NewPlate:
    style = ctx.styles[weighted_index(rng, tuple(float(s.weight) for s in ctx.styles))]
    r = ctx.settings["realism"]
    wear = PlateWear(
        dirt=float(r["dirt"]["p"]),
        dirt_amount=tuple(r["dirt"]["amount"]),  # type: ignore[arg-type]
        fade=float(r["fade"]["p"]),
        glare=float(r["glare"]["p"]),
        screws=float(r["screws"]["p"]),
        sticker=float(r["stickers"]["p"]),
    )
    ppm = float(np.clip(width_px * 1.2 / style.size_mm[0], 0.12, 2.0))
    rp = render(
        style,
        None,
        rng,
        px_per_mm=ppm,
        confusable_boost=float(ctx.settings["confusable_boost"]),
        confusables=str(ctx.settings["confusables"]),
        wear=wear,
    )
    return NewPlate(
        image=rp.image,
        alpha=rp.alpha,
        text=rp.plate.text,
        chars=list(rp.plate.chars),
        lines=rp.plate.lines,
        inset=(0.0, 0.0),
        extra={"kind": "synthetic", "style": style.name, "variant": rp.variant, "region": style.region},
        rendered=rp,
    )


def _cover_quad(old: Box, aspect: float, grow: float) -> np.ndarray:
    """The corners of the smallest plate of ``aspect`` centred on ``old`` that covers it, times ``grow``."""
    w, h = old[2] - old[0], old[3] - old[1]
    pw = max(w, h * aspect) * grow
    ph = pw / aspect
    cx, cy = (old[0] + old[2]) / 2, (old[1] + old[3]) / 2
    return np.array(
        [
            [cx - pw / 2, cy - ph / 2],
            [cx + pw / 2, cy - ph / 2],
            [cx + pw / 2, cy + ph / 2],
            [cx - pw / 2, cy + ph / 2],
        ],
        np.float32,
    )


def _matched(np_: NewPlate, old_gray: np.ndarray, look: SceneLook, m: dict[str, Any]) -> np.ndarray:
    """The new plate's pixels with the old plate's brightness and the scene's colour cast."""
    gray = cv2.cvtColor(np_.image, cv2.COLOR_BGR2GRAY)
    lo, hi = (float(v) for v in m["brightness"])
    gain = float(np.clip(plate_paper(old_gray) / plate_paper(gray[np_.alpha > 128]), lo, hi))
    gains = gain * look.cast ** float(m["colour"])
    return (
        cv2.multiply(np_.image.astype(np.float32), tuple(float(g) for g in gains) + (0.0,))
        .clip(0, 255)
        .astype(np.uint8)
    )


def paste(
    frame: np.ndarray,
    np_: NewPlate,
    quad: np.ndarray,
    old_box: Box,
    look: SceneLook,
    rng: np.random.Generator,
    m: dict[str, Any],
    min_visible: float,
) -> Plate | None:
    """Warp ``np_`` onto ``quad`` of ``frame`` (in place), matched to the plate it covers at ``old_box``."""
    H, W = frame.shape[:2]
    ox1, oy1, ox2, oy2 = _clip_box(old_box, W, H)
    old_gray = cv2.cvtColor(frame[oy1:oy2, ox1:ox2], cv2.COLOR_BGR2GRAY) if ox2 > ox1 and oy2 > oy1 else None
    if old_gray is None or old_gray.size < 4:
        return None
    old_sharp = sharpness(old_gray)
    image = _matched(np_, old_gray, look, m)
    ph, pw = image.shape[:2]
    # the warp, from the crop's pixels to the frame (a big shrink first: a warp alone would alias)
    target_w = float(np.linalg.norm(quad[1] - quad[0]))
    alpha = np_.alpha
    if target_w < pw * 0.6:
        s = target_w * 1.25 / pw
        size = (max(2, round(pw * s)), max(2, round(ph * s)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    sh, sw = image.shape[:2]
    bx1, by1, bx2, by2 = _clip_box(
        (
            float(quad[:, 0].min()),
            float(quad[:, 1].min()),
            float(quad[:, 0].max()) + 1,
            float(quad[:, 1].max()) + 1,
        ),
        W,
        H,
    )
    if bx2 - bx1 < 2 or by2 - by1 < 2:
        return None
    src = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float32)
    mm = cv2.getPerspectiveTransform(src, (quad - np.array([bx1, by1], np.float32)).astype(np.float32))
    size = (bx2 - bx1, by2 - by1)
    warped = cv2.warpPerspective(image, mm, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a = cv2.warpPerspective(alpha, mm, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # the old plate's sharpness: the blur whose result comes closest to it wins
    best, best_d = warped, None
    wg = cv2.cvtColor(warped, cv2.COLOR_BGR2GRAY)
    for sigma in m["blur_sigmas"]:
        sigma = float(sigma)
        cand = warped if sigma <= 0 else cv2.GaussianBlur(warped, (0, 0), sigma)
        cg = wg if sigma <= 0 else cv2.cvtColor(cand, cv2.COLOR_BGR2GRAY)
        d = abs(sharpness(cg, a) - old_sharp)
        if best_d is None or d < best_d:
            best, best_d = cand, d
    sigma_n = float(m["noise"]) * look.noise
    if sigma_n > 0.3:
        noise = rng.normal(0.0, sigma_n, best.shape[:2]).astype(np.float32)
        best = cv2.add(best.astype(np.float32), cv2.merge([noise] * 3)).clip(0, 255).astype(np.uint8)
    roi = frame[by1:by2, bx1:bx2]
    from data.synth.draw import alpha_blend

    roi[:] = alpha_blend(roi, a, best)
    # the plate's box (inside the crop's margin) and its characters, through the same map
    ix, iy = np_.inset
    full = cv2.getPerspectiveTransform(
        np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32), quad.astype(np.float32)
    )
    inner = np.array(
        [
            [ix * pw, iy * ph],
            [(1 - ix) * pw, iy * ph],
            [(1 - ix) * pw, (1 - iy) * ph],
            [ix * pw, (1 - iy) * ph],
        ],
        np.float32,
    )
    pts = cv2.perspectiveTransform(inner.reshape(-1, 1, 2), full).reshape(-1, 2)
    x1, y1 = float(pts[:, 0].min()), float(pts[:, 1].min())
    x2, y2 = float(pts[:, 0].max()), float(pts[:, 1].max())
    box = (max(0.0, x1), max(0.0, y1), min(float(W), x2), min(float(H), y2))
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        return None
    chars: list[Char] = []
    if np_.rendered is not None and np_.chars:
        lo_hi = _hull_boxes(np_.rendered, full)
    else:
        lo_hi = [_map_box(c.box, full) for c in np_.chars]
    for ch, (cx1, cy1, cx2, cy2) in zip(np_.chars, lo_hi, strict=True):
        area = max(1e-6, (cx2 - cx1) * (cy2 - cy1))
        vx1, vy1, vx2, vy2 = max(cx1, 0.0), max(cy1, 0.0), min(cx2, float(W)), min(cy2, float(H))
        if vx2 <= vx1 or vy2 <= vy1 or (vx2 - vx1) * (vy2 - vy1) / area < min_visible:
            continue
        chars.append(Char(char=ch.char, box=(vx1, vy1, vx2, vy2), line=ch.line))
    extra = dict(np_.extra)
    if len(chars) < len(np_.chars):
        extra["hidden_chars"] = len(np_.chars) - len(chars)
    return Plate(box=box, text=np_.text, chars=chars, lines=np_.lines, extra=extra)


def _map_box(b: tuple[float, float, float, float], m: np.ndarray) -> tuple[float, float, float, float]:
    pts = np.array([[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]], np.float32).reshape(-1, 1, 2)
    p = cv2.perspectiveTransform(pts, m).reshape(-1, 2)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def _hull_boxes(rp: Any, m: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Synthetic plates: each character's ink hull through ``m`` (exact boxes under perspective)."""
    pts = cv2.perspectiveTransform(rp.hulls.reshape(-1, 1, 2).astype(np.float32), m).reshape(-1, 2)
    lo, hi = np.minimum.reduceat(pts, rp.hull_starts), np.maximum.reduceat(pts, rp.hull_starts)
    return [(float(a[0]), float(a[1]), float(b[0]), float(b[1])) for a, b in zip(lo, hi, strict=True)]


def _new_plate_for(
    ctx: SwapContext, rng: np.random.Generator, old: Box
) -> tuple[NewPlate, np.ndarray] | None:
    """A plate for the old box and its quad: crops of a far-off shape are passed over (a 2:1 US
    plate covering a 4.7:1 European box stands far out of its holder) for up to a few tries."""
    sw = ctx.swap
    w, h = max(1.0, old[2] - old[0]), max(1.0, old[3] - old[1])
    best = None
    for _ in range(6):
        if not ctx.crops or rng.random() < float(sw["synthetic"]):
            cand = _synthetic_plate(ctx, rng, w)
        else:
            cand = _real_plate(ctx, rng)
            if cand is None:
                continue
        grow = uniform(rng, *(float(v) for v in sw["cover"]))
        # the quad is of the whole image; the plate inside it (inset) must cover the old box
        ix, iy = cand.inset
        quad = _cover_quad(old, cand.aspect, grow)
        cx, cy = quad.mean(axis=0)
        fx, fy = 1 / max(1e-6, 1 - 2 * ix), 1 / max(1e-6, 1 - 2 * iy)
        quad = (quad - [cx, cy]) * [fx, fy] + [cx, cy]
        change = (quad[1, 0] - quad[0, 0]) * (quad[3, 1] - quad[0, 1]) / (fx * fy) / (w * h)
        if best is None or change < best[2]:
            best = (cand, quad.astype(np.float32), change)
        if change <= float(sw["max_area_change"]):
            break
    if best is None:
        return None
    return best[0], best[1]


# -- one scene -------------------------------------------------------------------------------------


def _loguniform(rng: np.random.Generator, lo_hi) -> float:
    lo, hi = (float(v) for v in lo_hi)
    return float(math.exp(uniform(rng, math.log(lo), math.log(hi))))


def _zoom(
    image: np.ndarray, boxes: list[Box], rng: np.random.Generator, z: dict[str, Any]
) -> tuple[np.ndarray, list[Box], tuple[float, float, float]]:
    """Cut the scene around one plate and rescale it: that plate ends up ``plate_width`` wide (as far
    as ``max_upscale`` allows) at a random place in a frame of one of ``sizes``. Returns the new
    image, the boxes in it (clipped; those fully outside dropped later) and (scale, x0, y0)."""
    H, W = image.shape[:2]
    x1, y1, x2, y2 = boxes[int(rng.integers(len(boxes)))]
    pw = max(1.0, x2 - x1)
    target = _loguniform(rng, z["plate_width"])
    s = min(target / pw, float(z["max_upscale"]))
    sizes = z["sizes"]
    ow, oh = (int(v) for v in sizes[int(rng.integers(len(sizes)))])
    # the window in scene pixels, no larger than the scene, holding the chosen plate
    ww, wh = min(W, ow / s), min(H, oh / s)
    if ww < (x2 - x1) * 1.05 or wh < (y2 - y1) * 1.05:
        s = min(s, ow / ((x2 - x1) * 1.3), oh / ((y2 - y1) * 1.3))
        ww, wh = min(W, ow / s), min(H, oh / s)
    lo_x, hi_x = max(0.0, x2 - ww), min(x1, W - ww)
    lo_y, hi_y = max(0.0, y2 - wh), min(y1, H - wh)
    x0 = uniform(rng, lo_x, hi_x) if hi_x > lo_x else max(0.0, min(W - ww, (x1 + x2 - ww) / 2))
    y0 = uniform(rng, lo_y, hi_y) if hi_y > lo_y else max(0.0, min(H - wh, (y1 + y2 - wh) / 2))
    out_w, out_h = max(16, round(ww * s)), max(16, round(wh * s))
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float32)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    out = cv2.warpAffine(image, m, (out_w, out_h), flags=interp, borderMode=cv2.BORDER_REFLECT)
    new = [((b[0] - x0) * s, (b[1] - y0) * s, (b[2] - x0) * s, (b[3] - y0) * s) for b in boxes]
    return out, new, (s, x0, y0)


def make_swap(ctx: SwapContext, rng: np.random.Generator) -> tuple[np.ndarray, LabeledImage]:
    sw = ctx.swap
    source = ctx.scenes[weighted_index(rng, ctx.scene_weights)]
    record, ref = source[int(rng.integers(len(source)))]
    image = read_image(record.extra["_path"])
    if image.shape[1] != record.width or image.shape[0] != record.height:  # boxes are in record pixels
        image = cv2.resize(image, (record.width, record.height), interpolation=cv2.INTER_AREA)
    boxes: list[Box] = [tuple(float(v) for v in p.box) for p in record.plates]  # type: ignore[misc]
    if rng.random() < 0.5:
        image = cv2.flip(image, 1)  # a mirrored scene is still a scene (the new plates are not mirrored)
        w = image.shape[1]
        boxes = [(w - b[2], b[1], w - b[0], b[3]) for b in boxes]
    zoomed = None
    if rng.random() < float(sw["zoom"]["p"]):
        image, boxes, zoomed = _zoom(image, boxes, rng, sw["zoom"])
    H, W = image.shape[:2]
    look = scene_look(image)
    plates: list[Plate] = []
    # far (small) plates first: a nearer plate's cover is drawn last, over anything it overlaps
    # which boxes only a detector found (unlabelled_boxes); boxes keep their order through flip and zoom
    pseudo = [bool(p.extra.get("pseudo")) for p in record.plates]
    for k in sorted(
        range(len(boxes)), key=lambda j: (boxes[j][2] - boxes[j][0]) * (boxes[j][3] - boxes[j][1])
    ):
        old = boxes[k]
        if min(old[2], W) - max(old[0], 0) < 1 or min(old[3], H) - max(old[1], 0) < 1:
            continue  # cut away by the zoom
        found = _new_plate_for(ctx, rng, old)
        if found is None:
            continue
        new, quad = found
        plate = paste(image, new, quad, old, look, rng, sw["match"], float(sw["min_visible"]))
        if plate is not None:
            if pseudo[k]:  # the labels missed this plate; a detector found it (unlabelled_boxes)
                plate.extra["over_unlabelled"] = True
            plates.append(plate)
    jpeg_lo, jpeg_hi = (int(v) for v in sw["match"]["jpeg"])
    q = int(rng.integers(jpeg_lo, jpeg_hi + 1))
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, q])
    if ok:
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    regions = {p.extra.get("region") for p in plates}
    extra: dict[str, Any] = {"synthetic": True, "swap": {"scene": ref, "jpeg": q}}
    if zoomed is not None:
        extra["swap"]["zoom"] = round(zoomed[0], 4)
    rec = LabeledImage(
        image="",
        width=W,
        height=H,
        plates=plates,
        region=regions.pop() if len(regions) == 1 else None,
        extra=extra,
    )
    return image, rec


# -- hard negatives --------------------------------------------------------------------------------

STICKER_WORDS = [
    "BABY ON BOARD",
    "I LOVE NY",
    "HONK IF",
    "SURF",
    "4X4",
    "NO FEAR",
    "PEACE",
    "GO GREEN",
    "STUDENT DRIVER",
    "CLASS OF 2019",
    "COEXIST",
    "RUN 26.2",
    "LOCAL",
    "VW CLUB",
    "D",
    "NL",
    "E",
    "GB",
]
SHOP_WORDS = [
    "FERRETERIA",
    "PANADERIA",
    "SUPERMERCADO",
    "AUTO PECAS",
    "LAVA JATO",
    "DRY CLEANING",
    "PHARMACY",
    "24 HOURS",
    "OPEN 7 DAYS",
    "TEL 555 0199",
    "RUA 12 DE OUTUBRO 450",
    "CALLE MAYOR 23",
    "SALE 50%",
    "TIRES & SERVICE",
    "OIL CHANGE",
    "BURGERS",
    "LIQUOR",
    "PNEUS",
    "HOTEL CENTRAL",
    "KIOSK 24",
]


def _font(rng: np.random.Generator):
    from data.synth.fonts import available_fonts

    fonts = available_fonts(bgs.TEXT_FONTS)
    return fonts[int(rng.integers(len(fonts)))]


def _text_block(frame, rng, box: Box, text: str, bg, ink, border: bool = False) -> None:
    from data.synth import draw

    x1, y1, x2, y2 = (int(round(v)) for v in box)
    w, h = x2 - x1, y2 - y1
    if w < 6 or h < 4:
        return
    if bg is not None:
        mask = draw.rounded_rect_mask(w, h, min(w, h) * uniform(rng, 0.0, 0.4))
        draw.blend_mask(frame, mask, x1, y1, bg)
    if border:
        cv2.rectangle(frame, (x1 + 1, y1 + 1), (x2 - 2, y2 - 2), ink, max(1, h // 14))
    m = draw.fit_text(_font(rng), text, h * uniform(rng, 0.45, 0.7), w * 0.88)
    draw.blend_mask(frame, m, x1 + (w - m.shape[1]) // 2, y1 + (h - m.shape[0]) // 2, ink)


def _negative_thing(frame: np.ndarray, rng: np.random.Generator, kind: str, box: Box, W: int, H: int) -> None:
    from data.synth import draw

    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if kind == "sign":
        bgs.distractor(frame, rng, box)
    elif kind == "sticker":  # bumper sticker: a plate-sized strip of text, often plate-like colours
        bg = draw.jitter_colour(
            [(240, 240, 240), (20, 20, 20), (30, 180, 250), (160, 60, 20), (40, 40, 200)][
                int(rng.integers(5))
            ],
            rng,
        )
        ink = (20, 20, 20) if sum(bg) > 380 else (245, 245, 245)
        hh = w * uniform(rng, 0.2, 0.5)
        _text_block(
            frame,
            rng,
            (x1, y1, x2, y1 + hh),
            STICKER_WORDS[int(rng.integers(len(STICKER_WORDS)))],
            bg,
            ink,
            border=rng.random() < 0.3,
        )
    elif (
        kind == "dealer_frame"
    ):  # a plate holder with its dealer text and the car's paint where the plate was
        hh = w / uniform(rng, 2.0, 4.7)
        quad = np.array([[x1, y1], [x2, y1], [x2, y1 + hh], [x1, y1 + hh]], np.float32)
        bgs.plate_frame(frame, rng, quad, [_font(rng)])
        body = draw.jitter_colour(bgs.BODY_COLOURS[int(rng.integers(len(bgs.BODY_COLOURS)))], rng)
        cv2.rectangle(frame, (int(x1), int(y1)), (int(x2), int(y1 + hh)), body, -1)
    elif kind == "shop_text":  # a shop front's lettering: long, plate-like rows of capitals and digits
        hh = w * uniform(rng, 0.08, 0.2)
        bg = None if rng.random() < 0.5 else draw.random_colour(rng)
        ink = draw.random_colour(rng)
        _text_block(
            frame, rng, (x1, y1, x2, y1 + hh), SHOP_WORDS[int(rng.integers(len(SHOP_WORDS)))], bg, ink
        )
    elif kind == "badge":  # chrome model badge: letters and digits on a car body
        bw = w * uniform(rng, 0.25, 0.5)  # badges are small beside the plate-sized things
        hh = bw * uniform(rng, 0.2, 0.4)
        if rng.random() < 0.5:  # on a patch of paint (otherwise on whatever the scene has there)
            body = draw.jitter_colour(bgs.BODY_COLOURS[int(rng.integers(len(bgs.BODY_COLOURS)))], rng)
            cv2.rectangle(
                frame, (int(x1 - bw * 0.3), int(y1 - hh)), (int(x1 + bw * 1.3), int(y1 + 2 * hh)), body, -1
            )
        chrome = draw.jitter_colour((200, 200, 205) if rng.random() < 0.7 else (30, 30, 30), rng)
        _text_block(
            frame,
            rng,
            (x1, y1, x1 + bw, y1 + hh),
            bgs.BADGES[int(rng.integers(len(bgs.BADGES)))],
            None,
            chrome,
        )
    elif kind == "timestamp":  # a camera's overlay: date, time, camera name, in a corner
        t = (
            f"{int(rng.integers(2015, 2027))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d} "
            f"{int(rng.integers(24)):02d}:{int(rng.integers(60)):02d}:{int(rng.integers(60)):02d}"
        )
        if rng.random() < 0.5:
            t += f" CAM{int(rng.integers(1, 17)):02d}"
        th = H * uniform(rng, 0.025, 0.05)
        tw = th * len(t) * 0.6
        tx = 4 if rng.random() < 0.5 else W - tw - 4
        ty = 4 if rng.random() < 0.5 else H - th - 4
        bg = (0, 0, 0) if rng.random() < 0.3 else None
        _text_block(frame, rng, (tx, ty, tx + tw, ty + th), t, bg, (235, 235, 235))
    elif kind == "bare_car":  # a car's rear with no plate on it (the holder empty)
        pw = w * 0.3
        pb = (x1 + w / 2 - pw / 2, y1 + h * 0.5, x1 + w / 2 + pw / 2, y1 + h * 0.5 + pw / 4.5)
        bgs.vehicle(frame, rng, pb, [_font(rng)])
    else:
        raise SwapConfigError(f"swap.negatives.kinds: unknown kind {kind!r}")


def make_negative(ctx: SwapContext, rng: np.random.Generator) -> tuple[np.ndarray, LabeledImage]:
    ng = ctx.swap["negatives"]
    sizes = ng["sizes"]
    W, H = (int(v) for v in sizes[int(rng.integers(len(sizes)))])
    frame = None
    if ctx.pool is not None and len(ctx.pool) and rng.random() < float(ng["real_background"]):
        frame = ctx.pool.sample(rng, W, H)
    if frame is None:
        frame = bgs.street(rng, W, H)
    kinds = list(ng["kinds"])
    weights = tuple(float(ng["kinds"][k]) for k in kinds)
    drawn = []
    for _ in range(int(rng.integers(ng["things"][0], ng["things"][1] + 1))):
        kind = kinds[weighted_index(rng, weights)]
        w = W * _loguniform(rng, ng["width"])
        x, y = uniform(rng, 0, max(1.0, W - w)), uniform(rng, 0, max(1.0, H - w * 0.6))
        _negative_thing(frame, rng, kind, (x, y, x + w, y + w * 0.6), W, H)
        drawn.append(kind)
    frame = degrade(frame, rng, ctx.settings["realism"])
    rec = LabeledImage(
        image="", width=W, height=H, plates=[], region=None, extra={"synthetic": True, "negatives": drawn}
    )
    return frame, rec


# -- the set ---------------------------------------------------------------------------------------


def generate_swap(
    kind: str,
    n: int,
    seed: int,
    out: Path,
    swap: dict[str, Any] | None = None,
    styles: list[str] | None = None,
    start: int = 0,
    **options: Any,
) -> Path:
    """Write ``n`` swap scenes (``kind='swap'``) or hard negatives (``'negatives'``) and their manifest
    under ``out``: images ``start`` .. ``start + n - 1`` of the set ``seed`` makes. ``swap`` is the
    conf/swap/ settings (default: conf/swap/train.yaml); ``options`` override ``synth`` of
    conf/data.yaml (``workers``, ``realism``, ...). Returns out/labels.jsonl."""
    if kind not in KINDS:
        raise DataError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    if n < 0 or start < 0:
        raise DataError(f"n and start must be >= 0, got n={n}, start={start}")
    progress = bool(options.pop("progress", True))
    options.pop("background_manifests", None)
    settings = _deep_merge(default_settings(), options)
    swap = copy.deepcopy(swap) if swap is not None else swap_settings()
    out = Path(out)
    ctx = build_context(kind, int(seed), out, swap, settings, styles)  # refuses a bad config before writing
    (out / "images").mkdir(parents=True, exist_ok=True)
    make = make_swap if kind == "swap" else make_negative
    return write_set(ctx, make, KINDS[kind], n, start, f"synth {kind}", progress, chunksize=4)
