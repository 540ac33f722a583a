"""python -m data action=<import|validate|stats|split|compact|yolo|show|synth> [key=value ...]

See conf/data.yaml for every option. Exit codes: 0 ok, 1 the data has problems (validate), 2 the
command could not run (missing input, bad option).
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

import stage.config  # noqa: F401  (registers the ${lpr.root:} resolver before Hydra composes)
from stage import runs
from stage.errors import UsageError
from stage.main import run_action, stage_main

log = logging.getLogger("data")


def _src(cfg: DictConfig) -> Path:
    if not cfg.src:
        raise UsageError("no input: give src=PATH (a dataset folder or labels.jsonl) or dataset=NAME")
    return Path(cfg.src)


def _srcs(cfg: DictConfig) -> list[Path]:
    """src may be one path or a list (yolo export mixes several manifests)."""
    if not cfg.src:
        raise UsageError("no input: give src=PATH or src=[PATH,PATH] or dataset=NAME")
    return [Path(p) for p in cfg.src] if OmegaConf.is_list(cfg.src) else [Path(cfg.src)]


def _report_issues(issues, limit: int = 20) -> None:
    for issue in issues[:limit]:
        print(f"  {issue}")
    if len(issues) > limit:
        print(f"  ... and {len(issues) - limit} more (all in issues.txt)")


def summarize_kinds(issues) -> str:
    from collections import Counter

    return ", ".join(f"{n} {kind}" for kind, n in Counter(i.kind for i in issues).most_common())


def _write_issues(out: Path, issues) -> None:
    if issues:
        (out / "issues.txt").write_text("\n".join(str(i) for i in issues) + "\n")


def _note_outside_images(cfg: DictConfig, manifest_path: Path) -> None:
    """A written manifest whose images stay outside its folder and the data roots cannot be read
    back without them (paths are contained): say which folder to add."""
    from data.manifest import access_options, read_manifest

    access = access_options(cfg)
    if access.get("allow_outside"):
        return
    back = read_manifest(manifest_path, **access)
    outside = [i for i in back.issues if i.kind == "path_outside_root"]
    if outside:
        first = outside[0].message.split(" resolves to ")[-1].split(", outside")[0]
        print(
            f"note: {len(outside)} images stay outside {manifest_path.parent} and the data roots "
            f"(e.g. {first}); to read this manifest, add their folder: paths.data_roots=[...,FOLDER]"
        )


def _finish(out: Path, result, label: str, path: Path) -> int:
    """An import or export's issues (issues.txt and a few on screen), its summary and its output."""
    _write_issues(out, result.issues)
    print(result.summary())
    _report_issues(result.issues)
    print(f"{label}: {path}")
    return 0


def action_import(cfg: DictConfig) -> int:
    from data.importers import import_dataset
    from data.manifest import write_manifest

    out = runs.output_dir(cfg)
    result = import_dataset(cfg.format, _src(cfg), out, cfg.region)
    code = _finish(out, result, "manifest", path := write_manifest(out, result.images))
    _note_outside_images(cfg, path)
    return code


def action_validate(cfg: DictConfig) -> int:
    from data.manifest import access_options, read_manifest
    from data.validate import summarize, validate

    manifest = read_manifest(_src(cfg), **access_options(cfg))
    issues = validate(manifest, check_images=cfg.validate.check_images, tol=cfg.validate.box_tolerance_px)
    print(
        f"{manifest.path}: {len(manifest.images)} images, {sum(len(i.plates) for i in manifest.images)} "
        "plates: "
        f"{summarize(issues)}"
    )
    _report_issues(issues)
    if issues and cfg.out:
        _write_issues(runs.output_dir(cfg), issues)
    return 1 if issues else 0


def action_stats(cfg: DictConfig) -> int:
    from data.manifest import access_options, read_manifest
    from data.stats import write_stats

    manifest = read_manifest(_src(cfg), **access_options(cfg))
    out = runs.output_dir(cfg)
    _, table = write_stats(manifest, out, list(cfg.stats.width_buckets))
    print(table)
    print(f"\nstats: {out / 'stats.txt'}, {out / 'stats.json'}, plot: {out / 'stats.png'}")
    return 0


