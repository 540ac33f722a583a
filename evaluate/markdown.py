"""report.md: the report's numbers as tables a person reads, with the pictures beside them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if pct:
            return f"{100 * v:.1f}%"
        return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    return str(v)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _picture(pictures: dict[str, str], key: str, alt: str) -> list[str]:
    return [f"![{alt}]({pictures[key]})", ""] if key in pictures else []


def report_markdown(r: dict, pictures: dict[str, str]) -> str:
    ds, det, ocr, e2e, sp = r["dataset"], r["detection"], r["ocr"], r["end_to_end"], r["speed"]
    pred = r.get("predictor", {})
    out = [f"# Evaluation: {r.get('name') or 'predictor'} on {ds.get('name') or ds['path']}", ""]
    out += [f"Created {r['created']}. Command: `{r.get('command', '')}`", ""]

    out += ["## What was measured", ""]
    rows = [
        ["predictor", fmt(pred.get("name"))],
        ["backend", fmt(pred.get("backend"))],
        ["precision", fmt(pred.get("precision"))],
        ["threads", fmt(pred.get("threads"))],
    ]
    if pred.get("region"):
        rows.append(["region rules", fmt(pred["region"])])
    if pred.get("replayed_from"):
        rows.append(["replayed from", f"`{pred['replayed_from']}`"])
    for role, m in (r.get("models") or {}).items():
        m = m or {}
        rows.append(
            [
                f"model: {role}",
                f"{fmt(m.get('name'))} `{fmt(m.get('path'))}` sha256 {str(m.get('sha256') or '-')[:12]}",
            ]
        )
    rows += [
        ["dataset", f"`{ds['path']}`"],
        [
            "images",
            f"{ds['images']} ({ds['scene_images']} scenes, {ds['crop_images']} plate crops), "
            f"{ds['evaluated_images']} evaluated",
        ],
        [
            "plates",
            f"{ds['plates']} ({ds['plates_with_text']} with a text, {ds['partial_labels']} of them partial)",
        ],
        ["regions", ", ".join(f"{k}: {v}" for k, v in ds["regions"].items())],
    ]
    cfg = r.get("config", {})
    rows += [
        [
            "operating threshold",
            "every plate returned"
            if cfg.get("operating_conf") is None
            else f"det_score >= {cfg['operating_conf']}",
        ],
        ["equivalences", ", ".join(cfg.get("equivalences") or []) or "none"],
    ]
    out += [table(["", ""], rows), ""]

    problems = {k: v for k, v in ds["problems"].items() if v}
    if problems:
        out += [
            "**Data problems** (all listed in `issues.txt`): "
            + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in problems.items()),
            "",
        ]
        out += ["```"] + ds["issues"][:15] + (["..."] if len(ds["issues"]) > 15 else []) + ["```", ""]

    out += ["## Detection", ""]
    if det.get("ap50") is None and det.get("precision") is None:
        out += ["Not run (a crop dataset has no scenes to detect plates in).", ""]
    else:
        out += [
            table(
                ["precision", "recall", "F1", "AP50", "AP50-95", "FP / image", "TP", "FP", "FN"],
                [
                    [
                        fmt(det["precision"], True),
                        fmt(det["recall"], True),
                        fmt(det["f1"], True),
                        fmt(det["ap50"]),
                        fmt(det["ap50_95"]),
                        fmt(det["fp_per_image"]),
                        det["tp"],
                        det["fp"],
                        det["fn"],
                    ]
                ],
            ),
            "",
        ]
        out += _picture(pictures, "pr_curve", "precision-recall curve")

    out += [
        "## OCR on ground-truth crops",
        "",
        "The OCR model reads each labelled plate cut from its labelled box (the detector is not involved).",
        "",
    ]
    out += [
        table(
            ["exact", "CER", "plates", "characters"],
            [[fmt(ocr["exact"], True), fmt(ocr["cer"], True), ocr["n"], ocr["chars"]]],
        ),
        "",
    ]
    if ocr.get("by_lines"):
        out += [
            "By line count:",
            "",
            table(
                ["lines", "exact", "CER", "plates"],
                [[k, fmt(v["exact"], True), fmt(v["cer"], True), v["n"]] for k, v in ocr["by_lines"].items()],
            ),
            "",
        ]
    if ocr.get("confusions"):
        out += [
            "Most frequent character errors (∅: missed or extra character):",
            "",
            table(
                ["label", "read", "count"],
                [[c["truth"] or "∅", c["read"] or "∅", c["count"]] for c in ocr["confusions"][:12]],
            ),
            "",
        ]
    out += _picture(pictures, "confusion", "character confusion matrix")
    out += _picture(pictures, "failures_ocr", "worst OCR failures")

    out += [
        "## End to end",
        "",
        "A labelled plate is read when a prediction overlaps it (IoU >= 0.5, one to one) and its text "
        "equals the label.",
        "",
    ]
    if not e2e["images"]:
        out += ["Not run (no scene images).", ""]
    else:
        out += [
            table(
                ["read (exact)", "plates", "misread", "no text", "missed", "wrong reads / image"],
                [
                    [
                        fmt(e2e["exact"], True),
                        e2e["n"],
                        e2e["misread"],
                        e2e["no_text"],
                        e2e["missed"],
                        fmt(e2e["wrong_per_image"]),
                    ]
                ],
            ),
            "",
        ]
        out += _picture(pictures, "failures_end_to_end", "end-to-end failures")

    out += ["## By region", ""]
    out += [
        table(
            [
                "region",
                "det P",
                "det R",
                "AP50",
                "OCR exact",
                "OCR CER",
                "OCR n",
                "e2e exact",
                "e2e n",
                "wrong / image",
            ],
            [
                [
                    reg,
                    fmt((b["detection"] or {}).get("precision"), True),
                    fmt((b["detection"] or {}).get("recall"), True),
                    fmt((b["detection"] or {}).get("ap50")),
                    fmt(b["ocr"]["exact"], True),
                    fmt(b["ocr"]["cer"], True),
                    b["ocr"]["n"],
                    fmt(b["end_to_end"]["exact"], True),
                    b["end_to_end"]["n"],
                    fmt(b["end_to_end"]["wrong_per_image"]),
                ]
                for reg, b in r["by_region"].items()
            ],
        ),
        "",
    ]
    out += ["## By plate width (pixels)", ""]
    out += [
        table(
            ["width", "plates", "det recall", "OCR exact", "OCR CER", "OCR n", "e2e exact", "e2e n"],
            [
                [
                    k,
                    b["plates"],
                    fmt(b["detection"]["recall"], True),
                    fmt(b["ocr"]["exact"], True),
                    fmt(b["ocr"]["cer"], True),
                    b["ocr"]["n"],
                    fmt(b["end_to_end"]["exact"], True),
                    b["end_to_end"]["n"],
                ]
                for k, b in r["by_size"].items()
            ],
        ),
        "",
    ]

    out += ["## Speed", ""]
    stages = [k[: -len("_ms_p50")] for k in sp if k.endswith("_ms_p50") and sp[k] is not None]
    if stages:
        out += [
            table(
                ["stage", "p50 ms", "p90 ms", "calls"],
                [
                    [
                        s,
                        fmt(sp[f"{s}_ms_p50"]),
                        fmt(sp[f"{s}_ms_p90"]),
                        sp.get(f"{s}_calls", sp.get("images_timed")),
                    ]
                    for s in stages
                ],
            ),
            "",
        ]
    out += [
        table(
            ["pipeline FPS", "backend", "precision", "threads", "peak RSS MB"],
            [
                [
                    fmt(sp["pipeline_fps"]),
                    fmt(sp["backend"]),
                    fmt(sp["precision"]),
                    fmt(sp["threads"]),
                    fmt(sp["peak_rss_mb"]),
                ]
            ],
        ),
        "",
    ]
    out += [
        "`pipeline` is one image through detector, crops and OCR; `crop_*` stages time the OCR of "
        "ground-truth crops. Peak RSS is the evaluating process's (the predictor's when replayed).",
        "",
    ]
    out += _picture(pictures, "speed", "time by stage")

    if r.get("baselines"):
        out += ["## Baselines on the same ground-truth crops", ""]
        rows = [["ours", fmt(ocr["exact"], True), fmt(ocr["cer"], True), ocr["n"], ""]]
        for name, b in r["baselines"].items():
            if b["ocr"] is None:
                rows.append([name, "-", "-", "-", f"skipped: {b['describe'].get('skipped')}"])
            else:
                rows.append(
                    [
                        name,
                        fmt(b["ocr"]["exact"], True),
                        fmt(b["ocr"]["cer"], True),
                        b["ocr"]["n"],
                        fmt(b["describe"].get("version")),
                    ]
                )
        out += [table(["reader", "exact", "CER", "plates", "note"], rows), ""]
    return "\n".join(out)
