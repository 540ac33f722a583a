"""What every toolchain stage shares about its Hydra configuration and entry point (the lean
runtime uses none of it)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

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


class UsageError(Exception):
    """A stage command cannot run as asked (exit code 2)."""


def run_action(actions: Mapping[str, Callable[[DictConfig], Any]], cfg: DictConfig) -> Any:
    """``actions[cfg.action](cfg)``; an unknown action is a UsageError listing the known ones."""
    if cfg.action not in actions:
        raise UsageError(f"unknown action {cfg.action!r}; choose one of {', '.join(actions)}")
    return actions[cfg.action](cfg)


def stage_main(
    run: Callable[[DictConfig], Any],
    cfg: DictConfig,
    usage_errors: tuple[type[BaseException], ...] = (),
    failures: tuple[type[BaseException], ...] = (),
) -> None:
    """Run a stage's ``run(cfg)`` from its ``@hydra.main`` and exit with the stage's documented code.

    ``run`` returns the exit code (anything but an int counts as 0). Errors become one line
    ``error: ...`` on stderr and exit code 2 (the command could not run as asked: UsageError,
    FileNotFoundError, ValueError and the stage's ``usage_errors``) or 1 (``failures``: it ran and
    what it made failed a check). Hydra discards a task's return value, hence ``sys.exit``.
    """
    try:
        result = run(cfg)
        code = result if isinstance(result, int) else 0
    except failures as e:
        print(f"error: {e}", file=sys.stderr)
        code = 1
    except (UsageError, FileNotFoundError, ValueError, *usage_errors) as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    if code:
        sys.exit(code)


register_resolvers()
