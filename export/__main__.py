"""python -m export weights=PATH.pt [model=plate_det|plate_ocr] [out=ZOO_DIR] [key=value ...]
python -m export action=check onnx=PATH.onnx|ZOO_DIR

See conf/export.yaml for every option. Exit codes: 0 ok, 1 the exported model failed its parity
check, 2 the command could not run (missing or wrong input).
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from data import config  # noqa: F401  (registers the ${lpr.root:} resolver before Hydra composes)


def run(cfg: DictConfig) -> int:
    if cfg.action == "export":
        from export.run import export_model

        export_model(cfg)
        return 0
    if cfg.action == "check":
        from export.run import check_model

        if not cfg.onnx:
            raise ValueError("action=check needs onnx=PATH.onnx or onnx=ZOO_DIR")
        for line in check_model(cfg.onnx):
            print(line)
        return 0
    raise ValueError(f"unknown action {cfg.action!r}; choose export or check")


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from export.checks import ParityError
    from runtime.metadata import ModelMetadataError

    try:
        code = run(cfg)
    except ParityError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 1
    except (ModelMetadataError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    if code:
        sys.exit(code)  # Hydra discards the task's return value


if __name__ == "__main__":
    main()
