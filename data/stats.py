"""Dataset statistics: a table a person reads, a JSON a machine reads, a PNG to look at."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from data.manifest import Manifest


def dataset_stats(manifest: Manifest, width_buckets: list[int]) -> dict:
    plates = [p for _, p in manifest.plates]
    widths = np.array([p.width for p in plates], dtype=float)
    heights = np.array([p.height for p in plates], dtype=float)
    chars = Counter(c for p in plates for c in (p.text or ""))
    boxed = Counter(c.char for p in plates for c in p.chars)
    labels = [
        f"{lo}-{hi}" if hi < 100000 else f">={lo}"
        for lo, hi in zip(width_buckets[:-1], width_buckets[1:], strict=True)
    ]
    buckets = pd.cut(pd.Series(widths, dtype=float), bins=width_buckets, labels=labels, right=False)
    return {
        "manifest": str(manifest.path),
        "images": len(manifest.images),
        "images_without_plates": sum(1 for i in manifest.images if not i.plates),
        "plates": len(plates),
        "plates_with_text": sum(1 for p in plates if p.text),
        "plates_with_char_boxes": sum(1 for p in plates if p.chars),
        "char_boxes": sum(len(p.chars) for p in plates),
        "malformed_lines": len(manifest.issues),
        "regions": dict(Counter(i.region or "unknown" for i in manifest.images).most_common()),
        "splits": dict(Counter(i.split or "none" for i in manifest.images).most_common()),
        "lines": dict(Counter(str(p.lines or "unknown") for p in plates).most_common()),
        "text_lengths": dict(sorted(Counter(len(p.text) for p in plates if p.text).items())),
        "plate_width_px": _describe(widths),
        "plate_height_px": _describe(heights),
        "plate_width_buckets": {str(k): int(v) for k, v in buckets.value_counts(sort=False).items()},
        "chars_in_texts": dict(sorted(chars.items())),
        "chars_boxed": dict(sorted(boxed.items())),
        "distinct_texts": len({p.text for p in plates if p.text}),
    }


def _describe(values: np.ndarray) -> dict:
    if values.size == 0:
        return {}
    q = np.percentile(values, [0, 10, 50, 90, 100])
    return {
        "min": round(q[0], 1),
        "p10": round(q[1], 1),
        "median": round(q[2], 1),
        "p90": round(q[3], 1),
        "max": round(q[4], 1),
        "mean": round(float(values.mean()), 1),
    }


def stats_table(stats: dict) -> str:
    """Plain-text summary tables."""
    overview = pd.DataFrame(
        [
            (k, stats[k])
            for k in (
                "images",
                "images_without_plates",
                "plates",
                "plates_with_text",
                "plates_with_char_boxes",
                "char_boxes",
                "distinct_texts",
                "malformed_lines",
            )
        ],
        columns=["what", "count"],
    ).set_index("what")
    parts = [f"# {stats['manifest']}", overview.to_string()]
    for key, title in (
        ("regions", "region"),
        ("splits", "split"),
        ("lines", "text lines"),
        ("plate_width_buckets", "plate width (px)"),
        ("text_lengths", "text length"),
    ):
        if stats[key]:
            parts.append(pd.Series(stats[key], name="count").rename_axis(title).to_frame().to_string())
    if stats["plate_width_px"]:
        parts.append(
            pd.DataFrame({"width": stats["plate_width_px"], "height": stats["plate_height_px"]}).T.to_string()
        )
    hist = stats["chars_in_texts"] or stats["chars_boxed"]
    if hist:
        parts.append("characters: " + " ".join(f"{c}:{n}" for c, n in hist.items()))
    return "\n\n".join(parts)


def stats_plot(stats: dict, manifest: Manifest, path: Path) -> Path:
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # Hydra's INFO root logger would echo its notes
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    hist = stats["chars_in_texts"] or stats["chars_boxed"]
    ax = axes[0, 0]
    ax.bar(list(hist), list(hist.values()), color="#3b6ea8")
    ax.set_title("characters (" + ("in texts" if stats["chars_in_texts"] else "boxed") + ")")
    widths = [p.width for _, p in manifest.plates]
    ax = axes[0, 1]
    ax.hist(widths, bins=40, color="#5a9e5a")
    ax.set_title("plate width (px)")
    ax.set_xlabel("pixels")
    ax = axes[1, 0]
    per_image = Counter(len(i.plates) for i in manifest.images)
    ax.bar([str(k) for k in sorted(per_image)], [per_image[k] for k in sorted(per_image)], color="#c27c2c")
    ax.set_title("plates per image")
    ax = axes[1, 1]
    ax.bar(list(stats["regions"]), list(stats["regions"].values()), color="#8a5aa8")
    ax.set_title("images per region")
    fig.suptitle(f"{Path(stats['manifest']).parent.name}: {stats['images']} images, {stats['plates']} plates")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_stats(manifest: Manifest, out: Path, width_buckets: list[int]) -> tuple[dict, str]:
    stats = dataset_stats(manifest, width_buckets)
    table = stats_table(stats)
    (out / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False))
    (out / "stats.txt").write_text(table + "\n")
    stats_plot(stats, manifest, out / "stats.png")
    return stats, table
