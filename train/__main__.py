"""python -m train model=plate_det|plate_ocr [data=[...]] [epochs=N] [imgsz=N] [device=cpu|0] [key=value ...]
python -m train action=pseudo_label pseudo_label.weights=OCR.pt pseudo_label.src=[MANIFEST,...]

See conf/train.yaml for every option. Exit codes: 0 ok, 2 the command could not run (missing or
wrong input, nothing to resume).
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from data import config  # noqa: F401  (registers the ${lpr.root:} resolver before Hydra composes)


def run(cfg: DictConfig) -> int:
    if cfg.action == "train":
        from train.run import train

        train(cfg)
        return 0
    if cfg.action == "pseudo_label":
        from train.pseudo_label import run_pseudo_label

        run_pseudo_label(cfg)
        return 0
    raise ValueError(f"unknown action {cfg.action!r}; choose train or pseudo_label")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from train.mix import DataMixError
    from train.run import TrainError

    try:
        code = run(cfg)
    except (TrainError, DataMixError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    if code:
        sys.exit(code)  # Hydra discards the task's return value


if __name__ == "__main__":
    main()
