"""The plate manifest: JSON Lines, one image per line, the layout of ../shared/datasets.

    {"image": "images/a.jpg", "width": 640, "height": 480, "region": "br", "split": "train",
     "plates": [{"box": [x1, y1, x2, y2], "text": "ABC1234" | null, "lines": 1,
                 "chars": [{"char": "A", "box": [...]}, ...]}], ...}

``image`` is relative to the manifest's folder. Reading never stops at a bad line: every problem
becomes an :class:`Issue` naming the file and line, and the caller decides (``validate`` exits
non-zero, importers skip and count).

Image paths are contained: a line's image must resolve (links followed) inside the manifest's
folder or one of the ``roots`` the caller trusts (the stages pass ``paths.data_roots``). An absolute
path or a ``../`` that leads elsewhere is an issue of kind ``path_outside_root`` and the line is
skipped - the file is never opened - unless the caller allows it (``paths.allow_outside_roots``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.errors import DataError
from runtime.errors import InputError
from runtime.records import ALPHABET, Plate

MANIFEST_NAME = "labels.jsonl"
PATH_OUTSIDE_ROOT = "path_outside_root"


@dataclass
class Issue:
    """One problem found in a dataset, precise enough to go and fix it."""

    file: str
    line: int | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.kind}: {self.message}"


@dataclass
class LabeledImage:
    """One manifest line: an image and the plates labelled in it."""

    image: str
    width: int
    height: int
    plates: list[Plate] = field(default_factory=list)
    region: str | None = None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    line: int | None = None
    """Line number in the manifest it was read from (1-based), for error messages."""

    _KNOWN = ("image", "width", "height", "plates", "region", "split")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image, "width": self.width, "height": self.height}
        out["plates"] = [p.to_dict() for p in self.plates]
        if self.region is not None:
            out["region"] = self.region
        if self.split is not None:
            out["split"] = self.split
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], line: int | None = None) -> LabeledImage:
        if not isinstance(d, dict):
            raise DataError(f"a line must hold a JSON object, got {type(d).__name__}")
        image = d.get("image")
        if not isinstance(image, str) or not image:
            raise DataError("missing 'image' (path relative to the manifest)")
        width, height = d.get("width"), d.get("height")
        if not isinstance(width, int) or not isinstance(height, int) or width <= 0 or height <= 0:
            raise DataError(f"width and height must be positive integers, got {width!r} x {height!r}")
        plates = d.get("plates", [])
        if not isinstance(plates, list):
            raise DataError("'plates' must be a list")
        parsed = []
        for i, p in enumerate(plates):
            try:
                parsed.append(Plate.from_dict(p))
            except ValueError as e:
                raise DataError(f"plate {i}: {e}") from None
        return cls(
            image=image,
            width=width,
            height=height,
            plates=parsed,
            region=d.get("region"),
            split=d.get("split"),
            extra={k: v for k, v in d.items() if k not in cls._KNOWN},
            line=line,
        )

    @property
    def is_crop(self) -> bool:
        """A crop dataset's image is one plate (``"crop": true`` in ../shared/datasets)."""
        return bool(self.extra.get("crop"))


@dataclass
class Manifest:
    """A manifest in memory: where it lives (images resolve against its folder) and its lines."""

    path: Path
    images: list[LabeledImage]
    issues: list[Issue] = field(default_factory=list)
    """Problems met while reading (malformed lines are not in ``images``)."""
    roots: list[Path] = field(default_factory=list)
    """Folders besides the manifest's own that its image paths were allowed to lead into."""

    @property
    def root(self) -> Path:
        return self.path.parent

    def image_path(self, item: LabeledImage) -> Path:
        return self.root / item.image

    @property
    def plates(self) -> Iterator[tuple[LabeledImage, Plate]]:
        for item in self.images:
            for plate in item.plates:
                yield item, plate

    def __len__(self) -> int:
        return len(self.images)


