"""Config values of the wrong type are caught before a stage does any work, naming the key.

Hydra takes ``epochs=abc`` or ``match.iou=abc`` as strings; without a check they fail deep inside
the stage (after the dataset was converted, as a traceback naming no key). The stage's own YAML
(and the group files chosen, e.g. ``model=plate_ocr``) is the schema: a key whose default there is
a boolean, integer or number must still be one. ``null`` stays allowed (a default that may be
switched off); an interpolated default counts with the type it resolves to among the defaults;
keys whose default is null or a string are not checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from stage.config import CONF_DIR


def _defaults(config_name: str, choices: Mapping[str, Any]) -> dict[str, Any]:
    base = OmegaConf.to_container(OmegaConf.load(CONF_DIR / f"{config_name}.yaml"), resolve=False)
    tree: dict[str, Any] = {k: v for k, v in base.items() if k not in ("defaults", "hydra")}
    for group, choice in choices.items():
        if group.startswith("hydra") or not isinstance(choice, str):
            continue
        file = CONF_DIR / group / f"{choice}.yaml"
        if not file.is_file() or "@package" in file.read_text().split("\n", 1)[0]:
            continue
        node = OmegaConf.to_container(OmegaConf.load(file), resolve=False)
        if not isinstance(node, dict):
            continue
        target = tree
        for part in group.split("/"):
            target = target.setdefault(part, {})
        if isinstance(target, dict):
            target.update({k: v for k, v in node.items() if k != "defaults"})
    return tree


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return None


def _fits(default: Any, value: Any) -> bool:
    if value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def type_problems(cfg: DictConfig, config_name: str, choices: Mapping[str, Any]) -> list[str]:
    """One line per key of ``cfg`` whose value is not of its default's type."""
    problems = []
    tree = _defaults(config_name, choices)
    resolvable = OmegaConf.create(tree)
    for path, default in _leaves(tree):
        if isinstance(default, str) and "${" in default:  # e.g. epochs: ${profile.${model.task}.epochs}
            try:
                default = OmegaConf.select(resolvable, path, throw_on_missing=False)
            except Exception:  # needs a resolver or key the defaults alone do not have
                continue
        kind = _kind(default)
        if kind is None:
            continue
        try:
            value = OmegaConf.select(cfg, path, throw_on_missing=False)
        except Exception:  # an interpolation that does not resolve: reported where it is used
            continue
        if not _fits(default, value):
            problems.append(f"{path}={value!r} must be {kind} (default {default!r})")
    return problems


def check_config_types(cfg: DictConfig) -> list[str]:
    """:func:`type_problems` for the running Hydra app's config (nothing outside one)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    hc = HydraConfig.get()
    return type_problems(cfg, str(hc.job.config_name), dict(hc.runtime.choices))
