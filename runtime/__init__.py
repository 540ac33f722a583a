"""Lean licence plate recognition runtime: detect -> crop -> OCR -> reading order -> text.

Deployed on devices on its own (``pip install ./runtime``): it depends only on numpy, OpenCV and
ONNX Runtime (DeGirum PySDK as an extra), never on torch, ultralytics, hydra or pandas.
"""

from runtime.records import ALPHABET, Char, Plate

__all__ = ["ALPHABET", "Char", "Plate"]
