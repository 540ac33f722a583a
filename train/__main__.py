"""python -m train model=plate_det|plate_ocr [data=[...]] [epochs=N] [imgsz=N] [device=cpu|0] [key=value ...]
python -m train action=pseudo_label pseudo_label.weights=OCR.pt pseudo_label.src=[MANIFEST,...]
python -m train action=publish publish.weights=RUN/weights/last.pt [publish.out=weights/NAME.pt]
python -m train action=average average.weights=[A.pt,B.pt] average.out=OUT.pt [average.shares=[0.5,0.5]]

See conf/train.yaml for every option. Exit codes: 0 ok, 2 the command could not run (missing or
wrong input, nothing to resume).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

import stage.config  # noqa: F401  (registers ${lpr.root:} before Hydra composes)
from stage.main import run_action, stage_main


def action_train(cfg: DictConfig) -> None:
    from train.run import train

    train(cfg)


def action_pseudo_label(cfg: DictConfig) -> None:
    from train.pseudo_label import run_pseudo_label

    run_pseudo_label(cfg)


def action_publish(cfg: DictConfig) -> None:
    from train.publish import run_publish

    run_publish(cfg)


def action_average(cfg: DictConfig) -> None:
    from train.average import run_average

    run_average(cfg)


ACTIONS = {
    "train": action_train,
    "pseudo_label": action_pseudo_label,
    "publish": action_publish,
    "average": action_average,
}


def run(cfg: DictConfig) -> None:
    run_action(ACTIONS, cfg)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:

    stage_main(run, cfg)


if __name__ == "__main__":
    main()
