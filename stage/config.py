"""Composing a stage's Hydra configuration from conf/ (the single source of truth for options)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
STAGES = ("data", "train", "export", "compile", "evaluate")
"""The stage configs in conf/ (``python -m <stage>`` composes ``conf/<stage>.yaml``)."""


def register_resolvers() -> None:
    """``${lpr.root:}`` -> the project root, so configs name paths independent of the cwd."""
    if not OmegaConf.has_resolver("lpr.root"):
        OmegaConf.register_new_resolver("lpr.root", lambda: str(PROJECT_ROOT))


def compose(
    config_name: str, overrides: list[str] | None = None, return_hydra_config: bool = False
) -> DictConfig:
    """Compose a stage's config outside the CLI (tests, notebooks, other stages); with
    ``return_hydra_config`` the ``hydra`` node too."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(
            config_name=config_name, overrides=overrides or [], return_hydra_config=return_hydra_config
        )


register_resolvers()
