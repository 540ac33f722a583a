"""python -m export weights=PATH.pt [model=plate_det|plate_ocr] [out=ZOO_DIR] [key=value ...]
python -m export action=check onnx=PATH.onnx|ZOO_DIR
python -m export action=refresh onnx=ZOO_DIR     (rewrite an exported zoo's JSON and reports)

See conf/export.yaml for every option. Exit codes: 0 ok, 1 the exported model failed its parity
check, 2 the command could not run (missing or wrong input).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

import stage.config  # noqa: F401  (registers ${lpr.root:} before Hydra composes)
from stage.errors import UsageError
from stage.main import run_action, stage_main


def action_export(cfg: DictConfig) -> None:
    from export.run import export_model

    export_model(cfg)


def action_check(cfg: DictConfig) -> None:
    from export.run import check_model

    if not cfg.onnx:
        raise UsageError("action=check needs onnx=PATH.onnx or onnx=ZOO_DIR")
    for line in check_model(cfg.onnx):
        print(line)


def action_refresh(cfg: DictConfig) -> None:
    from export.refresh import refresh_zoo

    if not cfg.onnx:
        raise UsageError("action=refresh needs onnx=ZOO_DIR (the zoo whose entries are rewritten)")
    for line in refresh_zoo(cfg):
        print(line)


ACTIONS = {"export": action_export, "check": action_check, "refresh": action_refresh}


def run(cfg: DictConfig) -> None:
    run_action(ACTIONS, cfg)


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from export.errors import ParityError

    stage_main(run, cfg, failures=(ParityError,))


if __name__ == "__main__":
    main()
