"""Compact copies of a manifest: images shrunk and re-encoded, every box scaled with them.

For moving a training set to another machine (a rented GPU, a device with a small disk): the
photographs in ../shared/datasets are stored larger than training reads them (uc3m_lp's 320x240
scenes as PNG, ro_lp's dash-cam frames at 1280x720), and a copy at the training size is a third of
the bytes or less. Only geometry changes - texts, splits and every other field are kept - so a
compact copy trains and evaluates like its source, at the resolution it was shrunk to.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
from tqdm import tqdm

from data.images import read_image, write_image
from data.manifest import Issue, LabeledImage, Manifest, write_manifest
from runtime.records import Char, Plate

# Plate fields holding pixel geometry besides box and chars (ccpd_samples' four corners).
POINT_FIELDS = ("corners",)


@dataclass
class CompactResult:
    images: list[LabeledImage]
    bytes_in: int = 0
    bytes_out: int = 0
    skipped_split: int = 0
    issues: list[Issue] = field(default_factory=list)

    def summary(self) -> str:
        ratio = self.bytes_out / self.bytes_in if self.bytes_in else 0.0
        return (
            f"{len(self.images)} images written, {self.bytes_in / 1e6:.1f} MB -> "
            f"{self.bytes_out / 1e6:.1f} MB ({ratio:.0%}); {self.skipped_split} outside the chosen splits; "
            f"{len(self.issues)} skipped "
            "(malformed, outside the data roots, unreadable, or a name taken)"
        )


def _scaled_plate(plate: Plate, s: float) -> Plate:
    def box(b):
        return tuple(round(v * s, 2) for v in b)

    extra = dict(plate.extra)
    for key in POINT_FIELDS:
        if key in extra:
            extra[key] = [[round(x * s, 2), round(y * s, 2)] for x, y in extra[key]]
    chars = [
        Char(char=c.char, box=box(c.box), score=c.score, alternatives=c.alternatives, line=c.line)
        for c in plate.chars
    ]
    return replace(plate, box=box(plate.box), chars=chars, extra=extra)


def _output_name(image: str) -> Path:
    """``images/<path below the source's images folder>.jpg`` (split manifests name their images
    through ``../``; the copy keeps only the part that tells them apart)."""
    path = Path(image)
    # An absolute image path keeps only its relative part: the copy always lands under out/images.
    parts = [p for p in path.parts if p not in ("..", ".", path.anchor)]
    if "images" in parts:
        parts = parts[len(parts) - parts[::-1].index("images") :]
    return Path("images", *parts).with_suffix(".jpg")


def compact(
    manifest: Manifest,
    out: str | os.PathLike,
    max_side: int,
    quality: int = 90,
    splits: Sequence[str] | None = None,
    progress: bool = True,
) -> CompactResult:
    """Write ``out/images/*.jpg`` at most ``max_side`` on the long side (never enlarged) and return the
    records to write as ``out/labels.jsonl``. ``splits``: keep only images of these splits."""
    out = Path(out)
    # Lines the manifest reader already left out count as skipped, so the summary adds up.
    result = CompactResult(images=[], issues=list(manifest.issues))
    wanted = set(splits) if splits else None
    written: set[Path] = set()
    for item in tqdm(
        manifest.images, desc=f"compact {manifest.path.parent.name}", disable=not progress, unit="img"
    ):
        if wanted is not None and item.split not in wanted:
            result.skipped_split += 1
            continue
        rel = _output_name(item.image)
        if not (out / rel).resolve().is_relative_to(out.resolve()):
            # Never reached through _output_name's parts; the guard keeps writes inside out= whatever
            # links lie under it.
            result.issues.append(
                Issue(str(manifest.path), item.line, "path_outside_root", f"{item.image}: {rel} leaves {out}")
            )
            continue
        if rel in written:
            result.issues.append(
                Issue(
                    str(manifest.path),
                    item.line,
                    "image",
                    f"{item.image}: a second image would be written as {rel}; skipped",
                )
            )
            continue
        src = manifest.image_path(item)
        try:
            image = read_image(src)
        except (OSError, ValueError) as e:
            result.issues.append(Issue(str(manifest.path), item.line, "image", str(e)))
            continue
        h, w = image.shape[:2]
        s = min(1.0, max_side / max(w, h))
        if s < 1.0:
            image = cv2.resize(
                image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
            )
        # Scale by the size actually written, so boxes stay exact after rounding the image size.
        sx = image.shape[1] / item.width
        dst = write_image(out / rel, image, quality=quality)
        written.add(rel)
        result.bytes_in += src.stat().st_size
        result.bytes_out += dst.stat().st_size
        result.images.append(
            replace(
                item,
                image=rel.as_posix(),
                width=image.shape[1],
                height=image.shape[0],
                plates=[_scaled_plate(p, sx) for p in item.plates],
            )
        )
    return result


def write_compact(manifest: Manifest, out: str | os.PathLike, **kwargs) -> tuple[CompactResult, Path]:
    result = compact(manifest, out, **kwargs)
    return result, write_manifest(out, result.images)
