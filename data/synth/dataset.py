"""Synthetic data sets: OCR crops (what the OCR model sees) and scenes (what the detector sees).

Every image ``i`` draws from its own generator seeded with (seed, kind, i), so a set is the same bytes
whatever the number of workers, and image i of a set does not depend on n.
"""

from __future__ import annotations

import copy
import functools
import gc
import logging
import math
import multiprocessing as mp
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from omegaconf import OmegaConf
from tqdm import tqdm

from data.errors import DataError
from data.exporters import cut_plate, jitter_box
from data.manifest import LabeledImage, write_manifest
from data.synth import backgrounds as bgs
from data.synth.compose import Placed, camera_quad, composite, occlude, quad_box
from data.synth.effects import degrade
from data.synth.fonts import available_fonts
from data.synth.plate import PlateWear, render
from data.synth.rand import uniform
from data.synth.style import PlateStyle, load_styles, weighted_index
from runtime.records import Plate

log = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
KINDS = {"crops": 1, "scenes": 2}


# -- settings --------------------------------------------------------------------------------------


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def default_settings() -> dict[str, Any]:
    """``synth`` of conf/data.yaml, plus the OCR model's input and crop padding and the paths,
    resolved without Hydra (for callers outside ``python -m data``). A new copy on every call."""
    return copy.deepcopy(_settings_from_files(*(os.environ.get(k) for k in _PATH_ENV)))


_PATH_ENV = ("LPR_RUNS", "LPR_SHARED_DATASETS")
"""Environment variables conf/paths/default.yaml reads: the resolved settings are kept per their values."""


@functools.lru_cache(maxsize=8)
def _settings_from_files(*path_env: str | None) -> dict[str, Any]:
    """The config files read and resolved once per process and ``path_env`` (OmegaConf takes ~50 ms;
    ``generate`` is called many times in tests and benchmarks)."""
    import stage.config  # noqa: F401  (registers ${lpr.root:})

    data = OmegaConf.load(CONF_DIR / "data.yaml")
    root = OmegaConf.create(
        {
            "paths": OmegaConf.load(CONF_DIR / "paths" / "default.yaml"),
            "synth": data.synth,
            "model": OmegaConf.load(CONF_DIR / "model" / "plate_ocr.yaml"),
        }
    )
    resolved = OmegaConf.to_container(root, resolve=True)
    assert isinstance(resolved, dict)
    settings = dict(resolved["synth"])
    settings["model"] = resolved["model"]
    settings["paths"] = resolved["paths"]
    return settings


def background_manifests(datasets: list[str], paths: dict[str, Any]) -> list[Path]:
    """Manifests of the named conf/dataset/*.yaml that are present (evaluation-only sets refused)."""
    out = []
    for name in datasets or []:
        spec_path = CONF_DIR / "dataset" / f"{name}.yaml"
        if not spec_path.is_file():
            raise DataError(f"synth.backgrounds.datasets: no dataset config {spec_path}")
        spec = OmegaConf.to_container(
            OmegaConf.merge({"paths": paths}, OmegaConf.load(spec_path)), resolve=True
        )
        assert isinstance(spec, dict)
        if spec.get("evaluation_only"):
            raise DataError(
                f"synth.backgrounds.datasets: {name} is for evaluation only; its images must not be "
                f"used to make training data"
            )
        manifest = Path(spec["manifest"])
        if manifest.is_file():
            out.append(manifest)
        else:
            log.info("background set %s not present (%s): procedural backgrounds only", name, manifest)
    return out


# -- per-process context ---------------------------------------------------------------------------


