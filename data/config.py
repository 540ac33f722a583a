"""What every toolchain stage shares about its Hydra configuration (the lean runtime uses none)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"


def register_resolvers() -> None:
    """``${lpr.root:}`` -> the project root, so configs name paths independent of the cwd."""
    if not OmegaConf.has_resolver("lpr.root"):
        OmegaConf.register_new_resolver("lpr.root", lambda: str(PROJECT_ROOT))


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


def compose(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose a stage's config outside the CLI (tests, notebooks, other stages)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides or [])


register_resolvers()
