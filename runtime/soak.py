"""A soak run: the tracked pipeline on one source for many minutes, watching what a leak would grow.

``python -m runtime.bench --soak MINUTES SOURCE``. SOURCE is a video file (played again from the
start each time it ends: a camera that never stops) or a live stream (an RTSP URL, a camera).
Every ``--soak-interval`` seconds (default 60) one JSON line: elapsed time, frames and FPS of the
interval, resident memory (RSS, from /proc), open file descriptors, threads (the operating
system's count), OCR reads and events so far. The last line is the verdict: growth of each
quantity from the first sample (taken after the first interval, once caches and pools are warm)
to the last, and ``ok`` when RSS grew less than ``max_rss_growth`` (5 %) and descriptors and
threads not at all. Exit status 0 when ok, 1 when something grew, 2 when the run could not start.

Measured figures go to docs/benchmarks.md with the command and date that produced them.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from runtime.config import StreamConfig, TrackConfig
from runtime.frames import Frame, is_stream_spec


def rss_mb() -> float:
    """This process's resident memory now (MiB): /proc/self/statm, else the peak (getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def open_files() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def os_threads() -> int:
    """Threads of this process as the kernel counts them (native ones included)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return threading.active_count()


def looping_frames(spec: str, config: StreamConfig, passes: list[int]) -> Iterator[Frame]:
    """Frames of ``spec`` numbered on across passes: a file starts again when it ends (``passes``
    counts them); a live source is read as it comes."""
    from runtime.streams import open_stream

    index = 0
    while True:
        with open_stream(spec, config) as stream:
            passes[0] += 1
            for frame in stream:
                yield Frame(source=stream.name, index=index, image=frame.image, timestamp=frame.timestamp)
                index += 1
            if stream.live:
                return


def soak(
    predictor: Any,
    spec: str,
    minutes: float,
    interval_s: float = 60.0,
    track_config: TrackConfig | None = None,
    max_rss_growth: float = 0.05,
    emit: Callable[[dict[str, Any]], None] = lambda line: print(json.dumps(line), flush=True),
) -> dict[str, Any]:
    """Run the tracked pipeline on ``spec`` for ``minutes``; ``emit`` one sample per interval and
    return the verdict (also emitted)."""
    if not is_stream_spec(spec):
        from runtime.errors import SourceError

        raise SourceError(f"{spec}: --soak needs a video file or a stream")
    passes = [0]
    frames = looping_frames(spec, StreamConfig(drop="never"), passes)
    run = predictor.track(frames, track_config)
    start = last = time.monotonic()
    end = start + minutes * 60.0
    count = last_count = events = 0
    samples: list[dict[str, Any]] = []
    try:
        for item in run:
            if hasattr(item, "plates"):
                count += 1
            else:
                events += 1
            now = time.monotonic()
            if now - last >= interval_s or now >= end:
                sample = {
                    "elapsed_s": round(now - start, 1),
                    "frames": count,
                    "fps": round((count - last_count) / (now - last), 2),
                    "rss_mb": round(rss_mb(), 1),
                    "open_files": open_files(),
                    "threads": os_threads(),
                    "reads": run.stats.reads,
                    "events": events,
                    "passes": passes[0],
                }
                samples.append(sample)
                emit(sample)
                last, last_count = now, count
            if now >= end:
                break
    finally:
        run.close()
    return verdict(samples, max_rss_growth, emit)


def verdict(
    samples: list[dict[str, Any]], max_rss_growth: float, emit: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Growth from the first sample to the last; ok when RSS grew < max_rss_growth and open
    descriptors and threads did not grow."""
    if len(samples) < 2:
        out = {"verdict": True, "ok": False, "reason": "fewer than two samples: run longer than one interval"}
        emit(out)
        return out
    first, final = samples[0], samples[-1]
    rss_growth = (final["rss_mb"] - first["rss_mb"]) / first["rss_mb"]
    out = {
        "verdict": True,
        "samples": len(samples),
        "frames": final["frames"],
        "fps_mean": round(sum(s["fps"] for s in samples) / len(samples), 2),
        "rss_first_mb": first["rss_mb"],
        "rss_last_mb": final["rss_mb"],
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "rss_growth": round(rss_growth, 4),
        "open_files_growth": final["open_files"] - first["open_files"],
        "threads_growth": final["threads"] - first["threads"],
        "max_rss_growth": max_rss_growth,
    }
    files_growth = final["open_files"] - first["open_files"]
    threads_growth = final["threads"] - first["threads"]
    out["ok"] = bool(rss_growth < max_rss_growth and files_growth <= 0 and threads_growth <= 0)
    emit(out)
    return out


def main_soak(predictor: Any, args: Any) -> int:
    from runtime.cli.args import parse_settings

    config = TrackConfig.from_dict(parse_settings(args.track, TrackConfig, "--track"))
    result = soak(predictor, str(args.source), float(args.soak), float(args.soak_interval), config)
    if not result.get("ok"):
        print(f"soak: {result.get('reason') or 'something grew'}: {json.dumps(result)}", file=sys.stderr)
    return 0 if result.get("ok") else 1