@dataclass
class Context:
    kind: str
    seed: int
    out: Path
    settings: dict[str, Any]
    styles: list[PlateStyle]
    pool: bgs.RealBackgrounds
    style_weights: tuple[float, ...] = field(init=False)
    wear: PlateWear = field(init=False)

    def __post_init__(self) -> None:
        self.style_weights = tuple(float(s.weight) for s in self.styles)
        r = self.settings["realism"]
        self.wear = PlateWear(
            dirt=float(r["dirt"]["p"]),
            dirt_amount=tuple(r["dirt"]["amount"]),  # type: ignore[arg-type]
            fade=float(r["fade"]["p"]),
            glare=float(r["glare"]["p"]),
            screws=float(r["screws"]["p"]),
            sticker=float(r["stickers"]["p"]),
        )

    def style(self, rng: np.random.Generator) -> PlateStyle:
        return self.styles[weighted_index(rng, self.style_weights)]


def _loguniform(rng: np.random.Generator, lo_hi) -> float:
    lo, hi = (float(v) for v in lo_hi)
    return float(math.exp(uniform(rng, math.log(lo), math.log(hi))))


def _px_per_mm(style: PlateStyle, width_px: float) -> float:
    """Draw the plate a little larger than it will appear (the warp then only shrinks it), at one of
    a ladder of scales (2^(k/4)): glyphs then repeat their sizes and are scaled once per size."""
    ppm = float(np.clip(width_px * 1.1 / style.size_mm[0], 0.12, 1.6))
    return float(2.0 ** (math.ceil(math.log2(ppm) * 4) / 4))


def _place(
    frame: np.ndarray,
    ctx: Context,
    rng: np.random.Generator,
    style: PlateStyle,
    width_px: float,
    quad: np.ndarray,
    plate_extra: dict,
) -> Placed | None:
    r = ctx.settings["realism"]
    rp = render(
        style,
        None,
        rng,
        px_per_mm=_px_per_mm(style, width_px),
        confusable_boost=float(ctx.settings["confusable_boost"]),
        confusables=str(ctx.settings["confusables"]),
        wear=ctx.wear,
    )
    if rng.random() < float(r["frame"]["p"]):
        bgs.plate_frame(frame, rng, quad, available_fonts(bgs.TEXT_FONTS))
    placed = composite(
        frame,
        rp,
        quad,
        min_visible=float(ctx.settings["min_visible"]),
        extra={"style": style.name, "variant": rp.variant, **plate_extra},
    )
    if placed is not None and rng.random() < float(r["occlusion"]["p"]):
        occlude(frame, placed, rng, max_hidden=1.0 - float(ctx.settings["min_visible"]))
    return placed


def _perspective(ctx: Context) -> dict[str, float]:
    p = ctx.settings["realism"]["perspective"]
    return {
        "yaw_deg": float(p["yaw_deg"]),
        "pitch_deg": float(p["pitch_deg"]),
        "roll_deg": float(p["roll_deg"]),
    }


# -- one OCR crop ----------------------------------------------------------------------------------

_DEGRADE_MARGIN = 8
"""Pixels around the reach of the cut that the crop's frame also holds: the widest blur kernels
(Gaussian sigma 1.8 at 4 sigma, motion blur 9 px) then see real neighbours at the cut's edge."""


def _reach_margins(bw: float, bh: float, jitter: float, pad_x: float, pad_y: float) -> tuple[float, float]:
    """How far beyond a bw x bh plate box a crop of it can reach (``jitter_box`` moves each side by up
    to ``jitter`` of the size, ``plate_crop_box`` pads the moved box), plus the blur margin."""
    return (
        (jitter + pad_x * (1 + 2 * jitter)) * bw + _DEGRADE_MARGIN,
        (jitter + pad_y * (1 + 2 * jitter)) * bh + _DEGRADE_MARGIN,
    )


