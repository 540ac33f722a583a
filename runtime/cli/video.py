"""``python -m runtime VIDEO``: the command line's video half (files, cameras, streams).

Text output: one line per event (a plate read, a stream outage). ``--json``: a line per frame
(``{"source", "frame", "plates": [... "track_id" ...], "reads"}``) and the events between them;
``--events-only`` keeps just the events. ``--save out.mp4`` writes the annotated video,
``--display`` shows it. A summary (frames, OCR reads per frame, events, frames dropped or missed,
outages, sinks) goes to stderr at the end.

Plate events (docs/deployment.md): ``--events SINK`` (repeatable) sends every event to a JSON Lines
file, an MQTT broker or a webhook as well; ``--zones``, ``--watchlist`` and ``--crops`` shape them;
``--cameras cameras.yaml`` reads several cameras in one process; ``--status-port`` serves health
and counters.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from runtime.cli.args import SETUP_ERRORS, events_config_from_args, parse_settings, predictor_from_args
from runtime.errors import InputError
from runtime.frames import VIDEO_SUFFIXES
from runtime.interrupt import StopFlag, StopOnSignal
from runtime.output import LineWriter

QUIT_KEYS = (ord("q"), 27)  # q, Esc
DEFAULT_SAVE_FPS = 25.0


class Display:
    """An OpenCV window; ValueError at creation when this OpenCV or machine cannot show one."""

    def __init__(self, title: str) -> None:
        import cv2

        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise InputError("--display: no screen (neither DISPLAY nor WAYLAND_DISPLAY is set)")
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise InputError(
                "--display: this OpenCV has no GUI (opencv-python-headless); "
                "pip install opencv-python, or use --save out.mp4"
            ) from None
        self.title = title

    def show(self, image: np.ndarray) -> bool:
        """Show a frame; False when the user asked to quit."""
        import cv2

        cv2.imshow(self.title, image)
        return (cv2.waitKey(1) & 0xFF) not in QUIT_KEYS

    def close(self) -> None:
        import cv2

        cv2.destroyWindow(self.title)


class VideoSaver:
    """Annotated frames to a video file (opened at the first frame, when its size is known)."""

    def __init__(self, path: Path, source_name: str, fps: float | None) -> None:
        from runtime.paths import staged_output, writable_folder

        if path.suffix.lower() not in VIDEO_SUFFIXES:  # a folder: name the file after the source
            stem = Path(source_name.split("?")[0].rstrip("/")).stem or "video"
            path = writable_folder(path) / f"{stem}_lpr.mp4"
        else:
            writable_folder(path.parent)
        self.path = path
        # OpenCV cannot take a name that is not UTF-8: it writes an ASCII name, renamed at close.
        self.staged = staged_output(path)
        self.fps = fps if fps and fps > 0 else DEFAULT_SAVE_FPS
        self.writer: Any = None
        self.frames = 0
        self.error: str | None = None
        """Why the video could not be (fully) written; the run goes on without it."""

    def write(self, image: np.ndarray) -> None:
        import cv2

        if self.error is not None:
            return
        if self.writer is None:
            fourcc = cv2.VideoWriter.fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            self.writer = cv2.VideoWriter(
                str(self.staged), fourcc, self.fps, (image.shape[1], image.shape[0])
            )
            if not self.writer.isOpened():
                self.error = "cannot write a video there"
                return
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finish the file and check it: OpenCV's writer does not report a full disk, so the frames
        that can be read back are counted."""
        from runtime.paths import finish_output

        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        finish_output(self.staged, self.path)
        if self.error is None and self.frames:
            readable = readable_frames(self.path)
            if readable < self.frames:
                self.error = (
                    f"only {readable} of {self.frames} frames could be read back (disk full or a write error)"
                )


def readable_frames(path: Path) -> int:
    """How many frames of the video file at ``path`` decode (0 when it is not a readable video)."""
    import cv2

    from runtime.paths import readable_by_opencv

    if not path.is_file():
        return 0
    with readable_by_opencv(path) as name:
        cap = cv2.VideoCapture(name, cv2.CAP_FFMPEG)
        count = 0
        try:
            while cap.isOpened() and cap.grab():
                count += 1
        finally:
            cap.release()
    return count


def _event_line(event: dict[str, Any]) -> str:
    source = event.get("camera") or event.get("source", "")
    if event.get("event") == "plate":
        state = "" if event.get("confirmed") else ", unconfirmed"
        lines = f", {event['lines']} lines" if (event.get("lines") or 1) > 1 else ""
        lines += f", {event['region_match']}" if event.get("region_match") else ""
        extra = "".join(
            f", {label}" if label else ""
            for label in (
                "update" if event.get("update") else "",
                f"zone {event['zone']}" if event.get("zone") else "",
                event.get("direction") or "",
                _watch_text(event.get("watchlist")),
            )
        )
        return (
            f"{source}: frames {event['first_frame']}-{event['last_frame']} track {event['track_id']}: "
            f"{event['text']} ({event['score']:.2f}{state}{lines}, {len(event.get('readings', []))} readings"
            f"{extra})"
        )
    details = ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("event", "source", "camera"))
    return f"{source}: {event.get('event')}: {details}"


