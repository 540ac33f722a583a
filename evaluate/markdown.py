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


def ran_baselines(r: dict) -> list[tuple[str, dict]]:
    """(name, block) of every baseline that ran (skipped ones have no numbers)."""
    return [(n, b) for n, b in (r.get("baselines") or {}).items() if b.get("ocr") is not None]


def spotters(r: dict) -> list[tuple[str, dict]]:
    """Baselines that were scored end to end (text spotting on whole images)."""
    return [(n, b) for n, b in ran_baselines(r) if ((b.get("end_to_end") or {}).get("n") or 0) > 0]


def _ms(block: dict | None, key: str) -> str:
    return fmt((block or {}).get(key))


def _spot_rows(name: str, b: dict) -> list[list[str]]:
    """The e2e table's rows of one spotting baseline: the one-line pick, the pick without the
    labelled box, and the any-line upper bound."""
    e, blind, any_line = b["end_to_end"], b.get("end_to_end_blind") or {}, b.get("end_to_end_any_line") or {}
    ms = _ms(b.get("speed"), "pipeline_ms_p50")
    return [
        [
            f"{name}: one line",
            fmt(e["exact"], True),
            fmt(e.get("cer"), True),
            e["n"],
            e["misread"],
            "-",
            e["missed"],
            "-",
            ms,
        ],
        [
            f"{name}: one line, no label box",
            fmt(blind.get("exact"), True),
            "-",
            blind.get("n"),
            "-",
            "-",
            "-",
            "-",
            ms,
        ],
        [
            f"{name}: any line (upper bound)",
            fmt(any_line.get("exact"), True),
            "-",
            any_line.get("n"),
            "-",
            "-",
            "-",
            "-",
            ms,
        ],
    ]


