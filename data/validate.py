"""Check a manifest against its images: every problem reported with the file and line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from data.images import read_image_size
from data.manifest import Issue, LabeledImage, Manifest, text_problem
from runtime.records import ALPHABET, Box


def _outside(box: Box, width: float, height: float, tol: float) -> bool:
    x1, y1, x2, y2 = box
    return x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol


def record_issues(item: LabeledImage, file: str, alphabet: str = ALPHABET, tol: float = 1.0) -> list[Issue]:
    """Problems of one record that can be seen without opening its image."""
    issues = []

    def add(kind: str, message: str) -> None:
        issues.append(Issue(file, item.line, kind, f"{item.image}: {message}"))

    for i, plate in enumerate(item.plates):
        if _outside(plate.box, item.width, item.height, tol):
            add(
                "box_outside_image",
                f"plate {i} box {list(plate.box)} is outside the {item.width}x{item.height} image",
            )
        if plate.width <= 0 or plate.height <= 0:
            add("empty_box", f"plate {i} box {list(plate.box)} has no area")
        problem = text_problem(plate.text, alphabet)
        if problem:
            add("illegal_text", f"plate {i}: {problem}")
        for j, ch in enumerate(plate.chars):
            if ch.char not in alphabet:
                add("illegal_char", f"plate {i} char {j}: {ch.char!r} is not in the alphabet")
            if _outside(ch.box, item.width, item.height, tol):
                add("char_outside_image", f"plate {i} char {j} box {list(ch.box)} is outside the image")
        if plate.text and plate.chars and len(plate.chars) == len(plate.text):
            joined = "".join(c.char for c in plate.chars)
            if joined != plate.text:
                add("chars_mismatch", f"plate {i}: characters read {joined!r} but the text is {plate.text!r}")
    return issues


def drop_duplicates(manifest: Manifest) -> list[Issue]:
    """Remove the lines that name an image an earlier line already names (the same file after
    resolving the path) from ``manifest.images``; one ``duplicate_image`` issue per removed line.
    Writers that name files after their image (yolo, compact) and scorers (evaluate) would otherwise
    overwrite or count it twice."""
    file = str(manifest.path)
    seen: dict[Path, int | None] = {}
    kept: list[LabeledImage] = []
    issues = []
    for item in manifest.images:
        key = manifest.image_path(item).resolve()
        if key in seen:
            issues.append(
                Issue(
                    file,
                    item.line,
                    "duplicate_image",
                    f"{item.image} is also on line {seen[key]}; this line is skipped",
                )
            )
            continue
        seen[key] = item.line
        kept.append(item)
    manifest.images = kept
    return issues


def label_issues(manifest: Manifest, alphabet: str = ALPHABET, tol: float = 1.0) -> list[Issue]:
    """Every line's record problems (boxes outside the image, texts outside the alphabet, ...)
    without opening images: what a consumer of the labels reports before using them."""
    file = str(manifest.path)
    return [issue for item in manifest.images for issue in record_issues(item, file, alphabet, tol)]


def validate(
    manifest: Manifest,
    check_images: bool = True,
    alphabet: str = ALPHABET,
    tol: float = 1.0,
    progress: bool = True,
) -> list[Issue]:
    """All issues of a manifest: malformed lines, records, and (optionally) the images themselves."""
    file = str(manifest.path)
    issues = list(manifest.issues)
    seen: dict[str, int | None] = {}
    items: Iterable[LabeledImage] = manifest.images
    if progress:
        items = tqdm(items, desc=f"validate {manifest.path.parent.name}", unit="img", leave=False)
    for item in items:
        if item.image in seen:
            issues.append(
                Issue(file, item.line, "duplicate_image", f"{item.image} is also on line {seen[item.image]}")
            )
        seen[item.image] = item.line
        issues.extend(record_issues(item, file, alphabet, tol))
        if not check_images:
            continue
        path = manifest.image_path(item)
        try:
            w, h = read_image_size(path)
        except (FileNotFoundError, ValueError) as e:
            issues.append(Issue(file, item.line, "bad_image", str(e)))
            continue
        if (w, h) != (item.width, item.height):
            issues.append(
                Issue(
                    file,
                    item.line,
                    "size_mismatch",
                    f"{item.image}: the record says {item.width}x{item.height}, the image is {w}x{h}",
                )
            )
    return issues


def summarize(issues: list[Issue]) -> str:
    counts = Counter(i.kind for i in issues)
    return ", ".join(f"{n} {kind}" for kind, n in counts.most_common()) or "no issues"
