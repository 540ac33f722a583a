"""A stage's entry point: run the chosen action and exit with the stage's documented code."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from runtime.errors import LprError
from stage.errors import UsageError

IO_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)
"""The operating system's errors a stage reports in one line (a path that is missing or not writable)."""


def run_action(actions: Mapping[str, Callable[[DictConfig], Any]], cfg: DictConfig) -> Any:
    """``actions[cfg.action](cfg)``; an unknown action is a UsageError listing the known ones."""
    if cfg.action not in actions:
        raise UsageError(f"unknown action {cfg.action!r}; choose one of {', '.join(actions)}")
    return actions[cfg.action](cfg)


def stage_main(
    run: Callable[[DictConfig], Any],
    cfg: DictConfig,
    failures: tuple[type[BaseException], ...] = (),
) -> None:
    """Run a stage's ``run(cfg)`` from its ``@hydra.main`` and exit with the stage's documented code.

    ``run`` returns the exit code (anything but an int counts as 0). The error family
    (:class:`runtime.errors.LprError`) and the documented I/O errors become one line ``error: ...``
    on stderr and exit code 1 (``failures``: it ran and what it made failed a check) or 2 (the
    command could not run as asked). Anything else is a bug and shows its traceback. Hydra discards
    a task's return value, hence ``sys.exit``.
    """
    from stage.config_types import check_config_types

    problems = check_config_types(cfg)  # before any work: a wrong-typed value fails late otherwise
    if problems:
        print("error: " + "; ".join(problems), file=sys.stderr)
        sys.exit(2)
    try:
        result = run(cfg)
        code = result if isinstance(result, int) else 0
    except failures as e:
        print(f"error: {e}", file=sys.stderr)
        code = 1
    except (LprError, *IO_ERRORS) as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    except MissingMandatoryValue as e:  # a `???` key of the stage config that the command did not give
        print(f"error: {e.full_key} is required: give {e.full_key}=VALUE", file=sys.stderr)
        code = 2
    if code:
        sys.exit(code)
