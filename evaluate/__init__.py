"""Evaluate: how good and how fast are these models, on this data, on this backend.

Layers: ``text`` and ``metrics`` (pure scoring of plate records), ``adapters`` (where predictions
come from: the runtime, a recorded run, the labels), ``runner`` (a pass over a manifest),
``report``/``markdown``/``plots`` (report.json, report.md, PNGs), ``compare`` (runs side by side),
``baselines`` (other OCR engines on the same crops). Entry point: ``python -m evaluate``.
"""
