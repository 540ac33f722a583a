"""``python -m runtime SOURCE [--backend onnx|degirum] [--zoo DIR] [--json] [--save DIR|FILE.mp4] [--display]``

SOURCE is an image, a folder (searched recursively) or a glob; or a video: a file, a camera index,
an RTSP/HTTP URL or ``picamera``. Images: without ``--json`` one line per image
(``path: TEXT (score) ...``); with it, JSON Lines
``{"source": path, "frame": n, "plates": [{"text", "score", "box", "det_score", "chars", "lines",
"candidates", ...}]}``. Video: plates are tracked and read on demand (runtime/video.py); the text
output is one line per plate event, ``--json`` gives a line per frame (plates with ``track_id``)
and the events (``{"event": "plate", ...}``, stream outages) between them.

Exit status: 0 fine; 1 some images or frames could not be read (each reported, the run went on);
2 bad model, source or option (nothing ran); 3 a stream was lost for good after its reconnects.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from runtime.backends import BACKENDS, BackendError
from runtime.config import PipelineConfig, TrackConfig
from runtime.metadata import ModelMetadataError
from runtime.model_zoo import DEFAULT_ZOO, ZooError
from runtime.rules import RulesError
from runtime.sources import SourceError

SETUP_ERRORS = (
    SourceError,
    ZooError,
    BackendError,
    RulesError,
    ModelMetadataError,
    FileNotFoundError,
    ValueError,
)


def add_model_arguments(parser: argparse.ArgumentParser, several_backends: bool = False) -> None:
    """Options shared by ``python -m runtime`` and ``python -m runtime.bench`` (which may name
    ``--backend`` several times: ``args.backend`` is then a list, None when not given)."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None if several_backends else "onnx",
        action="append" if several_backends else "store",
        help="inference backend (default: onnx)"
        + ("; repeat it to compare backends" if several_backends else ""),
    )
    parser.add_argument("--zoo", type=Path, default=None, help=f"model zoo folder (default: {DEFAULT_ZOO})")
    parser.add_argument(
        "--det-model", default=None, help="plate detector by model name, when the zoo has several"
    )
    parser.add_argument("--ocr-model", default=None, help="OCR model by model name, when the zoo has several")
    parser.add_argument("--precision", default=None, help="pick models of this precision (fp32, int8)")
    parser.add_argument(
        "--region", default=None, help="region rules: a name in runtime/regions/ or a YAML file"
    )
    parser.add_argument(
        "--host", default="@local", help="degirum: @local, @cloud or an AI server host[:port]"
    )
    parser.add_argument(
        "--zoo-url", default=None, help="degirum: the server's or cloud's zoo (default: --zoo's entries)"
    )
    parser.add_argument("--token", default=None, help="degirum: cloud token")
    parser.add_argument("--det-conf", type=float, default=None, help="minimum plate score")
    parser.add_argument("--ocr-conf", type=float, default=None, help="minimum character score")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per session")
    parser.add_argument(
        "--workers", type=int, default=None, help="frames detected at once (0 = one per core)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any pipeline setting (" + ", ".join(f.name for f in fields(PipelineConfig)) + ")",
    )


