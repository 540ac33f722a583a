"""``python -m runtime.bench SOURCE [--frames N] [--repeat R] [model options]``: one JSON object.

Measures, in one run on the same models and threads: ``pipeline_fps`` (Predictor.run: detection of
frame t+1 overlapping the reading of frame t), ``naive_fps`` (the seed's way: one frame at a time,
detector then one OCR call per crop), ``detector_only_fps`` (the plate detector alone, one frame at
a time), ``plates_per_frame``, ``zoom_out_passes_per_frame`` (the zoomed-out look's second
detections), ``cpu_ms_per_frame`` and ``rss_mb`` (peak resident memory of the process). SOURCE is an
image folder or glob.

A video file instead measures the video pipeline (``Predictor.track``: tracking, OCR on demand)
against the detector alone on the same frames, decoded into memory first (``--frames`` caps them):
``pipeline_fps``, ``detector_only_fps``, their ratio, ``reads_per_frame`` (OCR crops per frame),
``zoom_out_passes_per_frame`` and ``cpu_ms_per_frame``.
``--cameras N`` runs N cameras at once on those frames (as ``--cameras cameras.yaml`` does: threads,
one model pair) against one camera alone: ``total_fps``, ``total_vs_one_camera``, ``rss_vs_one_camera``.
Make a test video with ``python -m data action=synth kind=video n=300 out=DIR``.

``--soak MINUTES``: a soak run instead (runtime/soak.py): the tracked pipeline for MINUTES on the
video (looped) or stream, one JSON line of RSS, open files, threads and FPS per ``--soak-interval``,
then a verdict line; exit 1 when memory, descriptors or threads grew.
Every mode also reports ``wait_share``: per model (detector, ocr), the share of the run during which
a request to it was outstanding - the model near 1.0 in the pipeline is the one bounding its rate.

``--backend`` given several times (``--backend onnx --backend degirum``) measures each backend in a
process of its own, one after the other (so each one's ``rss_mb`` is its own), and prints one JSON
object ``{"source", "backends": {name: result}}``, with a table of the main figures on stderr.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from runtime.cli.args import SETUP_ERRORS, add_model_arguments, parse_settings, predictor_from_args
from runtime.config import StreamConfig, TrackConfig
from runtime.frames import VIDEO_SUFFIXES


def _video(predictor, args: argparse.Namespace) -> dict:
    from runtime.streams import open_stream
    from runtime.video import benchmark_video

    frames = []
    with open_stream(args.source, StreamConfig(drop="never")) as stream:
        for frame in stream:
            frames.append(frame)
            if args.frames is not None and len(frames) >= args.frames:
                break
    for frame in frames[: args.warmup]:
        predictor.predict(frame.image)
    config = TrackConfig.from_dict(parse_settings(args.track, TrackConfig, "--track"))
    if args.cameras > 1:
        from runtime.cameras import benchmark_cameras

        return {
            "source": str(args.source),
            **benchmark_cameras(predictor, frames, args.cameras, args.repeat, config),
        }
    return {"source": str(args.source), **benchmark_video(predictor, frames, args.repeat, config)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a folder of images, a glob (quote it) or a video file")
    parser.add_argument(
        "--frames", type=int, default=None, help="repeat or cut the images to this many frames"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the best counts (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="frames read before timing (default 2)")
    parser.add_argument(
        "--track",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="video: tracking and voting settings (runtime.config.TrackConfig)",
    )
    parser.add_argument(
        "--cameras",
        type=int,
        default=1,
        help="video: run this many cameras at once on the video's frames, one model pair for all, "
        "against one camera alone (total FPS, memory)",
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=None,
        metavar="MINUTES",
        help="soak run: the tracked pipeline on SOURCE (a video, looped; or a stream) for MINUTES, "
        "printing RSS, open files, threads and FPS each interval (runtime/soak.py)",
    )
    parser.add_argument(
        "--soak-interval", type=float, default=60.0, metavar="SECONDS", help="soak: seconds per sample"
    )
    add_model_arguments(parser, several_backends=True)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    backends = list(dict.fromkeys(args.backend or ["onnx"]))
    if len(backends) > 1:
        return _compare(argv, backends, args.source)
    args.backend = backends[0]
    if args.cameras < 1:
        parser.error("--cameras must be at least 1")
    try:
        predictor = predictor_from_args(args)
        if args.soak is not None:
            from runtime.soak import main_soak

            with predictor:
                return main_soak(predictor, args)
        with predictor:
            if Path(args.source).suffix.lower() in VIDEO_SUFFIXES:
                result = _video(predictor, args)
            else:
                result = predictor.benchmark(
                    args.source, frames=args.frames, repeat=args.repeat, warmup=args.warmup
                )
    except SETUP_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def _without_backend(argv: list[str]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--backend":
            skip = True
        elif not item.startswith("--backend="):
            out.append(item)
    return out


MODES = ("pipeline", "naive", "detector_only", "detector_only_parallel")


def _compare(argv: list[str], backends: list[str], source: str) -> int:
    """Each backend measured by a child process of its own; one JSON object, a table on stderr."""
    rest = _without_backend(argv)
    results: dict[str, dict] = {}
    for backend in backends:
        child = subprocess.run(
            [sys.executable, "-m", "runtime.bench", *rest, "--backend", backend],
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            print(
                f"error: {backend}: {child.stderr.strip().splitlines()[-1:] or child.returncode}",
                file=sys.stderr,
            )
            return child.returncode
        results[backend] = json.loads(child.stdout.strip().splitlines()[-1])
    print(_table(results), file=sys.stderr)
    print(json.dumps({"source": str(source), "backends": results}))
    return 0


def _table(results: dict[str, dict]) -> str:
    modes = [m for m in MODES if any(f"{m}_fps" in r for r in results.values())]
    head = [
        "backend",
        *(f"{m} fps" for m in modes),
        "pipeline/naive",
        "pipeline/detector",
        "waiting: det / ocr",
        "rss MB",
    ]
    rows = [head]
    for name, r in results.items():
        share = r.get("wait_share", {}).get("pipeline", {})
        rows.append(
            [
                name,
                *(str(r.get(f"{m}_fps", "-")) for m in modes),
                str(r.get("pipeline_vs_naive", "-")),
                str(r.get("pipeline_vs_detector_only", "-")),
                f"{share.get('detector', 0):.2f} / {share.get('ocr', 0):.2f}",
                str(r.get("rss_mb", "-")),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
