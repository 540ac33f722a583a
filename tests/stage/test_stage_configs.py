"""Every stage config composes from conf/ with its defaults, resolves, and leaves unset only the
keys it marks `???` (what the user must give); the shared Hydra settings come from conf/hydra/."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from stage.config import CONF_DIR, STAGES, compose

REQUIRED = {"export": {"weights"}, "compile": {"onnx"}}
"""The keys each stage requires on the command line."""


def _missing(cfg, prefix: str = "") -> set[str]:
    out = set()
    for key in cfg:
        path = f"{prefix}{key}"
        if OmegaConf.is_missing(cfg, key):
            out.add(path)
        elif OmegaConf.is_config(cfg[key]) and not OmegaConf.is_list(cfg[key]):
            out |= _missing(cfg[key], path + ".")
    return out


@pytest.mark.parametrize("stage", STAGES)
def test_stage_config_composes_with_its_defaults(stage):
    assert (CONF_DIR / f"{stage}.yaml").is_file()
    cfg = compose(stage, return_hydra_config=True)
    # Everything resolves (interpolations, groups) except what the user must give.
    stage_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    container = OmegaConf.to_container(stage_cfg, resolve=True, throw_on_missing=False)
    assert container["run_name"].split("/")[0] == stage
    assert _missing(stage_cfg) == REQUIRED.get(stage, set())
    # The run folder comes from conf/hydra/default.yaml, under this stage's run_name.
    assert cfg.hydra.run.dir.startswith(f"{cfg.paths.runs}/{cfg.run_name}/")
    assert cfg.hydra.job.chdir is False