def parse_settings(items: list[str], cls: type, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings to typed values for the fields of dataclass ``cls``; ValueError naming
    the flag and the item when a key is unknown or a value does not parse."""
    values: dict[str, Any] = {}
    types = {f.name: str(f.type) for f in fields(cls)}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in types:
            raise ValueError(f"{flag} {item!r}: expected KEY=VALUE with KEY one of {sorted(types)}")
        kind = types[key]
        try:
            if kind.startswith("bool"):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                values[key] = raw.lower() in ("true", "1", "yes")
            else:
                values[key] = (
                    float(raw)
                    if kind.startswith("float")
                    else int(raw)
                    if kind.startswith("int")
                    else None
                    if raw.lower() in ("", "none", "null")
                    else raw
                )
        except ValueError:
            raise ValueError(f"{flag} {item!r}: {raw!r} is not a valid {kind.split(' ')[0]}") from None
    return values


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    values = parse_settings(args.set, PipelineConfig, "--set")
    for key in ("det_conf", "ocr_conf", "threads", "workers", "region"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    return PipelineConfig.from_dict(values)


def predictor_from_args(args: argparse.Namespace):
    from runtime.pipeline import Predictor

    options: dict[str, Any] = {}
    if args.backend == "degirum":
        options = {"host": args.host, "zoo_url": args.zoo_url, "token": args.token}
    # A zoo with the detector at several input shapes: the one shaped like the source's frames.
    aspect = None
    if args.det_model is None and getattr(args, "source", None) is not None:
        from runtime.source_shape import source_aspect

        aspect = source_aspect(args.source)
    return Predictor(
        args.zoo,
        args.backend,
        config_from_args(args),
        det_model=args.det_model,
        ocr_model=args.ocr_model,
        precision=args.precision,
        aspect=aspect,
        **options,
    )


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of video sources (files, cameras, streams)."""
    from runtime.config import StreamConfig

    group = parser.add_argument_group("video")
    group.add_argument(
        "--display", action="store_true", help="show the annotated video in a window ('q' quits)"
    )
    group.add_argument(
        "--events-only", action="store_true", help="with --json: only the events, no line per frame"
    )
    group.add_argument(
        "--realtime",
        action="store_true",
        help="play a video file at its frame rate like a camera (frames are dropped when behind)",
    )
    group.add_argument(
        "--track",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="tracking and voting (" + ", ".join(f.name for f in fields(TrackConfig)) + ")",
    )
    group.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="stream handling (" + ", ".join(f.name for f in fields(StreamConfig)) + ")",
    )


def _text_line(result) -> str:
    if result.error is not None:
        return f"{result.source}: error: {result.error}"
    if not result.plates:
        return f"{result.source}: no plates"
    parts = []
    for p in result.plates:
        if p.text:
            parts.append(f"{p.text} ({p.score:.2f})" + (f" [{p.lines} lines]" if (p.lines or 1) > 1 else ""))
        else:
            parts.append(f"- ({p.reason})")
    return f"{result.source}: " + ", ".join(parts)


def _save_name(result, used: set[str]) -> str:
    stem = Path(result.source).stem or "frame"
    name = f"{stem}.jpg"
    if name in used:
        name = f"{stem}_{result.frame}.jpg"
    used.add(name)
    return name


def main(argv: list[str] | None = None) -> int:
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
        help="an image, a folder of images, a glob (quote it), a video file, a camera "
        "index, an rtsp:// or http:// URL, or picamera",
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
    args = parser.parse_args(argv)
    from runtime.streams import is_stream_spec

    if is_stream_spec(args.source):
        from runtime.video_cli import run_video

        return run_video(args)
    if args.display or args.realtime or args.track or args.stream or args.events_only:
        print(
            "error: --display, --realtime, --track, --stream and --events-only apply to video sources",
            file=sys.stderr,
        )
        return 2
    try:
        predictor = predictor_from_args(args)
        from runtime.sources import iter_frames

        frames = iter_frames(args.source)
    except SETUP_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
    counts = {"images": 0, "plates": 0, "errors": 0}
    used: set[str] = set()
    with predictor:
        for result in predictor.run(frames, keep_images=args.save is not None):
            counts["images"] += 1
            counts["plates"] += len(result.plates)
            counts["errors"] += result.error is not None
            if args.json:
                print(json.dumps(result.to_dict()), flush=True)
            else:
                print(_text_line(result), flush=True)
            if args.save is not None and result.image is not None:
                import cv2

                from runtime.draw import draw_plates

                cv2.imwrite(
                    str(args.save / _save_name(result, used)), draw_plates(result.image, result.plates)
                )
    print(
        f"{counts['images']} images, {counts['plates']} plates, {counts['errors']} unreadable",
        file=sys.stderr,
    )
    return 1 if counts["errors"] else 0
