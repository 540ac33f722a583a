"""``python -m runtime IMAGES``: images, folders and globs (one line or JSON object per image)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.cli.args import SETUP_ERRORS, event_options_given, predictor_from_args
from runtime.output import LineWriter
from runtime.paths import writable_folder, write_image


def _text_line(result) -> str:
    if result.error is not None:
        return f"{result.source}: error: {result.error}"
    if not result.plates:
        return f"{result.source}: no plates"
    parts = []
    for p in result.plates:
        if p.text:
            parts.append(
                f"{p.text} ({p.score:.2f})"
                + (f" [{p.lines} lines]" if (p.lines or 1) > 1 else "")
                + (f" [{p.region_match}]" if p.region_match else "")
            )
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


def run_images(args: argparse.Namespace) -> int:
    if args.display or args.realtime or args.track or args.stream or args.events_only:
        print(
            "error: --display, --realtime, --track, --stream and --events-only apply to video sources",
            file=sys.stderr,
        )
        return 2
    events = event_options_given(args)
    if events:
        print(f"error: {', '.join(events)}: plate events come from video sources only", file=sys.stderr)
        return 2
    try:
        predictor = predictor_from_args(args)
        from runtime.sources import iter_frames

        frames = iter_frames(args.source)
        if args.save is not None:
            writable_folder(args.save)
    except SETUP_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = {"images": 0, "plates": 0, "errors": 0, "unsaved": 0}
    used: set[str] = set()
    out = LineWriter()
    with predictor:
        for result in predictor.run(frames, keep_images=args.save is not None):
            counts["images"] += 1
            counts["plates"] += len(result.plates)
            counts["errors"] += result.error is not None
            out.line(json.dumps(result.to_dict()) if args.json else _text_line(result))
            if out.closed:
                break
            if args.save is not None and result.image is not None:
                from runtime.draw import draw_plates

                try:
                    write_image(
                        args.save / _save_name(result, used), draw_plates(result.image, result.plates)
                    )
                except OSError as e:  # a full disk costs this image's copy; reading goes on
                    counts["unsaved"] += 1
                    print(f"error: {e}", file=sys.stderr)
    print(
        f"{counts['images']} images, {counts['plates']} plates, {counts['errors']} unreadable"
        + (f", {counts['unsaved']} not saved" if counts["unsaved"] else ""),
        file=sys.stderr,
    )
    if out.summary():
        print(out.summary(), file=sys.stderr)
    return 1 if counts["errors"] or counts["unsaved"] or out.failed else 0
