"""Arguments every runtime command shares: the models and backend, pipeline settings, video options."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.backends import BACKENDS
from runtime.config import PipelineConfig, StreamConfig, TrackConfig
from runtime.errors import InputError, LprError
from runtime.model_zoo import DEFAULT_ZOO

if TYPE_CHECKING:
    from runtime.pipeline import Predictor

SETUP_ERRORS: tuple[type[BaseException], ...] = (
    LprError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)
"""What a command reports in one line before anything runs (exit code 2): the error family and the
operating system's path errors. Anything else is a bug and shows its traceback."""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``python -m runtime`` and ``python -m runtime.bench``."""
    parser.add_argument(
        "--backend", choices=BACKENDS, default="onnx", help="inference backend (default: onnx)"
    )
    parser.add_argument("--zoo", type=Path, default=None, help=f"model zoo folder (default: {DEFAULT_ZOO})")
    parser.add_argument(
        "--det-model", default=None, help="plate detector by model name, when the zoo has several"
    )
    parser.add_argument("--ocr-model", default=None, help="OCR model by model name, when the zoo has several")
    parser.add_argument("--precision", default=None, help="pick models of this precision (fp32, int8)")
    parser.add_argument(
        "--region",
        default=None,
        help="region rules: a name in runtime/regions/ (see --list-regions; us, eu and auto pick the "
        "member that fits) or a YAML file",
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
            raise InputError(f"{flag} {item!r}: expected KEY=VALUE with KEY one of {sorted(types)}")
        kind = types[key]
        try:
            if kind.startswith("bool"):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise InputError(raw)
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
            raise InputError(f"{flag} {item!r}: {raw!r} is not a valid {kind.split(' ')[0]}") from None
    return values


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    values = parse_settings(args.set, PipelineConfig, "--set")
    for key in ("det_conf", "ocr_conf", "threads", "workers", "region"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    return PipelineConfig.from_dict(values)


def predictor_from_args(args: argparse.Namespace) -> Predictor:
    from runtime.pipeline import Predictor

    options: dict[str, Any] = {}
    if args.backend == "degirum":
        options = {"host": args.host, "zoo_url": args.zoo_url, "token": args.token}
    return Predictor(
        args.zoo,
        args.backend,
        config_from_args(args),
        det_model=args.det_model,
        ocr_model=args.ocr_model,
        precision=args.precision,
        **options,
    )


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of video sources (files, cameras, streams)."""
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
