"""Throughput of the synthetic engine on ONE core: ``python -m data.synth.bench [--crops N] [--scenes N]``.

Prints JSON: images per second for OCR crops and for scenes, files written included (one worker,
OpenCV single-threaded). Targets: >= 300 crops/s and >= 20 scenes/s. A warm-up set (half as many images,
same seed) is made first so the work done once per process (rendering glyphs and texts, decoding the
background pool) is not counted: a long run pays it once.

Files go where a real run writes them, a temporary folder under the runs folder (``LPR_RUNS``,
default ``runs/``; ``--tmp`` elsewhere): creating a small file in this machine's /tmp costs 0.9 ms
of CPU against 0.06 ms under /work (measured), a fifth of a crop's whole budget.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def _rate(kind: str, n: int, seed: int, root: Path, real: bool) -> dict[str, float]:
    from data.synth import generate

    opts = {} if real else {"background_manifests": []}
    generate(kind, max(64, n // 2), seed, root / f"warm_{kind}", progress=False, **opts)
    t0, c0 = time.perf_counter(), time.process_time()
    generate(kind, n, seed, root / kind, progress=False, **opts)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    # per_second: wall clock; per_cpu_second: this process' own CPU time (differs when the core is shared)
    return {"n": n, "seconds": round(dt, 3), "per_second": round(n / dt, 1), "per_cpu_second": round(n / dc, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=600)
    ap.add_argument("--scenes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--procedural", action="store_true", help="no real backgrounds even when present")
    ap.add_argument("--tmp", type=Path, default=None,
                    help="folder for the bench's temporary files (default: the runs folder, LPR_RUNS or runs/)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):  # one core, as the target says
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    tmp_root = args.tmp or Path(os.environ.get("LPR_RUNS") or Path(__file__).resolve().parents[2] / "runs")
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="synth_bench_", dir=tmp_root) as tmp:
        root = Path(tmp)
        result = {
            "crops": _rate("crops", args.crops, args.seed, root, not args.procedural),
            "scenes": _rate("scenes", args.scenes, args.seed, root, not args.procedural),
            "cores": 1,
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "cpu_count": os.cpu_count(),
            "written_to": str(tmp_root),
        }
    result["targets_met"] = result["crops"]["per_second"] >= 300 and result["scenes"]["per_second"] >= 20
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