def resolve_manifest_path(path: str | os.PathLike) -> Path:
    """Accept a manifest file or a dataset folder holding ``labels.jsonl``."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / MANIFEST_NAME
    if not p.is_file():
        raise FileNotFoundError(
            f"no manifest at {p} (expected a {MANIFEST_NAME} file or a folder holding one)"
        )
    return p


def contained_path(
    root: Path, image: str, roots: Iterable[str | os.PathLike] = ()
) -> tuple[Path | None, str | None]:
    """(resolved path, None) when ``root / image`` - links followed - lies inside ``root`` or one of
    ``roots``; (None, why) when it does not (absolute elsewhere, ``../`` out, a link out, a loop)."""
    try:
        resolved = (root / image).resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop (RuntimeError before Python 3.13)
        return None, f"{image}: cannot be resolved ({e})"
    allowed = [root, *(Path(r) for r in roots)]
    for folder in allowed:
        try:
            if resolved.is_relative_to(Path(folder).resolve()):
                return resolved, None
        except (OSError, RuntimeError):
            continue
    return None, (
        f"{image} resolves to {resolved}, outside the manifest's folder {root}"
        + (f" and the data roots ({', '.join(str(r) for r in roots)})" if roots else "")
        + " - not opened (add its folder to paths.data_roots, or paths.allow_outside_roots=true)"
    )


def read_manifest(
    path: str | os.PathLike,
    roots: Iterable[str | os.PathLike] = (),
    allow_outside: bool = False,
) -> Manifest:
    """Read a manifest; malformed lines are reported in ``issues`` with their line number, and so
    are lines whose image lies outside the manifest's folder and ``roots`` (skipped unless
    ``allow_outside``)."""
    p = resolve_manifest_path(path)
    root_list = [Path(r) for r in roots]
    images: list[LabeledImage] = []
    issues: list[Issue] = []
    for lineno, obj, error in json_lines(p):
        if error is not None:
            kind = "not_utf8" if error.startswith("not UTF-8") else "malformed_json"
            issues.append(Issue(str(p), lineno, kind, error))
            continue
        try:
            item = LabeledImage.from_dict(obj, line=lineno)
        except ValueError as e:
            issues.append(Issue(str(p), lineno, "malformed_record", str(e)))
            continue
        if not allow_outside:
            _, why = contained_path(p.parent, item.image, root_list)
            if why is not None:
                issues.append(Issue(str(p), lineno, PATH_OUTSIDE_ROOT, why))
                continue
        images.append(item)
    return Manifest(path=p, images=images, issues=issues, roots=root_list)


def access_options(cfg: Any) -> dict[str, Any]:
    """``read_manifest``'s roots and allow_outside from a stage config's ``paths`` (data_roots,
    allow_outside_roots); a missing key means the defaults (manifest folder only, contained)."""
    paths = cfg.get("paths") if hasattr(cfg, "get") else None
    if not paths:
        return {}
    roots = paths.get("data_roots") or []
    allow = paths.get("allow_outside_roots", False)
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    if not isinstance(allow, bool):
        raise InputError(f"paths.allow_outside_roots must be true or false, got {allow!r}")
    return {"roots": [Path(str(r)) for r in roots if r], "allow_outside": allow}


def json_lines(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, parsed value, None) for each non-blank line of a JSON-lines file, or
    (line number, None, why) for a line that is not JSON or not UTF-8: a bad line never hides the
    others."""
    with Path(path).open("rb") as f:
        for lineno, raw_bytes in enumerate(f, start=1):
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, None, f"not UTF-8 (byte 0x{raw_bytes[e.start]:02x} at column {e.start + 1})"
                continue
            if not raw.strip():
                continue
            try:
                yield lineno, json.loads(raw), None
            except json.JSONDecodeError as e:
                yield lineno, None, e.msg


def write_manifest(path: str | os.PathLike, images: Iterable[LabeledImage]) -> Path:
    """Write a manifest atomically (a crash never leaves half a file)."""
    p = Path(path)
    if p.suffix != ".jsonl":
        p = p / MANIFEST_NAME
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for item in images:
            f.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
    tmp.replace(p)
    return p


def text_problem(text: str | None, alphabet: str = ALPHABET) -> str | None:
    """Why a plate text is not legal (None when it is, or when it is unknown)."""
    if text is None:
        return None
    if text == "":
        return "empty text (use null when the text is unknown)"
    bad = sorted({c for c in text if c not in alphabet})
    if bad:
        return f"text {text!r} has characters outside {alphabet[:3]}..{alphabet[-3:]}: {''.join(bad)!r}"
    return None


def rebase(manifest: Manifest, out_dir: str | os.PathLike) -> list[LabeledImage]:
    """The manifest's records with image paths made relative to ``out_dir`` (to write it there)."""
    out = Path(out_dir).resolve()
    rebased = []
    for item in manifest.images:
        rel = Path(os.path.relpath(manifest.image_path(item).resolve(), out)).as_posix()
        rebased.append(
            LabeledImage(
                image=rel,
                width=item.width,
                height=item.height,
                plates=item.plates,
                region=item.region,
                split=item.split,
                extra=item.extra,
                line=item.line,
            )
        )
    return rebased
