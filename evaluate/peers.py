"""The OCR engines users would pick instead of ours, as baselines: PaddleOCR and EasyOCR.

Each reads the labelled plates' crops (:meth:`read_plates`, recognition only, like our OCR on
ground-truth crops) and spots text on the whole image (:meth:`spot`: every text line it finds,
scored by ``evaluate.spotting``). Neither is a dependency of the project and neither may download:

* ``paddleocr``: PP-OCRv4 (detection, 0/180 angle classifier, recognition) converted to ONNX, as
  the ``rapidocr_onnxruntime`` 1.4.x wheel ships it (``pip install 'lpr-toolchain[eval-peers]'``),
  run on ONNX Runtime. The model files are opened by path (the wheel's own, or ``model_dir``);
  missing files are reported, never fetched (newer ``rapidocr`` releases fetch models at run time,
  which is why the extra pins 1.4.x).
* ``easyocr``: the ``easyocr`` package with its CRAFT detector and a recogniser already on disk
  (``model_dir``), built with downloads disabled. Not part of the extra: it brings its own torch.

An engine that is not installed raises :class:`evaluate.baselines.BaselineUnavailable` with what
to install, and the report lists it as skipped.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluate.errors import BaselineUnavailable
from evaluate.spotting import quad_to_box
from runtime.geometry import plate_crop_box
from runtime.records import ALPHABET, Box, Plate
from stage.files import sha256_file

EXTRA = "eval-peers"
INSTALL_EXTRA = f"pip install 'lpr-toolchain[{EXTRA}]'"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _crops(image: np.ndarray, boxes: Sequence[Box], pad: float) -> list[np.ndarray | None]:
    h, w = image.shape[:2]
    out: list[np.ndarray | None] = []
    for box in boxes:
        region = plate_crop_box(box, w, h, pad, pad)
        out.append(None if region is None else image[region[1] : region[3], region[0] : region[2]])
    return out


def _line(points: Sequence[Sequence[float]], text: str, score: float) -> Plate:
    """A text line found by an engine, as the one record every stage passes along."""
    quad = [
        [round(float(x), 1), round(float(y), 1)] for x, y in np.asarray(points, dtype=float).reshape(-1, 2)
    ]
    return Plate(
        box=quad_to_box(quad),
        text=text or None,
        score=float(score),
        reason=None if text else "no characters found",
        extra={"quad": quad},
    )


def _model_info(path: Path) -> dict[str, Any]:
    return {"name": path.stem, "path": str(path), "sha256": sha256_file(path)}


class PaddleOcrReader:
    """PaddleOCR PP-OCRv4 through RapidOCR (ONNX Runtime).

    ``read_plates``: the recogniser alone on each plate's crop (grown by ``pad`` of its size).
    ``spot``: detection, angle classification (``use_cls``) and recognition on the whole image;
    lines scoring under ``text_score`` are dropped, as PaddleOCR drops them."""

    def __init__(
        self,
        model_dir: str | None = None,
        det_model: str = "ch_PP-OCRv4_det_infer.onnx",
        rec_model: str = "ch_PP-OCRv4_rec_infer.onnx",
        cls_model: str = "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        pad: float = 0.0,
        threads: int | None = None,
        use_cls: bool = True,
        text_score: float = 0.5,
        det_limit_side_len: int = 736,
    ):
        spec = importlib.util.find_spec("rapidocr_onnxruntime")
        if spec is None or not spec.submodule_search_locations:
            raise BaselineUnavailable(
                f"rapidocr_onnxruntime is not installed; install the {EXTRA} extra: {INSTALL_EXTRA}"
            )
        folder = (
            Path(model_dir) if model_dir else Path(next(iter(spec.submodule_search_locations))) / "models"
        )
        self.models = {"det": folder / det_model, "rec": folder / rec_model, "cls": folder / cls_model}
        missing = [str(p) for p in self.models.values() if not p.is_file()]
        if missing:
            # rapidocr_onnxruntime 1.4.x carries its models; anything else must bring them (never fetched)
            raise BaselineUnavailable(
                f"PaddleOCR model files not found: {', '.join(missing)} (the {EXTRA} extra pins "
                "rapidocr_onnxruntime 1.4.x, whose wheel holds them; "
                "or set baseline_options.paddleocr.model_dir)"
            )
        from rapidocr_onnxruntime import RapidOCR

        self.pad, self.threads, self.use_cls = pad, threads, use_cls
        self.version = _version("rapidocr_onnxruntime") or "unknown"
        self.engine = RapidOCR(
            det_model_path=str(self.models["det"]),
            rec_model_path=str(self.models["rec"]),
            cls_model_path=str(self.models["cls"]),
            intra_op_num_threads=-1 if threads is None else int(threads),
            inter_op_num_threads=-1 if threads is None else 1,
            text_score=float(text_score),
            det_limit_side_len=int(det_limit_side_len),
            print_verbose=False,
        )
        self._ms: dict[str, list[float]] = {"ocr": [], "spot": []}

    def read_plates(self, image: np.ndarray, boxes: Sequence[Box], key: str) -> list[Plate]:
        out = []
        for box, crop in zip(boxes, _crops(image, boxes, self.pad), strict=True):
            if crop is None:
                out.append(Plate(box=box, reason="empty crop"))
                continue
            t0 = time.perf_counter()
            (text, score), *_ = self.engine.text_rec([np.ascontiguousarray(crop)])[0]
            self._ms["ocr"].append((time.perf_counter() - t0) * 1000.0)
            out.append(
                Plate(
                    box=box,
                    text=text or None,
                    score=float(score) if text else None,
                    reason=None if text else "no characters found",
                )
            )
        return out

    def spot(self, image: np.ndarray, key: str) -> list[Plate]:
        t0 = time.perf_counter()
        result, _ = self.engine(image, use_cls=self.use_cls)
        self._ms["spot"].append((time.perf_counter() - t0) * 1000.0)
        return [_line(points, text, score) for points, text, score in result or []]

    def timings(self) -> dict[str, list[float]]:
        out = {k: v for k, v in self._ms.items() if v}
        self._ms = {"ocr": [], "spot": []}
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": "paddleocr",
            "engine": "PaddleOCR PP-OCRv4 (rapidocr_onnxruntime)",
            "backend": "onnxruntime",
            "version": f"rapidocr_onnxruntime {self.version}",
            "precision": "fp32",
            "threads": self.threads,
            "pad": self.pad,
            "use_cls": self.use_cls,
            "models": {role: _model_info(path) for role, path in self.models.items()},
        }


class EasyOcrReader:
    """EasyOCR (CRAFT detector + a CRNN recogniser) from model files already on disk.

    ``read_plates``: the recogniser on each plate's whole crop; ``spot``: ``readtext`` on the image.
    ``allowlist`` limits what the recogniser may output (null: its whole character set)."""

    def __init__(
        self,
        model_dir: str | None = None,
        lang: Sequence[str] = ("en",),
        recognizer: str = "english_g2",
        detector_file: str = "craft_mlt_25k.pth",
        allowlist: str | None = ALPHABET,
        pad: float = 0.0,
        threads: int | None = None,
    ):
        problems = []
        installed = importlib.util.find_spec("easyocr") is not None
        if not installed:
            problems.append("easyocr is not installed (pip install easyocr; it brings its own torch)")
        if not model_dir:
            problems.append(
                f"baseline_options.easyocr.model_dir is not set (a folder holding {detector_file} and "
                f"{recognizer}.pth; never downloaded)"
            )
        else:
            folder = Path(model_dir)
            missing = [n for n in (detector_file, f"{recognizer}.pth") if not (folder / n).is_file()]
            if missing:
                problems.append(f"model files missing in {folder}: {', '.join(missing)} (never downloaded)")
        if problems:
            raise BaselineUnavailable("; ".join(problems))
        import easyocr

        if threads is not None:
            import torch

            torch.set_num_threads(int(threads))
        self.model_dir, self.recognizer, self.allowlist = Path(model_dir), recognizer, allowlist
        self.detector_file = detector_file
        self.pad, self.threads, self.lang = pad, threads, list(lang)
        self.version = _version("easyocr") or "unknown"
        self.engine = easyocr.Reader(
            self.lang,
            gpu=False,
            model_storage_directory=str(self.model_dir),
            user_network_directory=str(self.model_dir),
            recog_network=recognizer,
            download_enabled=False,
            verbose=False,
        )
        self._ms: dict[str, list[float]] = {"ocr": [], "spot": []}

    def read_plates(self, image: np.ndarray, boxes: Sequence[Box], key: str) -> list[Plate]:
        import cv2

        out = []
        for box, crop in zip(boxes, _crops(image, boxes, self.pad), strict=True):
            if crop is None:
                out.append(Plate(box=box, reason="empty crop"))
                continue
            t0 = time.perf_counter()
            found = self.engine.recognize(
                cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), allowlist=self.allowlist, detail=1
            )
            self._ms["ocr"].append((time.perf_counter() - t0) * 1000.0)
            text = "".join(t for _, t, _ in found)
            score = float(np.prod([s for _, _, s in found])) if found else None
            out.append(
                Plate(box=box, text=text or None, score=score, reason=None if text else "no characters found")
            )
        return out

    def spot(self, image: np.ndarray, key: str) -> list[Plate]:
        t0 = time.perf_counter()
        found = self.engine.readtext(image, allowlist=self.allowlist, detail=1)
        self._ms["spot"].append((time.perf_counter() - t0) * 1000.0)
        return [_line(points, text, score) for points, text, score in found]

    def timings(self) -> dict[str, list[float]]:
        out = {k: v for k, v in self._ms.items() if v}
        self._ms = {"ocr": [], "spot": []}
        return out

    def describe(self) -> dict[str, Any]:
        files = [self.model_dir / self.detector_file, self.model_dir / f"{self.recognizer}.pth"]
        return {
            "name": "easyocr",
            "engine": "EasyOCR",
            "backend": "torch",
            "version": f"easyocr {self.version}",
            "precision": "fp32",
            "threads": self.threads,
            "pad": self.pad,
            "lang": self.lang,
            "models": {p.stem: _model_info(p) for p in files if p.is_file()},
        }
