"""python -m evaluate dataset=NAME|PATH [adapter=...] [key=value ...] | action=compare reports=[A,B]

See conf/evaluate.yaml for every option. Exit codes: 0 ok, 2 the command could not run (missing
input, bad option, a predictor that fails on every image).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

import stage.config  # noqa: F401  (registers the ${lpr.root:} resolver before Hydra composes)
from evaluate.errors import EvaluateError
from evaluate.spotting import PickRules
from stage import runs
from stage.errors import UsageError
from stage.main import run_action, stage_main


def _out(cfg: DictConfig) -> Path:
    out = Path(cfg.report_dir) if cfg.get("report_dir") else runs.run_dir()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _plain(value):
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def evaluate(cfg: DictConfig) -> dict:
    """Run the evaluation the config describes; returns {what: path} of the files written."""
    from data.manifest import access_options, read_manifest
    from evaluate.adapters import make_pipeline
    from evaluate.baselines import BaselineUnavailable, load_baselines
    from evaluate.report import build_report, write_report
    from evaluate.runner import run_dataset
    from evaluate.text import TextRules, equivalences_from

    # baselines first: a missing engine or a bad gallery.versus stops the run before any work
    gallery_size, versus = _gallery(cfg)
    asked = [str(b) for b in cfg.baselines or []]
    unknown = [v for v in versus if v not in asked]
    if unknown and not cfg.replay:  # a replayed run brings its recorded baselines: checked when written
        raise UsageError(
            f"gallery.versus={','.join(unknown)} is not among baselines=[{','.join(asked)}]; "
            f"add it there, e.g. baselines=[{','.join(asked + unknown)}]"
        )
    try:
        baselines, skipped = load_baselines(
            asked, _plain(cfg.baseline_options), missing=cfg.get("baseline_missing", "skip")
        )
    except BaselineUnavailable as e:
        raise UsageError(str(e)) from None
    for name, why in skipped.items():
        print(f"baseline {name} skipped: {why}", file=sys.stderr)
    manifest = read_manifest(cfg.src or _sample_set(cfg), **access_options(cfg))
    if cfg.splits:  # held-out evaluation: only these splits of the manifest (data action=split writes them)
        wanted = {str(s) for s in cfg.splits}
        kept = [im for im in manifest.images if im.split in wanted]
        if not kept:
            found = sorted({str(im.split) for im in manifest.images})
            raise EvaluateError(
                f"{manifest.path}: no image in splits {sorted(wanted)} (the manifest has {found})"
            )
        manifest.images = kept
    from data.validate import drop_duplicates, label_issues

    # A line naming an image twice would be scored twice (skipped and counted); labels outside the
    # image or outside the alphabet (lowercase texts) are scored as they are, and reported.
    manifest.issues += drop_duplicates(manifest) + label_issues(manifest)
    rules = TextRules(
        equivalences=equivalences_from(_plain(cfg.text.equivalences)),
        partial_key=cfg.text.partial_key,
        masked=cfg.text.masked,
    )
    kind = "replay" if cfg.replay and cfg.adapter == "runtime" else cfg.adapter
    runtime_options = {
        k: cfg[k]
        for k in (
            "det_model",
            "ocr_model",
            "zoo",
            "backend",
            "precision",
            "threads",
            "det_conf",
            "region",
            "verify_models",
        )
    }
    runtime_options.update(_plain(cfg.get("pipeline")) or {})
    pipeline = make_pipeline(kind, replay=cfg.replay, manifest=manifest, rules=rules, runtime=runtime_options)
    run = run_dataset(
        manifest,
        pipeline,
        rules,
        baselines,
        skipped,
        end_to_end=cfg.end_to_end,
        limit=cfg.limit,
        check_unlabelled=cfg.check_unlabelled and not cfg.splits,
    )  # filtered-out images are not unlabelled
    dataset_name = cfg.dataset.name if cfg.get("dataset") and cfg.dataset.get("name") else manifest.root.name
    scored = build_report(
        run,
        rules,
        operating_conf=cfg.match.operating_conf,
        iou_threshold=cfg.match.iou,
        size_buckets=list(cfg.size_buckets),
        input_size_buckets=list(cfg.input_size_buckets),
        dataset_name=dataset_name,
        confusion_top=cfg.confusion_top,
        spotting=_pick_rules(cfg),
    )
    files = write_report(run, scored, _out(cfg), gallery=gallery_size, versus=versus)
    _print_summary(scored.report, files)
    return files


def _gallery(cfg: DictConfig) -> tuple[int, list[str]]:
    """(tiles per gallery, baselines to draw a versus gallery for) from ``gallery: {size, versus}``;
    ``gallery=N`` (a number) is the size alone."""
    g = _plain(cfg.gallery)
    if isinstance(g, dict):
        size, versus = g.get("size", 24), g.get("versus")
    else:
        size, versus = g, None
    if isinstance(versus, str):
        versus = [versus]
    try:
        size = int(size or 0)
    except (TypeError, ValueError):
        raise UsageError(f"gallery.size must be a number of tiles, got {size!r}") from None
    return size, [str(v) for v in versus or []]


def _pick_rules(cfg: DictConfig) -> PickRules:
    try:
        return PickRules(**_plain(cfg.spotting))
    except TypeError:
        known = ", ".join(PickRules.__dataclass_fields__)
        raise UsageError(f"spotting holds {dict(_plain(cfg.spotting))}; its keys are {known}") from None


def _sample_set(cfg: DictConfig) -> Path:
    """No dataset given: a sample set the project makes itself (synthetic scenes, fixed seed), so
    `python -m evaluate` works out of the box. Real data gives the numbers that matter."""
    from data.synth import generate

    s = cfg.sample
    out = _out(cfg) / "sample_set"
    print(
        f"no dataset given: evaluating on {s.n} synthetic {s.kind} (seed {s.seed}) in {out}; "
        "give dataset=NAME|PATH for real numbers"
    )
    return generate(s.kind, n=int(s.n), seed=int(s.seed), out=out, background_manifests=[], progress=False)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _print_summary(r: dict, files: dict) -> None:
    det, ocr, e2e, sp, ds = r["detection"], r["ocr"], r["end_to_end"], r["speed"], r["dataset"]
    print(f"{ds['name']}: {ds['evaluated_images']}/{ds['images']} images evaluated, {ds['plates']} plates")
    problems = {k: v for k, v in ds["problems"].items() if v}
    if problems:
        print("  data problems: " + ", ".join(f"{k}: {v}" for k, v in problems.items()) + " (issues.txt)")
    if det.get("recall") is not None:
        print(
            f"  detection: P {_pct(det['precision'])} R {_pct(det['recall'])} AP50 {det['ap50']:.3f} "
            f"AP50-95 {det['ap50_95']:.3f} FP/image {det['fp_per_image']:.3f}"
            + (
                f" ({det['fp_plate_like']} of {det['fp']} false positives read as a plate of the region)"
                if det.get("fp_plate_like")
                else ""
            )
        )
    elif det.get("fp_per_image") is not None:  # a set of hard negatives: every detection is a false one
        print(
            f"  detection: no labelled plate; false positives {det['fp']}, FP/image {det['fp_per_image']:.3f}"
        )
    print(f"  OCR (GT crops): exact {_pct(ocr['exact'])} CER {_pct(ocr['cer'])} n={ocr['n']}")
    if e2e["images"]:
        print(f"  end to end: read {_pct(e2e['exact'])} n={e2e['n']} wrong/image {e2e['wrong_per_image']}")
    if sp.get("pipeline_fps"):
        print(
            f"  speed: {sp['pipeline_fps']} FPS, det p50 {sp['det_ms_p50']} ms, OCR p50 {sp['ocr_ms_p50']} "
            "ms "
            f"({sp['backend']}, {sp['precision']}, {sp['threads']} threads)"
        )
    for name, b in r.get("baselines", {}).items():
        if b["ocr"]:
            ocr_b = b["ocr"]
            line = (
                f"  baseline {name}: OCR (GT crops) exact {_pct(ocr_b['exact'])} "
                f"CER {_pct(ocr_b['cer'])} n={ocr_b['n']}"
            )
            if b["end_to_end"]["n"]:
                line += (
                    f"; end to end one line {_pct(b['end_to_end']['exact'])}, "
                    f"any line {_pct(b['end_to_end_any_line']['exact'])} n={b['end_to_end']['n']}"
                )
            print(line)
    print(f"report: {files['md']}\njson:   {files['json']}\npredictions: {files['predictions']}")


def compare(cfg: DictConfig) -> dict:
    from evaluate.compare import compare_reports

    reports = list(cfg.reports or [])
    if len(reports) < 2:
        raise UsageError("action=compare needs reports=[A/report.json,B/report.json] (two or more)")
    files = compare_reports(reports, _out(cfg), names=list(cfg.names) if cfg.names else None)
    print(f"comparison: {files['md']}\nchart: {files['png']}")
    return files


ACTIONS = {"evaluate": evaluate, "compare": compare}


def run(cfg: DictConfig) -> dict:
    return run_action(ACTIONS, cfg)


def route_dataset_path(argv: list[str]) -> list[str]:
    """``dataset=PATH`` (a manifest or a folder holding one) means ``src=PATH``: ``dataset`` is
    otherwise Hydra's group of known datasets (conf/dataset/), whose options are plain names."""
    out = []
    for arg in argv:
        if arg.startswith("dataset="):
            value = arg.split("=", 1)[1]
            if "/" in value or value.endswith(".jsonl") or Path(value).exists():
                arg = f"src={value}"
        out.append(arg)
    return out


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    # RuntimeError: a predictor that cannot run (no models, a backend that fails on every image).
    stage_main(run, cfg)


if __name__ == "__main__":
    sys.argv = [sys.argv[0]] + route_dataset_path(sys.argv[1:])
    main()
