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
        "--allow-unverified",
        action="store_true",
        help="load models whose sha256 does not match their zoo JSON (development only; warns)",
    )
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
        verify_models=not args.allow_unverified,
        aspect=aspect,
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


EVENT_OPTIONS = ("events", "zones", "watchlist", "crops", "cameras", "status_port", "delivery")
"""Options of plate events (``add_event_arguments``): video sources only."""


def add_event_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of plate events: where they go, which plates count, several cameras (runtime/events)."""
    from runtime.config import EventsConfig

    group = parser.add_argument_group("events")
    group.add_argument(
        "--events",
        action="append",
        default=[],
        metavar="SINK",
        help="also send every event to SINK: jsonl:PATH, mqtt://[user:pass@]host[:port]/topic, "
        "http(s)://... (a webhook); may be given several times",
    )
    group.add_argument("--zones", type=Path, default=None, metavar="FILE.yaml", help="zones per camera")
    group.add_argument(
        "--watchlist", type=Path, default=None, metavar="FILE", help="allow/deny plates (CSV or YAML)"
    )
    group.add_argument(
        "--crops", type=Path, default=None, metavar="DIR", help="plate crops as JPEG files here (not base64)"
    )
    group.add_argument(
        "--cameras",
        type=Path,
        default=None,
        metavar="FILE.yaml",
        help="several cameras in one process (instead of SOURCE): see runtime/cameras.py",
    )
    group.add_argument(
        "--status-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve health and counters as JSON on http://127.0.0.1:PORT/status (0: any free port)",
    )
    group.add_argument(
        "--status-host", default="127.0.0.1", help="address for --status-port (default: loopback only)"
    )
    group.add_argument(
        "--delivery",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="event delivery and crops (" + ", ".join(f.name for f in fields(EventsConfig)) + ")",
    )


def event_options_given(args: argparse.Namespace) -> list[str]:
    """The event options set on the command line (to refuse them for images)."""
    given = []
    for name in EVENT_OPTIONS:
        value = getattr(args, name, None)
        if value not in (None, [], False):
            given.append("--" + name.replace("_", "-"))
    return given


def events_config_from_args(args: argparse.Namespace):
    from dataclasses import replace

    from runtime.config import EventsConfig

    config = EventsConfig.from_dict(parse_settings(args.delivery, EventsConfig, "--delivery"))
    if args.crops is not None:
        config = replace(config, crop="file", crops_dir=str(args.crops))
    return config
