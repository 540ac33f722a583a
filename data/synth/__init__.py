"""Synthetic licence plates: realistic plates and scenes with an exact box for every character.

    generate(kind, n, seed, out, styles=None, **options) -> Path   # out/labels.jsonl + out/images/
    render_plate(style, text, rng) -> (plate BGR image, Plate record in plate pixels)

Styles are YAML files in conf/plate_style/ (one per region); realism knobs are ``synth`` in
conf/data.yaml. CLI: ``python -m data action=synth kind=crops|scenes n=N seed=S out=DIR``.
"""

from __future__ import annotations

import numpy as np

from data.synth.dataset import generate
from data.synth.plate import RenderedPlate, render
from data.synth.style import PlateStyle, load_style, load_styles, style_names
from runtime.records import Plate

__all__ = [
    "generate",
    "render_plate",
    "render",
    "RenderedPlate",
    "PlateStyle",
    "load_style",
    "load_styles",
    "style_names",
]


def render_plate(
    style: str | PlateStyle, text: str | None, rng: np.random.Generator, **options
) -> tuple[np.ndarray, Plate]:
    """A front-on plate image (BGR) and its record: box = the whole image, text, one char per
    character in plate pixels (reading order, ``line`` set), ``lines``. ``text=None`` draws a random
    text from the style's patterns. ``options`` go to :func:`data.synth.plate.render` (``px_per_mm``,
    ``confusable_boost``, ``confusables``, ``wear``); :func:`render` also returns the outline alpha
    and ink hulls."""
    rp = render(style, text, rng, **options)
    rp.plate.extra.update({"style": rp.style, "variant": rp.variant})
    return rp.image, rp.plate
