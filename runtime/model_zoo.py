"""Model zoos: folders of DeGirum-style model entries, and finding the plate and OCR models in them.

Layout (written by the export and compile stages)::

    <zoo>/<model_name>/<model_name>.json          DeGirum model JSON (ModelPath, PRE/POST_PROCESS, ...)
    <zoo>/<model_name>/<model_name>.onnx|.hef     the model
    <zoo>/<model_name>/labels_<model_name>.json   class labels

Which model is the plate detector and which the OCR model is read from the model itself - the
ONNX metadata ``lpr.task`` - never guessed from file names. A model that is not ONNX (a HEF) carries
the same metadata as an ``"LPR"`` object (the ``lpr.*`` properties) in its model JSON; the export and
compile stages write that object into every entry (for an ONNX model it must agree with the file).

Integrity: every model file is checked against the sha256 its JSON records before anything opens
it - DeGirum's ``Checksum`` (the export and compile stages write the model file's sha256 there), or,
for a JSON whose ``Checksum`` is not a sha256, ``"LPR": {"model_sha256": ...}``. A mismatch is a
:class:`ModelIntegrityError` naming the file and both hashes; ``verify=False`` (the CLIs'
``--allow-unverified``, the stages' ``verify_models: false``) skips the check with a warning. Only
ONNX and HEF files are accepted as models (a ``.pt`` is a pickle: loading it runs code).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import ZooError
from runtime.metadata import ModelMetadata, ModelMetadataError

DEFAULT_ZOO = Path(__file__).resolve().parent / "zoo"
METADATA_KEY = "LPR"
MODEL_SUFFIXES = (".onnx", ".hef")
SHA256_KEY = "model_sha256"
"""The ``"LPR"`` object's key for the model's sha256, where ``Checksum`` is not one."""
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ModelIntegrityError(ZooError):
    """A model file whose sha256 is not the one its zoo JSON records (tampered, truncated or
    replaced), or that records none."""


_hash_cache: dict[tuple[str, int, int, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """The file's sha256 (hex), remembered per (path, device, inode, size, mtime) for this process,
    so a program that opens the same zoo again (tests, several Predictors) hashes each file once.
    Not kept on disk: a cache file would be one more thing an attacker could edit."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    digest = _hash_cache.get(key)
    if digest is None:
        h = hashlib.sha256()
        with p.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        digest = _hash_cache[key] = h.hexdigest()
    return digest


def recorded_sha256(spec: dict) -> str | None:
    """The model file's sha256 as the model JSON records it (``Checksum``, else ``LPR.model_sha256``)."""
    checksum = spec.get("Checksum")
    if isinstance(checksum, str) and _SHA256.fullmatch(checksum.strip().lower()):
        return checksum.strip().lower()
    lpr = spec.get(METADATA_KEY)
    if isinstance(lpr, dict) and isinstance(lpr.get(SHA256_KEY), str):
        value = lpr[SHA256_KEY].strip().lower()
        if _SHA256.fullmatch(value):
            return value
    return None


def verify_model_file(json_path: Path, model_path: Path, spec: dict) -> str:
    """The model's sha256, checked against the JSON's; ModelIntegrityError naming both otherwise."""
    expected = recorded_sha256(spec)
    if expected is None:
        raise ModelIntegrityError(
            f"{json_path}: records no sha256 of {model_path.name} (a 64-hex 'Checksum', or "
            f"'{METADATA_KEY}.{SHA256_KEY}'); re-export the model, or pass --allow-unverified "
            "(verify_models: false) to load it unchecked"
        )
    actual = file_sha256(model_path)
    if actual != expected:
        raise ModelIntegrityError(
            f"{model_path}: sha256 {actual} does not match {expected} recorded in {json_path.name} "
            "(the model file was changed or damaged; re-export it, or pass --allow-unverified "
            "(verify_models: false) to load it anyway)"
        )
    return actual


def warn_unverified() -> None:
    print(
        "warning: model verification is off (--allow-unverified / verify_models: false): "
        "model files are loaded without checking their sha256",
        file=sys.stderr,
    )


@dataclass
class ZooModel:
    name: str
    json_path: Path
    model_path: Path
    meta: ModelMetadata
    runtime: str
    """The DeGirum runtime agent the JSON asks for (ONNX, HAILORT, ...)."""
    postprocess: str
    """The JSON's OutputPostprocessType (DetectionYoloV8, DetectionYoloHailo, ...)."""

    @property
    def is_onnx(self) -> bool:
        return self.model_path.suffix.lower() == ".onnx"