def _watch_text(match: dict[str, Any] | None) -> str:
    if not match:
        return ""
    label = f" {match['label']!r}" if match.get("label") else ""
    flag = "DENY" if match["list"] == "deny" else "allow"
    return f"{flag} list: {match['plate']}{label} (distance {match['distance']:g})"


class EventSetup:
    """What plate events need besides the video: sinks (shared by spec), zones, watch list, status."""

    def __init__(self, args: argparse.Namespace) -> None:
        from runtime.events.watchlist import load_watchlist
        from runtime.events.zones import load_zones

        self.config = events_config_from_args(args)
        self.zones = load_zones(args.zones) if args.zones is not None else None
        self.watchlist = load_watchlist(args.watchlist) if args.watchlist is not None else None
        self.sinks: dict[str, Any] = {}
        self.status_server: Any = None
        self.started = time.monotonic()

    def sinks_for(self, specs: list[str]) -> list[Any]:
        """One sink per distinct spec, shared by the cameras that name it (one queue each)."""
        from runtime.events.sinks import open_sink

        out = []
        for spec in specs:
            if spec not in self.sinks:
                self.sinks[spec] = open_sink(spec, self.config)
            out.append(self.sinks[spec])
        return out

    def serve_status(self, args: argparse.Namespace, cameras: list[Any]) -> None:
        if args.status_port is None:
            return
        from runtime.cameras import status_of
        from runtime.events.status import StatusServer

        sinks = list(self.sinks.values())
        self.status_server = StatusServer(
            lambda: status_of(cameras, sinks, self.started), args.status_port, args.status_host
        )
        print(f"status: {self.status_server.url}", file=sys.stderr, flush=True)

    def close(self) -> list[dict[str, Any]]:
        """Stop the endpoint, flush the sinks; their counts for the summary."""
        if self.status_server is not None:
            self.status_server.close()
        for sink in self.sinks.values():
            sink.close()
        return [sink.stats() for sink in self.sinks.values()]


def run_video(args: argparse.Namespace) -> int:
    from runtime.cameras import Camera, builder_for
    from runtime.config import StreamConfig, TrackConfig
    from runtime.draw import draw_plates
    from runtime.errors import StreamLostError
    from runtime.frames import redact_url
    from runtime.results import Event

    display = camera = setup = None
    try:
        track_config = TrackConfig.from_dict(parse_settings(args.track, TrackConfig, "--track"))
        stream_values = parse_settings(args.stream, StreamConfig, "--stream")
        if args.realtime:
            stream_values["realtime"] = True
        stream_config = StreamConfig.from_dict(stream_values)
        setup = EventSetup(args)
        predictor = predictor_from_args(args)
        zones = setup.zones.for_camera(None) if setup.zones is not None else None
        builder = builder_for(zones, setup.watchlist, None, predictor, setup.config, track_config)
        sinks = setup.sinks_for(args.events)
        camera = Camera(None, args.source, predictor, track_config, stream_config, builder, sinks).open()
        if args.display:
            display = Display(f"lpr: {camera.stream.name}")
        setup.serve_status(args, [camera])
    except SETUP_ERRORS as e:
        if camera is not None and camera.stream is not None:
            camera.stream.close()
        if setup is not None:
            setup.close()
        print(f"error: {redact_url(str(e))}", file=sys.stderr)
        return 2
    source = camera.stream
    try:
        saver = VideoSaver(args.save, source.name, source.fps) if args.save is not None else None
    except ValueError as e:  # --save names a file that is not a video, or a folder that cannot be written
        source.close()
        setup.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = LineWriter()
    status = 0
    # SIGTERM / Ctrl-C: stop reading; the frames in flight finish, open tracks become events.
    stop = StopFlag().install(signal.SIGTERM, signal.SIGINT)
    frames = StopOnSignal(source, stop)
    try:
        with predictor:
            items = camera.items(keep_images=saver is not None or display is not None, frames=frames)
            for item in items:
                if isinstance(item, Event):
                    data = item.to_dict()
                    out.line(json.dumps(data) if args.json else _event_line(data))
                    continue
                if item.error is not None:
                    status = 1
                    out.line(
                        json.dumps(item.to_dict())
                        if args.json
                        else f"{item.source}: frame {item.frame}: error: {item.error}"
                    )
                    continue
                if args.json and not args.events_only:
                    out.line(json.dumps(item.to_dict()))
                if item.image is not None:
                    annotated = draw_plates(item.image, item.plates)
                    if saver is not None:
                        saver.write(annotated)
                    if display is not None and not display.show(annotated):
                        break
    except StreamLostError as e:
        print(f"error: {redact_url(str(e))}", file=sys.stderr)
        status = 3
    finally:
        stop.restore()
        if saver is not None:
            saver.close()
        if display is not None:
            display.close()
        sink_stats = setup.close()
    if stop.signum is not None:
        interrupted: dict[str, Any] = {"event": "interrupted", "source": source.name, "signal": stop.name}
        interrupted["last_frame"] = frames.last_index
        out.line(json.dumps(interrupted) if args.json else _event_line(interrupted))
        print(f"interrupted by {stop.name}: stopped after frame {frames.last_index}", file=sys.stderr)
        status = stop.exit_status
    stats = camera.run.stats.to_dict() if camera.run is not None else {}
    if sink_stats:
        stats["sinks"] = sink_stats
    print("summary: " + json.dumps(stats), file=sys.stderr)
    if saver is not None and saver.error is not None:
        print(f"error: annotated video {saver.path}: {saver.error}", file=sys.stderr)
        status = status or 1
    elif saver is not None and saver.frames:
        print(f"annotated video: {saver.path} ({saver.frames} frames)", file=sys.stderr)
    if out.summary():
        print(out.summary(), file=sys.stderr)
        status = status or 1
    return status


