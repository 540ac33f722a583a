"""``python -m runtime.bench SOURCE [--frames N] [--repeat R] [model options]``: one JSON object.

Measures, in one run on the same models and threads: ``pipeline_fps`` (Predictor.run: detection of
frame t+1 overlapping the reading of frame t), ``naive_fps`` (the seed's way: one frame at a time,
detector then one OCR call per crop), ``detector_only_fps`` (the plate detector alone, one frame at
a time), ``plates_per_frame`` and ``rss_mb`` (peak resident memory of the process). SOURCE is an
image folder or glob.

A video file instead measures the video pipeline (``Predictor.track``: tracking, OCR on demand)
against the detector alone on the same frames, decoded into memory first (``--frames`` caps them):
``pipeline_fps``, ``detector_only_fps``, their ratio and ``reads_per_frame`` (OCR crops per frame).
Make a test video with ``python -m data action=synth kind=video n=300 out=DIR``.
"""

from __future__ import annotations

import argparse
import json
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
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    try:
        predictor = predictor_from_args(args)
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
