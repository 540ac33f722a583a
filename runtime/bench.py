"""``python -m runtime.bench SOURCE [--frames N] [--repeat R] [model options]``: one JSON object.

Measures, in one run on the same models and threads: ``pipeline_fps`` (Predictor.run: detection of
frame t+1 overlapping the reading of frame t), ``naive_fps`` (the seed's way: one frame at a time,
detector then one OCR call per crop), ``detector_only_fps`` (the plate detector alone, one frame at
a time), ``plates_per_frame`` and ``rss_mb`` (peak resident memory of the process). SOURCE is an
image folder or glob (video sources come with the video issue).
"""

from __future__ import annotations

import argparse
import json
import sys

from runtime.cli import SETUP_ERRORS, add_model_arguments, predictor_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a folder of images or a glob (quote it)")
    parser.add_argument("--frames", type=int, default=None, help="repeat or cut the images to this many frames")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the best counts (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="frames read before timing (default 2)")
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    try:
        predictor = predictor_from_args(args)
        with predictor:
            result = predictor.benchmark(args.source, frames=args.frames, repeat=args.repeat, warmup=args.warmup)
    except SETUP_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
