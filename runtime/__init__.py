"""Lean licence plate recognition runtime: detect -> crop -> OCR -> reading order -> text.

Deployed on devices on its own (``pip install ./runtime``): it depends only on numpy, OpenCV,
ONNX Runtime and PyYAML (DeGirum PySDK as an extra), never on torch, ultralytics, hydra or pandas.

    from runtime import Predictor
    with Predictor(zoo="path/to/zoo") as p:
        for result in p.run("photos/"):
            print(result.to_dict())
        for item in p.track("rtsp://camera/stream"):    # video: tracked frames and plate events
            print(item.to_dict())

``import runtime`` itself stays light (the records only), so the toolchain stages can import the
plate record without loading OpenCV or ONNX Runtime.
"""

from typing import Any

from runtime.records import ALPHABET, Char, Plate

__all__ = ["ALPHABET", "Char", "FrameResult", "PipelineConfig", "Plate", "Predictor", "TrackConfig"]


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from runtime import pipeline

        return pipeline.Predictor
    if name == "FrameResult":
        from runtime import results

        return results.FrameResult
    if name in ("PipelineConfig", "TrackConfig"):
        from runtime import config

        return getattr(config, name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