def _onnx_metadata(path: Path) -> ModelMetadata:
    """Our metadata from an ONNX file, loading it without graph optimisation (fast)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime raises its own types for corrupt files
        raise ModelMetadataError(f"{path}: not a loadable ONNX model ({str(e).strip()[:300]})") from None
    return ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map, source=str(path))


def read_model_entry(json_path: str | Path, verify: bool = True) -> ZooModel:
    """One zoo entry from its DeGirum model JSON; ZooError naming the file when it is unusable.

    The model file must lie in the JSON's folder (after resolving links), be ONNX or HEF, and
    (``verify``) have the sha256 the JSON records - all checked before the model is opened."""
    p = Path(json_path)
    try:
        spec = json.loads(p.read_bytes().decode("utf-8"))
    except OSError as e:
        raise ZooError(f"{p}: cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise ZooError(f"{p}: not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ZooError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(spec, dict):
        raise ZooError(
            f"{p}: a JSON {type(spec).__name__}, not a DeGirum model JSON (an object with MODEL_PARAMETERS)"
        )
    try:
        model_rel = spec["MODEL_PARAMETERS"][0]["ModelPath"]
    except (KeyError, IndexError, TypeError):
        raise ZooError(f"{p}: no MODEL_PARAMETERS[0].ModelPath - not a DeGirum model JSON") from None
    if not isinstance(model_rel, str) or not model_rel:
        raise ZooError(f"{p}: MODEL_PARAMETERS[0].ModelPath must be a file name, got {model_rel!r}")
    model_path = p.parent / model_rel
    entry_dir = p.parent.resolve()
    if not model_path.resolve().is_relative_to(entry_dir):
        raise ZooError(
            f"{p}: ModelPath {model_rel!r} points outside the entry's folder {p.parent} "
            "(a zoo entry's model lies beside its JSON)"
        )
    if model_path.suffix.lower() not in MODEL_SUFFIXES:
        # Never a pickle (.pt, .pth, .pkl ...): loading one runs whatever code it holds.
        raise ZooError(
            f"{p}: its model file {model_rel} is not ONNX or HEF; the runtime runs only "
            f"{' and '.join(MODEL_SUFFIXES)} models (export PyTorch weights with `python -m export`)"
        )
    if not model_path.is_file():
        raise ZooError(f"{p}: its model file {model_path} does not exist")
    if verify:
        verify_model_file(p, model_path, spec)
    try:
        lpr = spec.get(METADATA_KEY)
        json_meta = (
            ModelMetadata.from_json_object(lpr, source=f"{p} ({METADATA_KEY})")
            if isinstance(lpr, dict)
            else None
        )
        if model_path.suffix.lower() == ".onnx":
            # The model file is the authority; a JSON that describes another model is stale.
            meta = _onnx_metadata(model_path)
            if json_meta is not None and json_meta != meta:
                raise ModelMetadataError(
                    f"{p}: its '{METADATA_KEY}' object differs from the metadata in "
                    f"{model_path.name} (the model was replaced; re-export it)"
                )
        elif json_meta is not None:
            meta = json_meta
        else:
            raise ModelMetadataError(
                f"{p}: the model {model_path.name} is not ONNX and the JSON has no '{METADATA_KEY}' object "
                "with its lpr.* metadata (task, names, input size, letterbox fill)"
            )
    except ModelMetadataError as e:
        raise ZooError(str(e)) from None
    device = (spec.get("DEVICE") or [{}])[0]
    post = (spec.get("POST_PROCESS") or [{}])[0]
    return ZooModel(
        name=p.stem,
        json_path=p,
        model_path=model_path,
        meta=meta,
        runtime=str(device.get("RuntimeAgent", "")),
        postprocess=str(post.get("OutputPostprocessType", "")),
    )


def scan_zoo(zoo: str | Path, verify: bool = True, skipped: list[str] | None = None) -> list[ZooModel]:
    """Every model entry in a zoo folder (``<zoo>/*/<name>.json``, or JSONs directly in it).

    JSON files that are not model JSONs (reports, a JSON list) are passed over; ``skipped``
    collects why, so an error about a missing model can name them."""
    z = Path(zoo)
    if not z.is_dir():
        raise ZooError(f"{z}: the model zoo folder does not exist")
    candidates = sorted({*z.glob("*/*.json"), *z.glob("*.json")})
    entries = [c for c in candidates if not c.name.startswith("labels_") and c.name != "model_card.json"]
    models = []
    for c in entries:
        try:
            head = json.loads(c.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ZooError(f"{c}: not valid JSON ({e})") from None
        if isinstance(head, dict) and "MODEL_PARAMETERS" in head:
            models.append(read_model_entry(c, verify=verify))
        elif skipped is not None and c.name != "export_report.json":
            kind = (
                "a JSON object without MODEL_PARAMETERS"
                if isinstance(head, dict)
                else (f"a JSON {type(head).__name__}, not an object")
            )
            skipped.append(f"{c} ({kind})")
    if not models:
        raise ZooError(
            f"{z}: no models found (expected <zoo>/<model_name>/<model_name>.json DeGirum entries with their "
            ".onnx; export trained models with `python -m export`, or pass --zoo DIR)"
            + (f"; not model JSONs: {', '.join(skipped)}" if skipped else "")
        )
    return models


def by_input_shape(models: list[ZooModel], aspect: float | None) -> list[ZooModel]:
    """Of detectors that differ only in input shape, the one whose input aspect (width / height)
    is nearest ``aspect`` (the source's; 16:9 video -> 640x384), or the square one when the
    source's shape is not known. Models of one shape are returned as they are."""
    shapes = {(m.meta.input_width, m.meta.input_height) for m in models}
    if len(shapes) < 2:
        return models
    if aspect is None or not aspect > 0:
        return [m for m in models if m.meta.input_width == m.meta.input_height] or models

    def distance(m: ZooModel) -> float:
        return abs(math.log((m.meta.input_width / m.meta.input_height) / aspect))

    best = min(distance(m) for m in models)
    return [m for m in models if distance(m) == best]


def find_models(
    zoo: str | Path | None = None,
    det_name: str | None = None,
    ocr_name: str | None = None,
    precision: str | None = None,
    verify: bool = True,
    aspect: float | None = None,
) -> tuple[ZooModel, ZooModel]:
    """The plate detector and the OCR model of a zoo (default: the one shipped in the package).

    Chosen by ``lpr.task``; ``det_name`` / ``ocr_name`` pick by model name and ``precision``
    (fp32, int8) by metadata when a zoo holds several of a kind; without ``precision`` the fp32
    one is taken when there are several. A zoo with the detector at several input shapes gives
    the one whose aspect is nearest ``aspect`` (the source's width / height), the square one when
    ``aspect`` is None. ``verify``: check every model file's sha256 against its JSON before it is
    opened (:class:`ModelIntegrityError`); False warns on stderr.
    """
    z = Path(zoo) if zoo is not None else DEFAULT_ZOO
    if not verify:
        warn_unverified()
    skipped: list[str] = []
    try:
        models = scan_zoo(z, verify=verify, skipped=skipped)
    except ZooError as e:
        if zoo is None:
            raise ZooError(f"the package's default model zoo: {e}") from None
        raise

    def pick(task: str, name: str | None) -> ZooModel:
        found = [m for m in models if m.meta.task == task]
        if name is not None:
            found = [m for m in found if m.name == name]
        if precision is not None:
            found = [m for m in found if m.meta.precision == precision]
        elif len(found) > 1:
            # A zoo ships each model in fp32 and int8: unless asked, run the accurate one.
            found = [m for m in found if m.meta.precision == "fp32"] or found
        if name is None and len(found) > 1:
            found = by_input_shape(found, aspect)
        if not found:
            what = (
                f"{task} model"
                + (f" named {name!r}" if name else "")
                + (f" of precision {precision}" if precision else "")
            )
            have = ", ".join(f"{m.name} ({m.meta.task}, {m.meta.precision})" for m in models)
            raise ZooError(
                f"{z}: no {what} (the zoo has: {have})"
                + (f"; not model JSONs: {', '.join(skipped)}" if skipped else "")
            )
        if len(found) > 1:
            raise ZooError(
                f"{z}: several {task} models ({', '.join(m.name for m in found)}); "
                "choose one by name (--det-model / --ocr-model) or --precision"
            )
        return found[0]

    return pick("plate_det", det_name), pick("plate_ocr", ocr_name)