_LOOKS = (("zoom_out", "zoomed-out look (large plates)"), ("second_look", "second look (hard plates)"))
"""The pipeline's optional passes, as the report names them (runtime.config.PipelineConfig)."""


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
    if "pipeline" in pred:
        settings = pred["pipeline"]
        looks = [name for key, name in _LOOKS if settings.get(key)]
        rows.append(["extra passes", ", ".join(looks) or "none"])
        changed = pred.get("pipeline_changed") or {}
        rows.append(
            [
                "pipeline settings not the defaults",
                ", ".join(f"`{k}={v}`" for k, v in changed.items()) or "none",
            ]
        )
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
        if "false_positives" in pictures:
            like = det.get("fp_plate_like")
            out += [
                "False positives, the most confident first. A set that labels one plate per photo "
                "counts the plates of other cars here too: the gallery tells them apart."
                + (
                    f" {like} of the {det['fp']} read as a whole plate of their image's region"
                    " (a format of its region file fits the text): most likely plates the labels"
                    " leave out."
                    if like
                    else ""
                ),
                "",
            ]
            out += _picture(pictures, "false_positives", "false positives")

    out += [
        "## OCR on ground-truth crops",
        "",
        "The OCR model reads each labelled plate cut from its labelled box (the detector is not involved).",
        "",
    ]
    peers = ran_baselines(r)
    if peers:
        out += [
            "Baselines read the same crops (each engine's own recogniser on the whole crop).",
            "",
        ]
    ocr_rows = [
        [
            "ours",
            fmt(ocr["exact"], True),
            fmt(ocr["cer"], True),
            ocr["n"],
            ocr["chars"],
            _ms(sp, "crop_ocr_ms_p50"),
        ]
    ]
    ocr_rows += [
        [
            n,
            fmt(b["ocr"]["exact"], True),
            fmt(b["ocr"]["cer"], True),
            b["ocr"]["n"],
            b["ocr"]["chars"],
            _ms(b.get("speed"), "ocr_ms_p50"),
        ]
        for n, b in peers
    ]
    out += [table(["reader", "exact", "CER", "plates", "characters", "ms / plate p50"], ocr_rows), ""]
    if ocr.get("by_lines"):
        line_rows = []
        for k, v in ocr["by_lines"].items():
            line_rows.append([k, "ours", fmt(v["exact"], True), fmt(v["cer"], True), v["n"]])
            for n, b in peers:
                bv = (b.get("by_lines") or {}).get(k) or {}
                line_rows.append(
                    [k, n, fmt(bv.get("exact"), True), fmt(bv.get("cer"), True), bv.get("n", "-")]
                )
        out += ["By line count:", "", table(["lines", "reader", "exact", "CER", "plates"], line_rows), ""]
    if ocr.get("region_rules"):
        rr = ocr["region_rules"]
        out += [
            f"Region rules changed {rr['changed']} of {rr['plates']} readings: {rr['wrong_to_right']} wrong "
            f"ones made right, {rr['right_to_wrong']} exact ones made wrong. Matched: "
            + ", ".join(f"{k} {v}" for k, v in rr["matched"].items())
            + ".",
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
    spotting = spotters(r)
    if not e2e["images"]:
        out += ["Not run (no scene images).", ""]
    else:
        if spotting:
            out += [
                "Text-spotting baselines read the whole image and return every text line they find. "
                "*one line*: the line overlapping the labelled plate (the most plate-like of them), "
                "else the image's most plate-like line (4-8 characters, letters and digits); "
                "*no label box*: the most plate-like line of the image; *any line*: read when any "
                "line equals the label (an upper bound no reader can reach without the answer).",
                "",
            ]
        e2e_rows = [
            [
                "ours",
                fmt(e2e["exact"], True),
                "-",
                e2e["n"],
                e2e["misread"],
                e2e["no_text"],
                e2e["missed"],
                fmt(e2e["wrong_per_image"]),
                _ms(sp, "pipeline_ms_p50"),
            ]
        ]
        for n, b in spotting:
            e2e_rows += _spot_rows(n, b)
        out += [
            table(
                [
                    "reader",
                    "read (exact)",
                    "CER",
                    "plates",
                    "misread",
                    "no text",
                    "missed",
                    "wrong reads / image",
                    "ms / image p50",
                ],
                e2e_rows,
            ),
            "",
        ]
        for n, b in spotting:
            e = b["end_to_end"]
            out += [
                f"{n} picked its line by overlap with the labelled plate for {e['picked_by_overlap']} "
                f"plates, by plate-likeness alone for {e['picked_by_plate_like']}; for {e['missed']} "
                "plates it found no text line anywhere in the image.",
                "",
            ]
        out += _picture(pictures, "failures_end_to_end", "end-to-end failures")

    any_col = ["e2e any line"] if spotting else []

    def peer_rows(key: str, row_key: str, extra_cols: int) -> list[list]:
        rows_ = []
        for n, b in peers:
            part = (b.get(key) or {}).get(row_key) or {}
            bo, be = part.get("ocr") or {}, part.get("end_to_end") or {}
            rows_.append(
                [row_key, n]
                + ["-"] * extra_cols
                + [fmt(bo.get("exact"), True), fmt(bo.get("cer"), True), bo.get("n", "-")]
                + [fmt(be.get("exact"), True), be.get("n", "-")]
                + (["-"] if key == "by_region" else [])
                + ([fmt((part.get("end_to_end_any_line") or {}).get("exact"), True)] if spotting else [])
            )
        return rows_

    out += ["## By region", ""]
    region_rows = []
    for row_key, b in r["by_region"].items():
        region_rows.append(
            [
                row_key,
                "ours",
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
            + (["-"] if spotting else [])
        )
        region_rows += peer_rows("by_region", row_key, 3)
    out += [
        table(
            [
                "region",
                "reader",
                "det P",
                "det R",
                "AP50",
                "OCR exact",
                "OCR CER",
                "OCR n",
                "e2e exact",
                "e2e n",
                "wrong / image",
            ]
            + any_col,
            region_rows,
        ),
        "",
    ]
    out += ["## By plate width (pixels)", ""]
    size_rows = []
    for row_key, b in r["by_size"].items():
        size_rows.append(
            [
                row_key,
                "ours",
                b["plates"],
                fmt(b["detection"]["recall"], True),
                fmt(b["ocr"]["exact"], True),
                fmt(b["ocr"]["cer"], True),
                b["ocr"]["n"],
                fmt(b["end_to_end"]["exact"], True),
                b["end_to_end"]["n"],
            ]
            + (["-"] if spotting else [])
        )
        size_rows += peer_rows("by_size", row_key, 2)
    out += [
        table(
            ["width", "reader", "plates", "det recall", "OCR exact", "OCR CER", "OCR n", "e2e exact", "e2e n"]
            + any_col,
            size_rows,
        ),
        "",
    ]
    by_input = r.get("by_input_size") or {}
    if by_input:
        det_input = (r.get("config") or {}).get("detector_input") or ["?", "?"]
        out += [
            f"Detection by plate width in the detector's input ({det_input[1]}x{det_input[0]}, "
            "letterboxed; a stride-8 anchor draws at most 240 px):",
            "",
            table(
                ["input width", "plates", "det recall"],
                [[k, b["plates"], fmt(b["detection"]["recall"], True)] for k, b in by_input.items()],
            ),
            "",
        ]
    if peers:
        out += [
            "Baseline rows: OCR on the same crops; e2e is the one-line pick of text spotting "
            "(`-` where a baseline does not spot text or a number does not apply).",
            "",
        ]

    out += ["## Speed", ""]
    stages = [k[: -len("_ms_p50")] for k in sp if k.endswith("_ms_p50") and sp[k] is not None]
    stage_rows = [
        [s, fmt(sp[f"{s}_ms_p50"]), fmt(sp[f"{s}_ms_p90"]), sp.get(f"{s}_calls", sp.get("images_timed"))]
        for s in stages
    ]
    for n, b in peers:
        bs = b.get("speed") or {}
        for key, what in (("ocr", "OCR of a GT crop"), ("pipeline", "text spotting, whole image")):
            if bs.get(f"{key}_ms_p50") is not None:
                calls = bs.get(f"{key}_calls", bs.get("images_timed"))
                stage_rows.append([f"{n}: {what}", fmt(bs[f"{key}_ms_p50"]), fmt(bs[f"{key}_ms_p90"]), calls])
    if stage_rows:
        out += [table(["stage", "p50 ms", "p90 ms", "calls"], stage_rows), ""]
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

    for n, b in peers:
        vs = b.get("versus") or {}
        vrows = [
            [what, v["both"], v["only_ours"], v["only_baseline"], v["neither"], v["n"]]
            for what, v in (
                ("OCR on GT crops", vs.get("ocr")),
                ("end to end (one line)", vs.get("end_to_end")),
            )
            if v and v["n"]
        ]
        if vrows:
            out += [f"## Versus {n}", "", "Plates each reader gets right where the other does not:", ""]
            out += [table(["", "both right", "only ours", f"only {n}", "neither", "plates"], vrows), ""]
            out += _picture(pictures, f"versus_{n}", f"plates {n} reads and we do not")

    if r.get("baselines"):
        out += ["## Baselines", ""]
        rows = [["ours", fmt(pred.get("name")), fmt(pred.get("backend")), fmt(pred.get("threads")), ""]]
        for name, b in r["baselines"].items():
            d = b["describe"]
            if b["ocr"] is None:
                rows.append([name, "-", "-", "-", f"skipped: {d.get('skipped')}"])
            else:
                rows.append(
                    [
                        name,
                        fmt(d.get("engine") or d.get("name")),
                        fmt(d.get("backend")),
                        fmt(d.get("threads")),
                        fmt(d.get("version")),
                    ]
                )
        out += [table(["reader", "engine", "backend", "threads", "version / note"], rows), ""]
    return "\n".join(out)
