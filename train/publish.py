"""A checkpoint to share: the run's weights without the paths of the machine that trained them.

An Ultralytics checkpoint remembers where its run lay: ``train_args`` and the model's ``args``
name the run folder, the cached data.yaml and the model yaml by absolute path, the model's yaml
keeps ``yaml_file``, and ``git.root`` names the checkout. A run's own ``last.pt`` needs them (resume
reads them back), so training leaves them in; a checkpoint that leaves the machine must not carry
them. ``publish`` writes a copy in which every absolute path is cut to its file name and the run's
provenance travels inside the file (``lpr.training_set_hash``, read back by export), so a model
exported from the copy reports what it was trained on although the run folder is not there.

Publishing into the shipped weights folder (``paths.weights``) also updates its ``SHA256SUMS``:
those are the checkpoints train and export unpickle without being told to trust them
(train/checkpoints.py).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from train.checkpoints import SHIPPED, record_checkpoint, registry_path, require_trusted
from train.errors import TrainError

PROVENANCE_KEY = "lpr"
"""The checkpoint key holding what the project adds: ``{"training_set_hash": ..., "run": ...}``."""


def _is_machine_path(value: str) -> bool:
    # POSIX or Windows absolute paths (a checkpoint may come from either); URLs are not paths.
    return "://" not in value and (os.path.isabs(value) or (len(value) > 2 and value[1:3] in (":\\", ":/")))


def _file_name(value: str) -> str:
    return value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def cut_paths(obj: Any) -> tuple[Any, int]:
    """``obj`` (dicts, lists, tuples, strings) with every absolute path cut to its file name, and
    how many were cut. Other values are returned as they are."""
    if isinstance(obj, str):
        return (_file_name(obj), 1) if _is_machine_path(obj) else (obj, 0)
    if isinstance(obj, dict):
        out, n = {}, 0
        for k, v in obj.items():
            out[k], m = cut_paths(v)
            n += m
        return out, n
    if isinstance(obj, (list, tuple)):
        items = [cut_paths(v) for v in obj]
        return type(obj)(v for v, _ in items), sum(m for _, m in items)
    return obj, 0


def machine_paths(ckpt: dict[str, Any]) -> list[str]:
    """Where in a loaded checkpoint an absolute path remains (``key.path: value``): the dict itself
    and the ``args`` / ``yaml`` / ``pt_path`` of its model and EMA objects."""
    found: list[str] = []

    def walk(obj: Any, where: str) -> None:
        if isinstance(obj, str):
            if _is_machine_path(obj):
                found.append(f"{where}: {obj}")
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{where}.{k}" if where else str(k))
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(v, f"{where}[{i}]")

    for key, value in ckpt.items():
        if key in ("model", "ema"):
            for attr in ("args", "yaml", "pt_path"):
                walk(getattr(value, attr, None), f"{key}.{attr}")
        else:
            walk(value, key)
    return found


def _run_provenance(weights: Path) -> dict[str, Any]:
    """What the run folder above ``weights/`` knows (training_set.json), if it is still there."""
    record = weights.resolve().parent.parent / "training_set.json"
    try:
        train_hash = json.loads(record.read_text()).get("train_hash")
    except (OSError, json.JSONDecodeError):
        return {}
    return {"training_set_hash": train_hash, "run": weights.resolve().parent.parent.name}


def training_set_hash(weights: Path, ckpt: dict[str, Any] | None) -> str | None:
    """The training set hash of the run ``weights`` came from: recorded inside a published
    checkpoint, else in training_set.json of the run folder above ``weights/``."""
    recorded = provenance(ckpt).get("training_set_hash")
    if recorded:
        return str(recorded)
    return _run_provenance(weights).get("training_set_hash")


def publish_checkpoint(
    src: Path,
    out: Path,
    registry: Path,
    trust: bool = False,
    training_set_hash: str | None = None,
    sums: Path = SHIPPED,
) -> dict[str, Any]:
    """Write ``src`` as a portable checkpoint at ``out`` (``src`` itself may be ``out``); returns
    what was done (``paths_cut``, ``sha256``, the provenance recorded). When ``out`` lies in the
    folder of ``sums`` (the shipped weights' SHA256SUMS), its line there is replaced."""
    require_trusted(src, registry, trust, "publish.weights")
    ckpt = load_checkpoint(src, "publish.weights")
    cut = make_portable(ckpt)
    provenance = dict(ckpt.get(PROVENANCE_KEY) or {})
    provenance.update({k: v for k, v in _run_provenance(src).items() if v})
    if training_set_hash:
        provenance["training_set_hash"] = str(training_set_hash)
    ckpt[PROVENANCE_KEY] = provenance
    return write_checkpoint(ckpt, out, registry, [src], sums, "publish.weights") | {
        "paths_cut": cut,
        "provenance": provenance,
    }


def load_checkpoint(src: Path, key: str) -> dict[str, Any]:
    """Unpickle ``src`` (call only after ``require_trusted``): an Ultralytics checkpoint, or a
    TrainError naming the file and the config ``key`` that named it."""
    import torch

    try:
        ckpt = torch.load(src, map_location="cpu", weights_only=False)  # trusted by the caller
    except Exception as e:  # a truncated or foreign file: pickle, zip and torch errors alike
        raise TrainError(f"{key}={src}: not a PyTorch checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("model") is None:
        raise TrainError(f"{key}={src}: not an Ultralytics checkpoint (no 'model' entry)")
    return ckpt


def make_portable(ckpt: dict[str, Any]) -> int:
    """Cut every absolute path in ``ckpt`` (in place) to its file name; returns how many were cut."""
    cut = 0
    for key in list(ckpt):
        if key in ("model", "ema"):
            continue
        ckpt[key], n = cut_paths(ckpt[key])
        cut += n
    if isinstance(ckpt.get("git"), dict) and "root" in ckpt["git"]:
        ckpt["git"]["root"] = None  # the checkout's folder says nothing once the file has left it
    for key in ("model", "ema"):
        net = ckpt.get(key)
        if net is None:
            continue
        for attr in ("args", "yaml", "pt_path"):
            if hasattr(net, attr):
                value, n = cut_paths(getattr(net, attr))
                setattr(net, attr, value)
                cut += n
    return cut


def write_checkpoint(
    ckpt: dict[str, Any], out: Path, registry: Path, srcs: list[Path], sums: Path = SHIPPED, key: str = "out"
) -> dict[str, Any]:
    """Save a portable ``ckpt`` at ``out`` atomically, record it as trusted in ``registry``, and
    update ``sums`` when ``out`` lies in its folder. ``srcs``: the checkpoints it was made from (the
    paths of their run folders must not appear in the saved bytes); ``key``: the config key that
    named them, for errors."""
    import torch

    left = machine_paths(ckpt)
    if left:  # a new Ultralytics version storing paths elsewhere must not slip through
        raise TrainError(f"{key}={srcs[0]}: absolute paths remain after publishing: {left[:5]}")

    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: publishing in place never leaves half a checkpoint.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        torch.save(ckpt, tmp)
        _check_bytes(tmp, srcs, key)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp's 0600 would hide a shared checkpoint from its users
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    digest = record_checkpoint(out, registry)
    shipped = out.resolve().parent == sums.parent.resolve()
    if shipped:
        _update_sums(sums, out.name, digest)
    return {"out": str(out), "sha256": digest, "shipped": shipped}


def _check_bytes(saved: Path, srcs: list[Path], key: str) -> None:
    """The saved pickle must not name this machine's folders anywhere, also in places the walk of
    known keys does not reach (an attribute a later Ultralytics adds)."""
    import zipfile

    from stage.config import PROJECT_ROOT

    runs = {src.resolve().parent.parent for src in srcs}
    folders = {PROJECT_ROOT.resolve(), Path.home().resolve(), Path.cwd().resolve()} | runs
    needles = {str(f).encode() for f in folders if len(f.parts) > 2}  # "/" or "/root" alone say nothing
    with zipfile.ZipFile(saved) as z:
        pickles = [z.read(n) for n in z.namelist() if n.endswith(".pkl")]
    found = sorted(n.decode() for n in needles for data in pickles if n in data)
    if found:
        raise TrainError(f"{key}={srcs[0]}: the published pickle still names {found}")


def _update_sums(sums: Path, name: str, digest: str) -> None:
    lines = [
        line
        for line in (sums.read_text().splitlines() if sums.is_file() else [])
        if line.strip() and line.split()[-1] != name
    ]
    lines.append(f"{digest}  {name}")
    sums.write_text("\n".join(sorted(lines, key=lambda line: line.split()[-1])) + "\n")


def provenance(ckpt: dict[str, Any] | None) -> dict[str, Any]:
    """The provenance a published checkpoint carries (empty for a run's own checkpoints)."""
    return dict((ckpt or {}).get(PROVENANCE_KEY) or {})


def run_publish(cfg: DictConfig) -> dict[str, Any]:
    p = cfg.publish
    if not p.weights:
        raise TrainError("action=publish needs publish.weights=RUN/weights/last.pt")
    src = Path(str(p.weights))
    out = Path(str(p.out)) if p.out else src.with_name(f"{src.stem}_portable.pt")
    result = publish_checkpoint(
        src, out, registry_path(cfg), bool(cfg.trust_checkpoint), p.get("training_set_hash")
    )
    where = " (weights/SHA256SUMS updated)" if result["shipped"] else ""
    trained_on = result["provenance"].get("training_set_hash") or "unknown"
    print(
        f"published {src} -> {out}: {result['paths_cut']} machine paths cut, "
        f"sha256 {result['sha256']}{where}; training set {trained_on}"
    )
    return result