def run_cameras(args: argparse.Namespace) -> int:
    """``--cameras cameras.yaml``: every camera on a thread of its own, one model pair for all."""
    from runtime.cameras import Camera, builder_for, load_cameras, predictor_view
    from runtime.config import StreamConfig, TrackConfig
    from runtime.errors import StreamLostError
    from runtime.frames import redact_url
    from runtime.results import Event

    if args.save is not None or args.display:
        print("error: --save and --display show one source; not with --cameras", file=sys.stderr)
        return 2
    cameras: list[Camera] = []
    setup = None
    try:
        specs = load_cameras(args.cameras)
        track_values = parse_settings(args.track, TrackConfig, "--track")
        stream_values = parse_settings(args.stream, StreamConfig, "--stream")
        if args.realtime:
            stream_values["realtime"] = True
        setup = EventSetup(args)
        predictor = predictor_from_args(args)
        for spec in specs:
            track_config = TrackConfig.from_dict({**track_values, **spec.track})
            stream_config = StreamConfig.from_dict({**stream_values, **spec.stream})
            view = predictor_view(predictor, spec.region)
            zones = spec.zones
            if zones is None and setup.zones is not None:
                zones = setup.zones.for_camera(spec.name)
            watchlist = spec.watchlist or setup.watchlist
            builder = builder_for(zones, watchlist, spec.name, view, setup.config, track_config)
            sinks = setup.sinks_for(list(args.events) + spec.events)
            camera = Camera(spec.name, spec.source, view, track_config, stream_config, builder, sinks)
            cameras.append(camera)
        for camera in cameras:
            camera.open()
        setup.serve_status(args, cameras)
    except SETUP_ERRORS as e:
        for camera in cameras:
            if camera.stream is not None:
                camera.stream.close()
        if setup is not None:
            setup.close()
        print(f"error: {redact_url(str(e))}", file=sys.stderr)
        return 2
    print_lock = threading.Lock()
    codes: dict[str, int] = {}

    def watch(camera: Camera) -> None:
        code = 0
        try:
            for item in camera.items():
                if isinstance(item, Event):
                    line = json.dumps(item.to_dict()) if args.json else _event_line(item.to_dict())
                elif item.error is not None:
                    code = 1
                    line = (
                        json.dumps({"camera": camera.name, **item.to_dict()})
                        if args.json
                        else f"{camera.name}: frame {item.frame}: error: {item.error}"
                    )
                elif args.json and not args.events_only:
                    line = json.dumps({"camera": camera.name, **item.to_dict()})
                else:
                    continue
                with print_lock:
                    print(line, flush=True)
        except StreamLostError as e:
            with print_lock:
                print(f"error: {camera.name}: {redact_url(str(e))}", file=sys.stderr, flush=True)
            code = 3
        codes[camera.label] = code

    threads = [threading.Thread(target=watch, args=(c,), name=f"camera {c.label}") for c in cameras]
    try:
        with predictor:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        sink_stats = setup.close()
    summary: dict[str, Any] = {"cameras": {c.label: c.summary() for c in cameras}}
    frames = sum(c.frames for c in cameras)
    seconds = max((c.run.stats.seconds for c in cameras if c.run is not None), default=0.0)
    summary["frames"] = frames
    summary["fps"] = round(frames / seconds, 2) if seconds > 0 else None
    if sink_stats:
        summary["sinks"] = sink_stats
    print("summary: " + json.dumps(summary), file=sys.stderr)
    return max(codes.values(), default=0)
