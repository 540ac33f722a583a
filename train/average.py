"""One checkpoint from several fine-tunes of the same model: their weights averaged.

Two fine-tuning rounds from the same start often each gain on some held-out sets and lose on
others (runtime/zoo/MODEL_CARD.md, issue 17 rounds). Averaging their weights ("model soup",
Wortsman et al. 2022) gives one model that usually keeps most of both gains, at no training cost
and no cost at run time: it is one network of the same size. It only makes sense for checkpoints
that share a start (the same architecture, classes and init), which is checked here: a shape or
class-name mismatch is an error naming the file.

Floating tensors (weights, BatchNorm statistics) are averaged in float32 with the given shares and
stored in the first checkpoint's dtype; integer buffers (BatchNorm's batch counter) are taken from
the first. The result is written like ``action=publish`` writes (no path of this machine inside),
with provenance listing each part: its sha256, share and training-set hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from train.checkpoints import registry_path, require_trusted
from train.errors import TrainError
from train.publish import PROVENANCE_KEY, load_checkpoint, make_portable, training_set_hash, write_checkpoint


def _load(path: Path, registry: Path, trust: bool) -> tuple[dict[str, Any], str]:
    digest = require_trusted(path, registry, trust, "average.weights")
    return load_checkpoint(path, "average.weights"), digest


def _shares(shares: list[float] | None, n: int) -> list[float]:
    if not shares:
        return [1.0 / n] * n
    if len(shares) != n:
        raise TrainError(f"average.shares has {len(shares)} values for {n} average.weights")
    if any(s < 0 for s in shares) or sum(shares) <= 0:
        raise TrainError(f"average.shares must be non-negative with a positive sum, got {list(shares)}")
    total = float(sum(shares))
    return [float(s) / total for s in shares]


def average_checkpoints(
    weights: list[Path],
    out: Path,
    registry: Path,
    shares: list[float] | None = None,
    trust: bool = False,
) -> dict[str, Any]:
    """Write the weighted average of ``weights`` (Ultralytics checkpoints of one model) at ``out``;
    returns what was written (``out``, ``sha256``, ``parts``)."""
    if len(weights) < 2:
        raise TrainError(f"average.weights needs at least two checkpoints, got {len(weights)}")
    share = _shares(shares, len(weights))
    loaded = [_load(Path(w), registry, trust) for w in weights]
    base, _ = loaded[0]
    nets = [ckpt["model"] for ckpt, _ in loaded]
    names = getattr(nets[0], "names", None)
    states = [net.state_dict() for net in nets]
    for path, net, state in zip(weights[1:], nets[1:], states[1:], strict=True):
        if getattr(net, "names", None) != names:
            raise TrainError(
                f"average.weights: {path} has classes {getattr(net, 'names', None)}, {weights[0]} has {names}"
            )
        diff = sorted(
            k for k in states[0] if k not in state or tuple(state[k].shape) != tuple(states[0][k].shape)
        )
        if diff or set(state) - set(states[0]):
            raise TrainError(
                f"average.weights: {path} is not the same network as {weights[0]} "
                f"(differs at {(diff or sorted(set(state) - set(states[0])))[:3]})"
            )
    averaged = {}
    for key, first in states[0].items():
        if not first.is_floating_point():
            averaged[key] = first.clone()
            continue
        total = sum(s * state[key].float() for s, state in zip(share, states, strict=True))
        averaged[key] = total.to(first.dtype)
    nets[0].load_state_dict(averaged)
    base["model"] = nets[0]
    base["ema"] = None
    for stale in ("optimizer", "updates", "best_fitness", "train_metrics", "train_results"):
        if stale in base:
            base[stale] = None  # they describe one part's run, not the average
    make_portable(base)
    parts = [
        {
            "file": Path(w).name,
            "sha256": digest,
            "share": round(s, 6),
            "training_set_hash": training_set_hash(Path(w), ckpt),
        }
        for w, (ckpt, digest), s in zip(weights, loaded, share, strict=True)
    ]
    # One hash for "trained on these sets in these shares": export reports it as the training set.
    joined = ";".join(f"{p['training_set_hash']}:{p['share']}" for p in parts)
    base[PROVENANCE_KEY] = {
        "training_set_hash": hashlib.sha256(joined.encode()).hexdigest(),
        "averaged_from": parts,
    }
    written = write_checkpoint(base, out, registry, [Path(w) for w in weights], key="average.weights")
    return written | {"parts": parts}


def run_average(cfg: DictConfig) -> dict[str, Any]:
    a = cfg.average
    if not a.weights or not a.out:
        raise TrainError("action=average needs average.weights=[A.pt,B.pt,...] and average.out=OUT.pt")
    weights = [Path(str(w)) for w in a.weights]
    shares = [float(s) for s in a.shares] if a.shares else None
    result = average_checkpoints(
        weights, Path(str(a.out)), registry_path(cfg), shares, bool(cfg.trust_checkpoint)
    )
    where = " (weights/SHA256SUMS updated)" if result["shipped"] else ""
    parts = ", ".join(f"{p['file']} x {p['share']:.3g}" for p in result["parts"])
    print(f"averaged {parts} -> {result['out']}: sha256 {result['sha256']}{where}")
    return result
