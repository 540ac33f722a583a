"""Where a stage run writes: Hydra's run folder, or ``out=`` when given."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig


def run_dir() -> Path:
    """This run's output folder (Hydra's run dir; the cwd outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def output_dir(cfg: DictConfig) -> Path:
    """``out=`` when given, else this run's folder; created."""
    out = Path(cfg.out) if cfg.get("out") else run_dir()
    out.mkdir(parents=True, exist_ok=True)
    return out
