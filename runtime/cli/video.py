"""``python -m runtime VIDEO``: the command line's video half (files, cameras, streams).

Text output: one line per event (a plate read, a stream outage). ``--json``: a line per frame
(``{"source", "frame", "plates": [... "track_id" ...], "reads"}``) and the events between them;
``--events-only`` keeps just the events. ``--save out.mp4`` writes the annotated video,
``--display`` shows it. A summary (frames, OCR reads per frame, events, frames dropped or missed,
outages) goes to stderr at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from runtime.cli.args import SETUP_ERRORS, parse_settings, predictor_from_args
from runtime.errors import InputError
from runtime.frames import VIDEO_SUFFIXES

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
        if path.suffix.lower() not in VIDEO_SUFFIXES:  # a folder: name the file after the source
            stem = Path(source_name.split("?")[0].rstrip("/")).stem or "video"
            path = path / f"{stem}_lpr.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fps = fps if fps and fps > 0 else DEFAULT_SAVE_FPS
        self.writer: Any = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        import cv2

        if self.writer is None:
            fourcc = cv2.VideoWriter.fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (image.shape[1], image.shape[0]))
            if not self.writer.isOpened():
                raise OSError(f"{self.path}: cannot write video here")
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def _event_line(event: dict[str, Any]) -> str:
    source = event.get("source", "")
    if event.get("event") == "plate":
        state = "" if event.get("confirmed") else ", unconfirmed"
        lines = f", {event['lines']} lines" if (event.get("lines") or 1) > 1 else ""
        lines += f", {event['region_match']}" if event.get("region_match") else ""
        return (
            f"{source}: frames {event['first_frame']}-{event['last_frame']} track {event['track_id']}: "
            f"{event['text']} ({event['score']:.2f}{state}{lines}, {len(event.get('readings', []))} readings)"
        )
    details = ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("event", "source"))
    return f"{source}: {event.get('event')}: {details}"


def run_video(args: argparse.Namespace) -> int:
    from runtime.config import StreamConfig, TrackConfig
    from runtime.draw import draw_plates
    from runtime.errors import StreamLostError
    from runtime.frames import redact_url
    from runtime.results import Event
    from runtime.streams import open_stream

    source = display = run = None
    try:
        track_config = TrackConfig.from_dict(parse_settings(args.track, TrackConfig, "--track"))
        stream_values = parse_settings(args.stream, StreamConfig, "--stream")
        if args.realtime:
            stream_values["realtime"] = True
        stream_config = StreamConfig.from_dict(stream_values)
        predictor = predictor_from_args(args)
        source = open_stream(args.source, stream_config)
        if args.display:
            display = Display(f"lpr: {source.name}")
    except SETUP_ERRORS as e:
        if source is not None:
            source.close()
        print(f"error: {redact_url(str(e))}", file=sys.stderr)
        return 2
    saver = VideoSaver(args.save, source.name, source.fps) if args.save is not None else None
    status = 0
    try:
        with predictor, source:
            run = predictor.track(source, track_config, keep_images=saver is not None or display is not None)
            for item in run:
                if isinstance(item, Event):
                    data = item.to_dict()
                    print(json.dumps(data) if args.json else _event_line(data), flush=True)
                    continue
                if item.error is not None:
                    status = 1
                    print(
                        json.dumps(item.to_dict())
                        if args.json
                        else f"{item.source}: frame {item.frame}: error: {item.error}",
                        flush=True,
                    )
                    continue
                if args.json and not args.events_only:
                    print(json.dumps(item.to_dict()), flush=True)
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
        if saver is not None:
            saver.close()
        if display is not None:
            display.close()
    stats = run.stats.to_dict() if run is not None else {}
    print("summary: " + json.dumps(stats), file=sys.stderr)
    if saver is not None and saver.frames:
        print(f"annotated video: {saver.path} ({saver.frames} frames)", file=sys.stderr)
    return status