def make_crop(ctx: Context, rng: np.random.Generator) -> tuple[np.ndarray, LabeledImage]:
    s, c, m = ctx.settings, ctx.settings["crops"], ctx.settings["model"]
    style = ctx.style(rng)
    cap_px = _loguniform(rng, c["char_height_px"])
    width = min(float(c["max_plate_px"]), cap_px * style.size_mm[0] / style.text.height_mm[0])
    aspect = style.size_mm[0] / style.size_mm[1]
    quad = camera_quad(rng, width, aspect, (0.0, 0.0), **_perspective(ctx))
    x1, y1, x2, y2 = quad_box(quad)
    bw, bh = x2 - x1, y2 - y1
    pad_x, pad_y, jitter = float(m["crop"]["pad_x"]), float(m["crop"]["pad_y"]), float(c["jitter"])
    # the frame is exactly what the runtime's cut can reach (and the blur margin): the scene around
    # it never reaches the OCR model, so it is neither drawn nor degraded
    gx, gy = _reach_margins(bw, bh, jitter, pad_x, pad_y)
    fw, fh = int(math.ceil(bw + 2 * gx)), int(math.ceil(bh + 2 * gy))
    ox, oy = x1 - gx, y1 - gy  # the frame's corner in the plate's coordinates
    if rng.random() < float(c["edge_cut"]):  # the plate runs off the frame (a crop at the image edge)
        shift = gx + uniform(rng, 0.03, 0.2) * bw
        ox += shift if rng.random() < 0.5 else -shift
    quad = quad - np.array([ox, oy], np.float32)
    frame = None
    if len(ctx.pool) and rng.random() < float(c["real_context"]):
        frame = ctx.pool.sample(rng, fw, fh)
    if frame is None:
        # a vehicle around the plate covers a crop's frame but for a corner now and then (tall moto
        # plates): beneath it one colour will do
        with_vehicle = rng.random() < float(c["vehicle"])
        frame = bgs.texture(rng, fw, fh, plain=with_vehicle)
        if with_vehicle:
            bgs.vehicle(frame, rng, quad_box(quad), available_fonts(bgs.TEXT_FONTS))
    placed = _place(frame, ctx, rng, style, width, quad, {})
    if placed is None:  # cannot happen with the margins above; keep the record honest if it does
        raise RuntimeError("synthetic crop: the plate fell outside its frame")
    frame = degrade(frame, rng, s["realism"], sharpness=min(1.0, cap_px / float(c["sharp_char_px"])))
    box = jitter_box(placed.plate.box, jitter, rng)
    H, W = int(m["input_height"]), int(m["input_width"])
    cut_result = cut_plate(
        frame,
        placed.plate,
        H,
        W,
        pad_x,
        pad_y,
        int(m["letterbox_fill"]),
        box=box,
        min_visible=float(s["min_visible"]),
    )
    if cut_result is None:
        raise RuntimeError("synthetic crop: empty crop region")
    crop, chars = cut_result
    extra = {"style": style.name, "variant": placed.plate.extra["variant"]}
    hidden = len(placed.plate.text or "") - len(chars)
    if hidden:
        extra["hidden_chars"] = hidden
    plate = Plate(
        box=(0.0, 0.0, float(W), float(H)),
        text=placed.plate.text,
        chars=chars,
        lines=placed.plate.lines,
        extra=extra,
    )
    record = LabeledImage(
        image="",
        width=W,
        height=H,
        plates=[plate],
        region=style.region,
        extra={"synthetic": True, "style": style.name, "crop": True},
    )
    return crop, record


# -- one scene -------------------------------------------------------------------------------------