def action_split(cfg: DictConfig) -> int:
    from data.manifest import access_options, read_manifest, rebase, write_manifest
    from data.split import assign_splits
    from data.validate import drop_duplicates

    manifest = read_manifest(_src(cfg), **access_options(cfg))
    out = runs.output_dir(cfg)
    skipped = manifest.issues + drop_duplicates(manifest)
    # a known dataset's own split (conf/dataset/<name>.yaml `split`, e.g. pl_parking's halves) wins
    split = cfg.dataset.split if cfg.get("dataset") and cfg.dataset.get("split") else cfg.split
    counts = assign_splits(
        manifest.images,
        dict(split.ratios),
        key=split.get("key", cfg.split.key),
        seed=split.get("seed", cfg.seed),
        keep_existing=cfg.split.keep_existing,
    )
    path = write_manifest(out, rebase(manifest, out))
    print("images per split: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str)))
    if skipped:  # every line that did not make it into the split manifest, with why
        _write_issues(out, skipped)
        print(f"skipped {len(skipped)} lines ({summarize_kinds(skipped)}); all in {out / 'issues.txt'}")
        _report_issues(skipped)
    print(f"manifest: {path}")
    _note_outside_images(cfg, path)
    return 0


def action_compact(cfg: DictConfig) -> int:
    from data.compact import write_compact
    from data.manifest import access_options, read_manifest

    manifest = read_manifest(_src(cfg), **access_options(cfg))
    out = runs.output_dir(cfg)
    splits = list(cfg.compact.splits) if cfg.compact.splits else None
    result, path = write_compact(
        manifest, out, max_side=int(cfg.compact.max_side), quality=int(cfg.compact.quality), splits=splits
    )
    return _finish(out, result, "manifest", path)


def action_yolo(cfg: DictConfig) -> int:
    from data.exporters import export_det, export_ocr
    from data.manifest import access_options, read_manifest
    from data.validate import drop_duplicates

    manifests = [read_manifest(p, **access_options(cfg)) for p in _srcs(cfg)]
    out = runs.output_dir(cfg)
    # Lines not exported: malformed, outside the data roots, or naming an image twice (its files
    # would be written twice under one name).
    skipped = [issue for m in manifests for issue in m.issues + drop_duplicates(m)]
    y = cfg.yolo
    if y.kind == "det":
        result = export_det(manifests, out, splits=list(y.splits), image_size=y.image_size)
    elif y.kind == "ocr":
        m = cfg.model
        if m.task != "plate_ocr":
            raise UsageError(f"yolo.kind=ocr needs model=plate_ocr (got model={m.name})")
        result = export_ocr(
            manifests,
            out,
            names=list(m.names),
            input_height=m.input_height,
            input_width=m.input_width,
            pad_x=m.crop.pad_x,
            pad_y=m.crop.pad_y,
            fill=m.letterbox_fill,
            splits=list(y.splits),
            jitter=y.jitter,
            copies=y.copies,
            seed=cfg.seed,
        )
    else:
        raise UsageError(f"yolo.kind must be det or ocr, got {y.kind!r}")
    for issue in skipped:
        result.skipped[f"manifest line ({issue.kind})"] += 1
    result.issues[:0] = skipped
    return _finish(out, result, "data.yaml", result.data_yaml)


def action_show(cfg: DictConfig) -> int:
    from data.manifest import access_options, read_manifest
    from data.show import contact_sheet

    manifest = read_manifest(_src(cfg), **access_options(cfg))
    out = runs.output_dir(cfg)
    s = cfg.show
    path, problems = contact_sheet(
        manifest,
        out / "contact_sheet.png",
        n=s.n,
        columns=s.columns,
        tile=s.tile,
        chars=s.chars,
        split=s.split,
        seed=cfg.seed,
    )
    for p in problems:
        print(f"  unreadable: {p}")
    print(f"contact sheet: {path}")
    return 0


ACTIONS = {
    "import": action_import,
    "validate": action_validate,
    "stats": action_stats,
    "split": action_split,
    "compact": action_compact,
    "yolo": action_yolo,
    "show": action_show,
}


def run(cfg: DictConfig) -> int:
    from data.synth.cli import ACTIONS as synth_actions  # the synthetic engine's action (synth)

    return run_action({**ACTIONS, **synth_actions}, cfg)


@hydra.main(version_base="1.3", config_path="../conf", config_name="data")
def main(cfg: DictConfig) -> None:
    stage_main(run, cfg)


if __name__ == "__main__":
    main()
