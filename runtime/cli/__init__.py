"""``python -m runtime SOURCE [--backend onnx|degirum] [--zoo DIR] [--json] [--save DIR|FILE.mp4]``

SOURCE is an image, a folder (searched recursively) or a glob; or a video: a file, a camera index,
an RTSP/HTTP URL or ``picamera``. Images: without ``--json`` one line per image
(``path: TEXT (score) ...``); with it, JSON Lines
``{"source": path, "frame": n, "plates": [{"text", "score", "box", "det_score", "chars", "lines",
"candidates", ...}]}``. Video: plates are tracked and read on demand (runtime/video.py); the text
output is one line per plate event, ``--json`` gives a line per frame (plates with ``track_id``)
and the events (``{"event": "plate", ...}``, stream outages) between them.

Exit status: 0 fine; 1 some images or frames could not be read, saved or printed (each reported,
the run went on); 2 bad model, source or option (nothing ran); 3 a stream was lost for good after
its reconnects; 128 + N stopped by signal N (143 SIGTERM, 130 Ctrl-C) after finishing the frames
in flight, reporting the open tracks and closing the annotated video.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.cli.args import add_event_arguments, add_model_arguments, add_video_arguments


def main(argv: list[str] | None = None) -> int:
    # File names that are not UTF-8 reach Python with surrogate escapes; print them as \xNN.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return _main(argv)
    except BrokenPipeError:  # `python -m runtime ... | head`: the reader left; that is not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runtime", description="Read licence plates in images and video."
    )
    parser.add_argument(
        "source",
        nargs="?",
        help="an image, a folder of images, a glob (quote it), a video file, a camera "
        "index, an rtsp:// or http:// URL, or picamera (or --cameras FILE.yaml instead)",
    )
    parser.add_argument(
        "--list-regions", action="store_true", help="print the region rules --region takes, one line each"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON Lines (images: one per image; video: one per frame, plus events)",
    )
    parser.add_argument(
        "--save",
        type=Path,
        default=None,
        metavar="PATH",
        help="images: a folder for annotated images; video: an .mp4/.avi file (or a folder)",
    )
    add_model_arguments(parser)
    add_video_arguments(parser)
    add_event_arguments(parser)
    args = parser.parse_args(argv)
    if args.list_regions:
        from runtime.rules import region_lines

        print("\n".join(region_lines()))
        return 0
    from runtime.frames import is_stream_spec

    if args.cameras is not None:
        if args.source is not None:
            parser.error("give SOURCE or --cameras FILE.yaml, not both")
        from runtime.cli.video import run_cameras

        return run_cameras(args)
    if args.source is None:
        parser.error("SOURCE is required (or --cameras FILE.yaml)")

    if is_stream_spec(args.source):
        from runtime.cli.video import run_video

        return run_video(args)
    from runtime.cli.images import run_images

    return run_images(args)