def _vehicle_reach(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Where a vehicle drawn around a plate can reach (see backgrounds.vehicle)."""
    x1, y1, x2, y2 = box
    w = x2 - x1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return (cx - 2.5 * w, cy - 3.0 * w, cx + 2.5 * w, cy + 2.0 * w)


def make_scene(ctx: Context, rng: np.random.Generator) -> tuple[np.ndarray, LabeledImage]:
    s, sc = ctx.settings, ctx.settings["scenes"]
    sizes = sc["sizes"]
    W, H = (int(v) for v in sizes[int(rng.integers(len(sizes)))])
    style = ctx.style(rng)
    frame = None
    if len(ctx.pool) and rng.random() < float(sc["real_background"]):
        frame = ctx.pool.sample(rng, W, H)
    if frame is None:
        frame = bgs.street(rng, W, H) if rng.random() < 0.7 else bgs.texture(rng, W, H)
    for _ in range(int(rng.integers(sc["distractors"][0], sc["distractors"][1] + 1))):
        dw = W * _loguniform(rng, (0.03, 0.25))
        dh = dw * uniform(rng, 0.25, 1.0)
        dx, dy = uniform(rng, 0, W - dw), uniform(rng, 0, H - dh)
        bgs.distractor(frame, rng, (dx, dy, dx + dw, dy + dh))
    n = int(rng.integers(sc["plates"][0], sc["plates"][1] + 1))
    widths = sorted(max(float(sc["min_plate_px"]), W * _loguniform(rng, sc["plate_width"])) for _ in range(n))
    aspect = style.size_mm[0] / style.size_mm[1]
    placed_plates: list[Placed] = []
    vehicles: list[tuple[float, float, float, float]] = []
    badge_fonts = available_fonts(bgs.TEXT_FONTS)
    for width in widths:  # far (small) plates first: nearer vehicles may hide their surroundings
        for _ in range(10):
            # nearer (bigger) plates sit lower in the frame, as on a road seen from a car or a pole
            centre = (
                uniform(rng, -0.1, 1.1) * W,
                float(np.clip(rng.normal(0.45 + 1.3 * width / W, 0.12), 0.1, 0.98)) * H,
            )
            quad = camera_quad(rng, width, aspect, centre, **_perspective(ctx))
            box = quad_box(quad)
            inside = (min(box[2], W) - max(box[0], 0)) * (min(box[3], H) - max(box[1], 0))
            if inside < 0.75 * (box[2] - box[0]) * (box[3] - box[1]):
                continue
            with_vehicle = rng.random() < float(sc["vehicle"])
            reach = _vehicle_reach(box) if with_vehicle else box
            # a nearer vehicle may hide a farther one's body, never its plate; a plate without a
            # vehicle stands clear of every vehicle (it would look stuck onto another car)
            if any(bgs.boxes_overlap(reach, p.plate.box, margin=2) for p in placed_plates):
                continue
            if not with_vehicle and any(bgs.boxes_overlap(box, v, margin=2) for v in vehicles):
                continue
            if with_vehicle:
                vehicles.append(bgs.vehicle(frame, rng, box, badge_fonts))
            placed = _place(
                frame,
                ctx,
                rng,
                style,
                width,
                quad,
                {"corners": [[round(float(v), 2) for v in pt] for pt in quad]},
            )
            if placed is not None:
                if placed.dropped:
                    placed.plate.extra["hidden_chars"] = placed.dropped
                placed_plates.append(placed)
            break
    frame = degrade(frame, rng, s["realism"])
    record = LabeledImage(
        image="",
        width=W,
        height=H,
        plates=[p.plate for p in placed_plates],
        region=style.region,
        extra={"synthetic": True, "style": style.name},
    )
    return frame, record


# -- the set ---------------------------------------------------------------------------------------

ImageMaker = Callable[[Any, np.random.Generator], tuple[np.ndarray, LabeledImage]]
"""Makes one image of a set and its record from the set's context and the image's own generator."""


@dataclass(frozen=True)
class _Job:
    """What a worker needs to make images of one set: its context (``seed``, ``out``, ``settings``),
    the maker, and the kind's index in the seed (so each kind of set draws its own images)."""

    ctx: Any
    make: ImageMaker
    kind_index: int


_JOB: _Job | None = None


def _make(i: int) -> LabeledImage:
    job = _JOB
    assert job is not None
    rng = np.random.default_rng([job.ctx.seed, job.kind_index, i])
    image, record = job.make(job.ctx, rng)
    name = f"images/{i:06d}.jpg"
    _write_jpeg(os.path.join(job.ctx.out, name), image, int(job.ctx.settings["jpeg_quality"]))
    record.image = name
    return record


def _write_jpeg(path: str, image: np.ndarray, quality: int) -> None:
    """``data.images.write_image`` for a folder known to exist: one encode and one write, without
    its mkdir (a failing syscall and an exception per image) and ``ndarray.tofile``'s buffering."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError(f"{path}: OpenCV could not encode the image")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        data = memoryview(buf)
        while data:  # one call in practice; a short write (full disk, signal) goes on
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _init_worker(job: _Job) -> None:
    global _JOB
    _JOB = job
    cv2.setNumThreads(1)
    # what exists now (modules, fonts, configs) lives as long as the process: keeping it out of the
    # garbage collector's full passes leaves them only the set's own records to walk
    gc.freeze()


def write_set(
    ctx: Any,
    make: ImageMaker,
    kind_index: int,
    n: int,
    start: int,
    desc: str,
    progress: bool = True,
    chunksize: int = 8,
) -> Path:
    """Images ``start`` .. ``start + n - 1`` of a set made by ``make`` written under ``ctx.out``
    (``ctx.settings['workers']`` processes; the same bytes for any number), then its manifest."""
    workers = max(1, int(ctx.settings.get("workers") or 1))
    records: list[LabeledImage] = []
    bar = tqdm(total=n, desc=desc, unit="img", disable=not progress)
    job = _Job(ctx, make, kind_index)
    if workers == 1 or n < 2 * workers:
        prev = cv2.getNumThreads()
        _init_worker(job)
        try:
            for i in range(start, start + n):
                records.append(_make(i))
                bar.update()
        finally:
            cv2.setNumThreads(prev)
            gc.unfreeze()  # this process goes on: what was frozen may become garbage later
    else:
        with mp.get_context("fork" if os.name == "posix" else "spawn").Pool(
            workers, _init_worker, (job,)
        ) as pool_:
            for rec in pool_.imap(_make, range(start, start + n), chunksize=chunksize):
                records.append(rec)
                bar.update()
    bar.close()
    return write_manifest(ctx.out, records)


def generate(
    kind: str, n: int, seed: int, out: Path, styles: list[str] | None = None, start: int = 0, **options: Any
) -> Path:
    """Write ``n`` synthetic images of ``kind`` ('crops' or 'scenes') and their manifest under ``out``:
    images ``start`` .. ``start + n - 1`` of the set ``seed`` makes (a set made in parts, on several
    machines, holds the same images as one run of the whole).

    ``options`` override ``synth`` of conf/data.yaml (nested dicts merge), e.g. ``workers=4`` or
    ``realism={"blur": {"p": 0}}``; ``model`` overrides the OCR input/padding (conf/model/plate_ocr.yaml);
    ``background_manifests=[...]`` replaces the real background sets ([] = procedural only);
    ``progress=False`` hides the progress bar. Returns the manifest path (out/labels.jsonl).
    """
    if kind not in KINDS:
        raise DataError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    if n < 0 or start < 0:
        raise DataError(f"n and start must be >= 0, got n={n}, start={start}")
    progress = bool(options.pop("progress", True))
    manifests = options.pop("background_manifests", None)
    settings = _deep_merge(default_settings(), options)
    if manifests is None:
        b = settings["backgrounds"]
        manifests = background_manifests(list(b["datasets"] or []), settings["paths"])
    b = settings["backgrounds"]
    pool = bgs.RealBackgrounds(
        [Path(p) for p in manifests],
        splits=b.get("splits"),
        margin=float(b["margin"]),
        pool=int(b["pool"]),
        seed=int(seed),
    )
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    ctx = Context(
        kind=kind, seed=int(seed), out=out, settings=settings, styles=load_styles(styles), pool=pool
    )
    make = make_crop if kind == "crops" else make_scene
    return write_set(ctx, make, KINDS[kind], n, start, f"synth {kind}", progress, chunksize=8)
