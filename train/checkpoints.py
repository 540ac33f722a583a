"""Which PyTorch checkpoints may be unpickled: ours, or the ones the user vouches for.

A ``.pt`` file is a pickle: loading it (Ultralytics' ``YOLO(path)``, ``torch.load``) runs whatever
code it carries, before any check of what it holds. So a checkpoint is loaded only when

* its sha256 is in the local registry of checkpoints this machine's own runs wrote
  (``paths.trusted_checkpoints``; train records ``best.pt`` and ``last.pt`` each time it saves
  them, export records the weights it exported), or
* it is one of the project's own shipped checkpoints (``weights/SHA256SUMS``, in the repository
  beside them, as trusted as the code that reads it), or
* the user says so: ``trust_checkpoint=true`` (then it is recorded, so the next stage need not
  be told again).

The registry is a plain ``sha256sum`` file kept under the runs folder, not beside the weights: a
record travelling with the checkpoint would vouch for itself. Ultralytics checkpoints hold pickled
model objects, so ``torch.load(weights_only=True)`` cannot read them; the registry is the check.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from runtime.errors import InputError, LprError
from stage.config import PROJECT_ROOT
from stage.files import sha256_file


class UntrustedCheckpointError(LprError, ValueError):
    """A checkpoint that is neither recorded as ours nor vouched for: it was not opened."""


def registry_path(cfg) -> Path:
    """The registry a stage config names (``paths.trusted_checkpoints``)."""
    return Path(str(cfg.paths.trusted_checkpoints))


SHIPPED = PROJECT_ROOT / "weights" / "SHA256SUMS"
"""The sha256 of the checkpoints the repository ships (``sha256sum`` format)."""


def _recorded(registry: Path) -> set[str]:
    digests: set[str] = set()
    for path in (registry, SHIPPED):
        if path.is_file():
            digests |= {
                line.split()[0] for line in path.read_text(errors="replace").splitlines() if line.strip()
            }
    return digests


def record_checkpoint(path: str | os.PathLike, registry: Path) -> str:
    """Add ``path``'s sha256 to the registry (once); returns it."""
    digest = sha256_file(path)
    registry.parent.mkdir(parents=True, exist_ok=True)
    with registry.open("a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # parallel runs append whole lines
        f.seek(0)
        if digest not in {line.split()[0] for line in f.read().splitlines() if line.strip()}:
            f.write(f"{digest}  {Path(path).resolve()}\n")
    return digest


def require_trusted(path: str | os.PathLike, registry: Path, trust: bool, key: str) -> str:
    """``path``'s sha256 when it may be unpickled; UntrustedCheckpointError naming the file, its
    hash and the two ways to proceed otherwise. ``key``: the config key that named the file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{key}={p}: no such file")
    if not isinstance(trust, bool):
        raise InputError(f"trust_checkpoint must be true or false, got {trust!r}")
    digest = sha256_file(p)
    if trust:
        record_checkpoint(p, registry)
        return digest
    if digest not in _recorded(registry):
        raise UntrustedCheckpointError(
            f"{key}={p}: a PyTorch checkpoint (sha256 {digest}) that no run on this machine wrote "
            f"(not in {registry}); loading it would run the code it may carry. If you trust where it "
            "came from, add trust_checkpoint=true"
        )
    return digest
