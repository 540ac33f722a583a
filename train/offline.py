"""Make Ultralytics run without ever reaching for the network.

Ultralytics, left alone, downloads Arial.ttf for its plots, yolo26n.pt for the AMP check on GPUs,
checks pip for updates, sends anonymous usage events and offers hub/platform logging. None of that
may happen here (no internet on the build machines; reproducible, offline-safe runs everywhere):

* ``YOLO_OFFLINE=1`` before Ultralytics is imported: its ``ONLINE`` flag is False, so events and
  requirement auto-updates are off.
* ``YOLO_CONFIG_DIR`` points at a folder we own, holding the fonts Ultralytics looks for there
  (matplotlib's DejaVu Sans under the names Arial.ttf / Arial.Unicode.ttf) and a settings file with
  sync and every logging integration switched off.
* The AMP check (only on CUDA) loads downloaded weights: :func:`patch_amp_check` replaces it with a
  check on the model being trained, run in fp32 and under autocast.

Call :func:`prepare` before the first ``import ultralytics`` of the process. When Ultralytics was
already imported (a test session, another stage), the fonts and settings still go into the config
folder it actually uses.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
DISABLED_SETTINGS = {
    "sync": False,
    "api_key": "",
    "clearml": False,
    "comet": False,
    "dvc": False,
    "mlflow": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
    "vscode_msg": False,
    "openvino_msg": False,
}


def _dejavu() -> Path:
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not font.is_file():
        raise FileNotFoundError(f"matplotlib's DejaVuSans.ttf is missing at {font}; plots need a local font")
    return font


def prepare(config_dir: str | os.PathLike) -> Path:
    """Set up the offline environment; returns the config folder Ultralytics uses."""
    os.environ["YOLO_OFFLINE"] = "1"
    if "ultralytics" not in sys.modules:
        os.environ["YOLO_CONFIG_DIR"] = str(Path(config_dir).resolve())
    from ultralytics.utils import SETTINGS, USER_CONFIG_DIR

    USER_CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    font = _dejavu()
    for name in FONT_NAMES:
        target = USER_CONFIG_DIR / name
        if not target.is_file():
            tmp = target.with_suffix(".tmp")
            shutil.copyfile(font, tmp)
            tmp.replace(target)
    if any(SETTINGS.get(k) != v for k, v in DISABLED_SETTINGS.items()):
        SETTINGS.update(DISABLED_SETTINGS)
    patch_amp_check()
    return USER_CONFIG_DIR


def patch_amp_check() -> None:
    """Replace Ultralytics' AMP check (which loads yolo26n.pt, downloading it) with one on our model."""
    import ultralytics.engine.trainer as trainer_module

    if getattr(trainer_module.check_amp, "_lpr_offline", False):
        return
    trainer_module.check_amp = _check_amp_offline


def _check_amp_offline(model) -> bool:
    """AMP is usable when the model's outputs under autocast stay close to fp32 on a grey image."""
    import torch

    device = next(model.parameters()).device
    if device.type != "cuda":
        return False  # Ultralytics only uses AMP on CUDA
    stride = int(model.stride.max()) if hasattr(model, "stride") else 32
    size = max(256, stride * 4)
    x = torch.full((2, 3, size, size), 114 / 255, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            a = model(x)
            a = a[0] if isinstance(a, (list, tuple)) else a
            with torch.autocast(device_type="cuda"):
                b = model(x)
                b = b[0] if isinstance(b, (list, tuple)) else b
        ok = bool(torch.isfinite(b).all()) and torch.allclose(a, b.float(), atol=0.5, rtol=0.05)
    finally:
        model.train(was_training)
    return ok


_check_amp_offline._lpr_offline = True  # type: ignore[attr-defined]
