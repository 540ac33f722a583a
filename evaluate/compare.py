"""Two or more report.json side by side: fp32 vs int8, SiLU vs ReLU6, ONNX vs DeGirum, ours vs baselines.

Baselines inside a report become columns of their own (``<run>/<baseline>``: OCR on GT crops, the
one-line pick of text spotting as end to end, speed; no detection)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluate.errors import EvaluateError
from evaluate.markdown import fmt, table

ROWS: list[tuple[str, str, str, bool]] = [
    # (section, key, label, show as percent)
    ("detection", "precision", "detection precision", True),
    ("detection", "recall", "detection recall", True),
    ("detection", "f1", "detection F1", True),
    ("detection", "ap50", "detection AP50", False),
    ("detection", "ap50_95", "detection AP50-95", False),
    ("detection", "fp_per_image", "false positives / image", False),
    ("ocr", "exact", "OCR exact (GT crops)", True),
    ("ocr", "cer", "OCR CER (lower is better)", True),
    ("ocr", "n", "OCR plates", False),
    ("end_to_end", "exact", "end-to-end read", True),
    ("end_to_end_any_line", "exact", "end-to-end any line (spotting upper bound)", True),
    ("end_to_end", "n", "end-to-end plates", False),
    ("end_to_end", "wrong_per_image", "wrong reads / image", False),
    ("speed", "det_ms_p50", "detector ms p50", False),
    ("speed", "ocr_ms_p50", "OCR ms p50", False),
    ("speed", "pipeline_ms_p50", "ms / image p50", False),
    ("speed", "pipeline_fps", "pipeline FPS", False),
    ("speed", "backend", "backend", False),
    ("speed", "precision", "precision", False),
    ("speed", "threads", "threads", False),
    ("speed", "peak_rss_mb", "peak RSS MB", False),
]

CHART = [
    ("detection", "ap50", "det AP50"),
    ("detection", "recall", "det recall"),
    ("ocr", "exact", "OCR exact"),
    ("ocr", "cer", "OCR CER"),
    ("end_to_end", "exact", "e2e read"),
]


def load_report(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no report.json")
    try:
        report = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvaluateError(f"{p}: not valid JSON: {e}") from None
    for key in ("detection", "ocr", "end_to_end", "speed"):
        if not isinstance(report.get(key), dict):
            raise EvaluateError(f"{p}: not an evaluation report (no '{key}' block)")
    report["_path"] = str(p)
    return report


def columns(reports: Sequence[dict], names: Sequence[str] | None = None) -> list[tuple[str, dict]]:
    """(column name, report-like dict) per run, then one per baseline that ran inside a run."""
    cols = []
    for i, r in enumerate(reports):
        name = names[i] if names and i < len(names) else Path(r["_path"]).parent.name
        cols.append((name, r))
        for b_name, b in (r.get("baselines") or {}).items():
            if b.get("ocr"):
                cols.append((f"{name}/{b_name}", baseline_column(b)))
    return cols


def baseline_column(b: dict) -> dict:
    """A baseline's block as a report-like column: its OCR, its one-line text spotting as end to
    end (and the any-line bound), its speed; no detection. Schema 1 reports held ``by_region``
    as {region: OCR block} and no end to end."""
    by_region = {}
    for reg, v in (b.get("by_region") or {}).items():
        by_region[reg] = {"ocr": v} if "exact" in (v or {}) else dict(v or {})
    e2e = b.get("end_to_end") or {}
    return {
        "ocr": b["ocr"],
        "detection": {},
        "end_to_end": e2e if e2e.get("n") else {},
        "end_to_end_any_line": b.get("end_to_end_any_line") or {},
        "speed": {k: v for k, v in (b.get("speed") or {}).items()},
        "by_region": by_region,
    }


def _settings_that_differ(runs: Sequence[tuple[str, dict]]) -> dict[str, dict[str, Any]]:
    """{setting: {run: value}} for the runtime pipeline settings (report.json ``predictor.pipeline``)
    that are not the same in every run that records them: a default that changed between versions
    shows here too."""
    recorded = {n: p for n, r in runs if (p := (r.get("predictor") or {}).get("pipeline")) is not None}
    keys = sorted({k for p in recorded.values() for k in p})
    return {
        k: {n: p.get(k) for n, p in recorded.items()}
        for k in keys
        if len({json.dumps(p.get(k), sort_keys=True) for p in recorded.values()}) > 1
    }


def compare_markdown(cols: Sequence[tuple[str, dict]], chart: str | None) -> str:
    out = ["# Comparison", ""]
    runs = [(n, r) for n, r in cols if "_path" in r]
    out += [
        table(
            ["run", "report", "dataset", "predictor", "models"],
            [
                [
                    n,
                    f"`{r['_path']}`",
                    f"`{(r.get('dataset') or {}).get('path', '-')}`",
                    fmt((r.get("predictor") or {}).get("name")),
                    ", ".join(
                        f"{k}: {fmt((m or {}).get('name'))} {str((m or {}).get('sha256') or '')[:8]}"
                        for k, m in (r.get("models") or {}).items()
                    )
                    or "-",
                ]
                for n, r in runs
            ],
        ),
        "",
    ]
    datasets = {(r.get("dataset") or {}).get("path") for _, r in runs}
    if len(datasets) > 1:
        out += [
            "**Note:** these reports are on different datasets; their numbers are not directly comparable.",
            "",
        ]
    differ = _settings_that_differ(runs)
    if differ:
        out += [
            "**Note:** the runs' pipeline settings differ: "
            + "; ".join(
                f"`{k}` " + ", ".join(f"{n} {v}" for n, v in by_run.items()) for k, by_run in differ.items()
            )
            + ".",
            "",
        ]
    rows = [
        [label] + [fmt(r.get(section, {}).get(key), pct) for _, r in cols]
        for section, key, label, pct in ROWS
    ]
    regions = sorted({reg for _, r in cols for reg in (r.get("by_region") or {})})
    for reg in regions:
        for section, label in (("ocr", "OCR exact"), ("end_to_end", "e2e read")):
            vals = [((r.get("by_region") or {}).get(reg) or {}).get(section) or {} for _, r in cols]
            if any(v.get("exact") is not None for v in vals):
                rows.append([f"{label} [{reg}]"] + [fmt(v.get("exact"), True) for v in vals])
    out += [table(["metric"] + [n for n, _ in cols], rows), ""]
    if chart:
        out += [f"![comparison]({chart})", ""]
    return "\n".join(out)


def compare_chart(cols: Sequence[tuple[str, dict]], path: Path) -> Path:
    from evaluate.plots import _plt

    plt = _plt()
    legend_rows = (len(cols) + 3) // 4
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(11, 4.4 + 0.25 * legend_rows), gridspec_kw={"width_ratios": [3, 1]}
    )
    width = 0.8 / max(1, len(cols))
    x = np.arange(len(CHART))
    for i, (name, r) in enumerate(cols):
        vals = [r.get(s, {}).get(k) for s, k, _ in CHART]
        bars = ax.bar(
            x + i * width - 0.4 + width / 2, [np.nan if v is None else v for v in vals], width, label=name
        )
        for b, v in zip(bars, vals, strict=False):
            if v is not None:
                ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [label for _, _, label in CHART])
    ax.set_ylim(0, 1.1)
    ax.set_title("Accuracy (CER: lower is better)", fontsize=10)
    ax.legend(
        fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(4, len(cols)), frameon=False
    )
    ax.grid(axis="y", alpha=0.3)
    fps = [(n, r.get("speed", {}).get("pipeline_fps")) for n, r in cols]
    fps = [(n, v) for n, v in fps if v is not None]
    if fps:
        ax2.barh([n for n, _ in fps], [v for _, v in fps], color="tab:orange")
        for yi, (_, v) in enumerate(fps):
            ax2.text(v, yi, f" {v:.1f}", va="center", fontsize=8)
        ax2.invert_yaxis()
    else:
        ax2.text(0.5, 0.5, "no timings", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_title("Pipeline FPS", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def compare_reports(
    paths: Sequence[str | Path], out: str | Path, names: Sequence[str] | None = None
) -> dict[str, Path]:
    if len(paths) < 2:
        raise EvaluateError("compare needs two or more reports: reports=[a/report.json,b/report.json]")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cols = columns([load_report(p) for p in paths], names)
    chart = compare_chart(cols, out / "compare.png")
    md = out / "compare.md"
    md.write_text(compare_markdown(cols, chart.name), encoding="utf-8")
    summary = {
        n: {
            sec: {key: r.get(sec, {}).get(key) for row_sec, key, _label, _pct in ROWS if row_sec == sec}
            for sec in ("detection", "ocr", "end_to_end", "end_to_end_any_line", "speed")
        }
        for n, r in cols
    }
    js = out / "compare.json"
    js.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return {"md": md, "png": chart, "json": js}
