"""Model zoos: folders of DeGirum-style model entries, and finding the plate and OCR models in them.

Layout (written by the export and compile stages)::

    <zoo>/<model_name>/<model_name>.json          DeGirum model JSON (ModelPath, PRE/POST_PROCESS, ...)
    <zoo>/<model_name>/<model_name>.onnx|.hef     the model
    <zoo>/<model_name>/labels_<model_name>.json   class labels

Which model is the plate detector and which the OCR model is read from the model itself - the
ONNX metadata ``lpr.task`` - never guessed from file names. A model that is not ONNX (a HEF) carries
the same metadata as an ``"LPR"`` object (the ``lpr.*`` properties) in its model JSON; the export and
compile stages write that object into every entry (for an ONNX model it must agree with the file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import ZooError
from runtime.metadata import ModelMetadata, ModelMetadataError

DEFAULT_ZOO = Path(__file__).resolve().parent / "zoo"
METADATA_KEY = "LPR"
MODEL_SUFFIXES = (".onnx", ".hef")


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


def read_model_entry(json_path: str | Path) -> ZooModel:
    """One zoo entry from its DeGirum model JSON; ZooError naming the file when it is unusable."""
    p = Path(json_path)
    try:
        spec = json.loads(p.read_text())
    except OSError as e:
        raise ZooError(f"{p}: cannot be read ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise ZooError(f"{p}: not valid JSON ({e})") from None
    try:
        model_rel = spec["MODEL_PARAMETERS"][0]["ModelPath"]
    except (KeyError, IndexError, TypeError):
        raise ZooError(f"{p}: no MODEL_PARAMETERS[0].ModelPath - not a DeGirum model JSON") from None
    model_path = p.parent / model_rel
    if model_path.suffix.lower() not in MODEL_SUFFIXES:
        # Never a pickle (.pt, .pth, .pkl ...): loading one runs whatever code it holds.
        raise ZooError(
            f"{p}: its model file {model_rel} is not ONNX or HEF; the runtime runs only "
            f"{' and '.join(MODEL_SUFFIXES)} models (export PyTorch weights with `python -m export`)"
        )
    if not model_path.is_file():
        raise ZooError(f"{p}: its model file {model_path} does not exist")
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


def scan_zoo(zoo: str | Path) -> list[ZooModel]:
    """Every model entry in a zoo folder (``<zoo>/*/<name>.json``, or JSONs directly in it)."""
    z = Path(zoo)
    if not z.is_dir():
        raise ZooError(f"{z}: the model zoo folder does not exist")
    candidates = sorted({*z.glob("*/*.json"), *z.glob("*.json")})
    entries = [c for c in candidates if not c.name.startswith("labels_") and c.name != "model_card.json"]
    models = []
    for c in entries:
        try:
            head = json.loads(c.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ZooError(f"{c}: not valid JSON ({e})") from None
        if isinstance(head, dict) and "MODEL_PARAMETERS" in head:
            models.append(read_model_entry(c))
    if not models:
        raise ZooError(
            f"{z}: no models found (expected <zoo>/<model_name>/<model_name>.json DeGirum entries with their "
            ".onnx; export trained models with `python -m export`, or pass --zoo DIR)"
        )
    return models


def find_models(
    zoo: str | Path | None = None,
    det_name: str | None = None,
    ocr_name: str | None = None,
    precision: str | None = None,
) -> tuple[ZooModel, ZooModel]:
    """The plate detector and the OCR model of a zoo (default: the one shipped in the package).

    Chosen by ``lpr.task``; ``det_name`` / ``ocr_name`` pick by model name and ``precision``
    (fp32, int8) by metadata when a zoo holds several of a kind; without ``precision`` the fp32
    one is taken when there are several.
    """
    z = Path(zoo) if zoo is not None else DEFAULT_ZOO
    try:
        models = scan_zoo(z)
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
        if not found:
            what = (
                f"{task} model"
                + (f" named {name!r}" if name else "")
                + (f" of precision {precision}" if precision else "")
            )
            have = ", ".join(f"{m.name} ({m.meta.task}, {m.meta.precision})" for m in models)
            raise ZooError(f"{z}: no {what} (the zoo has: {have})")
        if len(found) > 1:
            raise ZooError(
                f"{z}: several {task} models ({', '.join(m.name for m in found)}); "
                "choose one by name (--det-model / --ocr-model) or --precision"
            )
        return found[0]

    return pick("plate_det", det_name), pick("plate_ocr", ocr_name)
