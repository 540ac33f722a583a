"""``python -m data action=synth kind=crops|scenes|video|swap|negatives n=N [start=K] seed=S out=DIR``

``styles=[eu,es]`` picks synthetic plate styles; kind=swap|negatives read conf/swap/ (``swap=heldout_us``).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from data.errors import DataError
from stage import runs


def action_synth(cfg: DictConfig) -> int:
    from data.synth.dataset import background_manifests, generate

    out = runs.output_dir(cfg)
    if cfg.kind == "video":
        return _video(cfg, Path(out))
    if cfg.kind in ("swap", "negatives"):
        return _swap(cfg, Path(out))
    options = OmegaConf.to_container(cfg.synth, resolve=True)
    assert isinstance(options, dict)
    options["model"] = OmegaConf.to_container(cfg.model, resolve=True)
    if cfg.model.task != "plate_ocr":
        raise DataError(
            f"action=synth cuts crops as the OCR model does: needs model=plate_ocr (got {cfg.model.name})"
        )
    paths = OmegaConf.to_container(cfg.paths, resolve=True)
    assert isinstance(paths, dict)
    manifests = background_manifests(list(cfg.synth.backgrounds.datasets or []), paths)
    styles = None
    if cfg.styles:
        styles = [str(s) for s in cfg.styles] if OmegaConf.is_list(cfg.styles) else [str(cfg.styles)]
    path = generate(
        str(cfg.kind),
        int(cfg.n),
        int(cfg.seed),
        Path(out),
        styles=styles,
        background_manifests=manifests,
        start=int(cfg.start),
        **options,
    )
    print(f"backgrounds: {', '.join(str(m) for m in manifests) or 'procedural only'}")
    print(f"manifest: {path}")
    return 0


def _swap(cfg: DictConfig, out: Path) -> int:
    from data.synth.swap import generate_swap

    options = OmegaConf.to_container(cfg.synth, resolve=True)
    swap = OmegaConf.to_container(cfg.swap, resolve=True)
    assert isinstance(options, dict) and isinstance(swap, dict)
    options["model"] = OmegaConf.to_container(cfg.model, resolve=True)
    options["paths"] = OmegaConf.to_container(cfg.paths, resolve=True)
    styles = None
    if cfg.styles:
        styles = [str(s) for s in cfg.styles] if OmegaConf.is_list(cfg.styles) else [str(cfg.styles)]
    path = generate_swap(
        str(cfg.kind),
        int(cfg.n),
        int(cfg.seed),
        out,
        swap=swap,
        styles=styles,
        start=int(cfg.start),
        **options,
    )
    print(f"swap role {swap['role']}: scenes {', '.join(str(e['dataset']) for e in swap['scenes'])}")
    print(f"manifest: {path}")
    return 0


def _video(cfg: DictConfig, out: Path) -> int:
    from data.synth.video import make_video

    options = OmegaConf.to_container(cfg.synth.video, resolve=True)
    assert isinstance(options, dict)
    options["duration"] = tuple(options["duration"])
    options["plate_width"] = tuple(options["plate_width"])
    styles = None
    if cfg.styles:
        styles = [str(s) for s in cfg.styles] if OmegaConf.is_list(cfg.styles) else [str(cfg.styles)]
    truth = make_video(out, frames=int(cfg.n), seed=int(cfg.seed), styles=styles, **options)
    print(f"video: {out / 'video.mp4'}")
    print(f"truth: {truth}")
    return 0


ACTIONS = {"synth": action_synth}
