"""The plate reading pipeline and its facade, :class:`Predictor`.

detect -> crop (padding from the OCR model's metadata, clipped) -> OCR on all crops of a frame in
one batch -> characters -> reading order -> region rules -> :class:`~runtime.records.Plate`.

``Predictor.run`` pipelines frames on the :class:`~runtime.scheduler.FrameScheduler`: detector
workers take frame t+1 (and more) while one reader thread crops, reads and orders the characters of
frame t; results come out in source order. ``Predictor.track`` runs the video loop
(:mod:`runtime.video`) on the same scheduler.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends import Backend, create_backend
from runtime.backends.base import DetectedFrame
from runtime.config import PipelineConfig, TrackConfig
from runtime.errors import InputError
from runtime.events.record import EventBuilder
from runtime.frames import Frame
from runtime.geometry import plate_crop_box
from runtime.model_zoo import find_models
from runtime.postprocess import Detections
from runtime.reading import Reading, drop_weak_edge, read_chars, weak_insertions
from runtime.records import NO_REGION_MATCH, Char, Plate, to_box
from runtime.results import FRAME_UNREAD, FrameResult, peak_rss_mb
from runtime.rules import RegionMemory, RegionRules, candidates, choose, load_rules
from runtime.scheduler import FRAME_ERRORS, FrameScheduler, frame_error
from runtime.second_look import second_look
from runtime.sources import SourceSpec, iter_frames, list_image_paths
from runtime.video import TrackRun, track_plates
from runtime.zoom_out import EmptyFramePacer, detect_zoomed_out

REASON_EMPTY_CROP = "empty crop: the plate box has no area inside the image"
REASON_NO_CHARS = "no characters found"


def chars_from_detections(
    dets: Detections, names: list[str], offset: tuple[float, float], config: PipelineConfig
) -> list[Char]:
    """Characters (image pixels) from the OCR model's detections in a crop at ``offset``."""
    ox, oy = offset
    chars = []
    for i in range(len(dets)):
        x1, y1, x2, y2 = (float(v) for v in dets.boxes[i])
        best = int(dets.classes[i])
        alternatives: list[tuple[str, float]] = []
        if dets.class_scores is not None and config.max_alternatives > 0:
            row = dets.class_scores[i]
            for k in np.argsort(-row, kind="stable")[: config.max_alternatives + 1]:
                if (
                    int(k) != best
                    and row[k] >= config.alt_min_score
                    and len(alternatives) < config.max_alternatives
                ):
                    alternatives.append((names[int(k)], float(row[k])))
        chars.append(
            Char(
                char=names[best],
                box=(x1 + ox, y1 + oy, x2 + ox, y2 + oy),
                score=float(dets.scores[i]),
                alternatives=alternatives,
            )
        )
    return chars


def read_detections(
    char_dets: Detections, names: list[str], offset: tuple[float, float], config: PipelineConfig
) -> tuple[Reading, list[tuple[int, Char]]] | None:
    """The reading of a crop's character detections, and the weak characters that could be
    inserted into it (see :func:`runtime.reading.weak_insertions`); None when no character was found.

    The OCR model is decoded below its threshold (``config.weak_char_score``): characters under
    ``ocr_conf`` are only offered to the region rules, to be inserted where one makes a reading fit."""
    found = chars_from_detections(char_dets, names, offset, config)
    chars = [c for c in found if c.score is None or c.score >= config.ocr_conf]
    if not chars:
        return None
    reading = read_chars(chars, config)
    reading, dropped = drop_weak_edge(reading, config)
    weak = [c for c in found if c.score is not None and c.score < config.ocr_conf]
    if dropped is not None:  # a format that needs it may take it back, as any weak character
        weak.append(dropped)
    return reading, weak_insertions(reading.chars, weak)


def plate_from_reading(
    box: tuple[float, float, float, float],
    det_score: float | None,
    reading: Reading,
    weak: list[tuple[int, Char]],
    config: PipelineConfig,
    rules: RegionRules | RegionMemory | None = None,
) -> Plate:
    """The plate record of a reading, with region rules applied when given (``raw_text`` keeps
    the model's reading, ``region_match`` names the format's region). A :class:`RegionMemory`
    applies its umbrella, its learnt member first."""
    if rules is None:
        return Plate(
            box=box,
            text=reading.text,
            score=reading.score,
            det_score=det_score,
            chars=reading.chars,
            lines=reading.lines,
            candidates=candidates(reading.chars, None, config.top_n),
            raw_text=reading.raw_text,
        )
    if isinstance(rules, RegionMemory):
        choice = rules.choose(reading.chars, config.top_n, weak)
    else:
        choice = choose(reading.chars, rules, config.top_n, weak=weak)
    assert choice is not None  # a reading has characters
    return Plate(
        box=box,
        text=choice.text,
        score=choice.score if choice.text != reading.text else reading.score,
        det_score=det_score,
        chars=choice.chars,
        lines=reading.lines,
        candidates=choice.candidates,
        raw_text=reading.raw_text or reading.text,
        region_match=choice.region or NO_REGION_MATCH,
    )


def assemble_plate(
    box: tuple[float, float, float, float],
    det_score: float | None,
    region: tuple[int, int, int, int] | None,
    char_dets: Detections | None,
    names: list[str],
    config: PipelineConfig,
    rules: RegionRules | RegionMemory | None = None,
) -> Plate:
    """One plate record from its detection, its crop region and the OCR model's detections.

    A crop with no area, or a crop where no character was found, gives an empty text and a reason.
    """
    box = to_box(box)
    if region is None or char_dets is None:
        return Plate(box=box, text="", det_score=det_score, reason=REASON_EMPTY_CROP)
    read = read_detections(char_dets, names, (region[0], region[1]), config)
    if read is None:
        return Plate(box=box, text="", det_score=det_score, reason=REASON_NO_CHARS)
    return plate_from_reading(box, det_score, *read, config, rules)


class Predictor:
    """Reads plates with the models of a zoo through one backend.

    >>> p = Predictor()                              # the shipped zoo, ONNX Runtime
    >>> for r in p.run("photos/"): print(r.to_dict())
    >>> p.predict(image)                             # -> list[Plate] for one BGR image
    >>> p.benchmark("photos/")                       # -> dict of speeds
    """

    def __init__(
        self,
        zoo: str | Path | None = None,
        backend: str = "onnx",
        config: PipelineConfig | None = None,
        *,
        rules: RegionRules | str | Path | None = None,
        det_model: str | None = None,
        ocr_model: str | None = None,
        precision: str | None = None,
        verify_models: bool = True,
        aspect: float | None = None,
        **backend_options: Any,
    ) -> None:
        """``aspect``: the source's width / height, so a zoo with the detector at several input
        shapes gives the one that pads least (see runtime.model_zoo.find_models)."""
        self.config = config or PipelineConfig()
        # verify_models: each model file's sha256 is checked against its zoo JSON before it is opened.
        det, ocr = find_models(zoo, det_model, ocr_model, precision, aspect=aspect, verify=verify_models)
        if isinstance(rules, (str, Path)):
            rules = load_rules(rules)
        elif rules is None and self.config.region:
            rules = load_rules(self.config.region)
        self.rules: RegionRules | None = rules
        self.region_memory: RegionMemory | None = None
        """With an umbrella region: what it has matched so far (``config.region_learn``)."""
        if rules is not None and rules.members and self.config.region_learn > 0:
            self.region_memory = RegionMemory(rules, self.config.region_learn, self.config.region_learn_share)
        self.backend: Backend = create_backend(backend, det, ocr, self.config, **backend_options)
        self.det_meta, self.ocr_meta = det.meta, ocr.meta
        self.scheduler = FrameScheduler(self.backend, self.config)
        self.empty_pacer = EmptyFramePacer(self.config.zoom_out_empty_every)
        """Which empty frames of a video get the zoomed-out pass (runtime/zoom_out.py)."""
        self.zoom_out_passes = 0
        """Zoomed-out passes run so far (the benchmarks print them per frame)."""

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()

    # -- one frame -------------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> Detections:
        """Plates in one BGR image (with the zoomed-out look when ``config.zoom_out``)."""
        return self._zoom_out(image, self.backend.detect(image))

    def completed(self, frame: Frame, detected: DetectedFrame) -> DetectedFrame:
        """A frame's first-pass detections with the zoomed-out pass added where it needs one; a
        failure of that pass is the frame's error, as a failure of the first is."""
        image, dets, error = detected
        if error is not None or image is None or dets is None or not self.config.zoom_out:
            return detected
        try:
            due = len(dets) > 0 or self.empty_pacer.due(frame.source)
            dets = self._zoom_out(image, dets, due)
            self.empty_pacer.seen(frame.source, len(dets) > 0)
            return image, dets, None
        except FRAME_ERRORS as e:
            return None, None, frame_error(f"{frame.source} (frame {frame.index}, zoomed-out pass)", e)

    def _zoom_out(self, image: np.ndarray, dets: Detections, empty_due: bool = True) -> Detections:
        """``dets`` completed by a zoomed-out pass where the frame needs one (runtime/zoom_out.py;
        ``empty_due``: whether a frame without a plate gets it). It runs here, after the first
        pass, on every backend alike: a streaming backend's frame waits for its second pass, which
        only frames with large plates, or with none, get."""
        if not self.config.zoom_out:
            return dets
        meta = self.det_meta

        def second_pass(canvas: np.ndarray) -> Detections:
            self.zoom_out_passes += 1
            return self.backend.detect(canvas)

        return detect_zoomed_out(
            second_pass, image, dets, (meta.input_height, meta.input_width), self.config, empty_due
        )

    def read_plates(
        self, image: np.ndarray, dets: Detections, one_call_per_crop: bool = False
    ) -> list[Plate]:
        """Crop every detected plate, read all crops (one batch), order characters, apply rules."""
        return self.read_boxes(image, dets.boxes, dets.scores, one_call_per_crop)

    def read_boxes(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        scores: np.ndarray | None = None,
        one_call_per_crop: bool = False,
    ) -> list[Plate]:
        """Plates read at ``boxes`` ([N, 4] xyxy image pixels, detector ``scores``): each box is
        cropped with the OCR model's padding, all crops go to the OCR model in one batch."""
        regions, crops = self._crops(image, boxes)
        if one_call_per_crop:  # the seed's way, for the benchmark's baseline
            read = [self.backend.read([c])[0] for c in crops]
        else:
            read = self.backend.read(crops) if crops else []
        plates = self._assemble(boxes, scores, regions, read)
        if self.config.second_look and plates:
            plates = self._second_look(image, boxes, plates)
        return plates

    def read_boxes_async(
        self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray | None = None
    ) -> Future:
        """A Future for ``read_boxes``: on a streaming backend the crops are queued and this returns
        at once (the plates are assembled when the OCR results come back). The second look is a
        synchronous re-read, so it applies on the synchronous path only: run from the OCR stream's
        completion it would wait on that stream."""
        regions, crops = self._crops(image, boxes)
        read = self.backend.read_async(crops)
        out: Future = Future()

        def done(f: Future) -> None:
            try:
                out.set_result(self._assemble(boxes, scores, regions, f.result()))
            except Exception as e:
                out.set_exception(e)

        read.add_done_callback(done)
        return out

    def _crops(self, image: np.ndarray, boxes: np.ndarray) -> tuple[list, list[np.ndarray]]:
        h, w = image.shape[:2]
        meta = self.ocr_meta
        regions = [
            plate_crop_box(to_box(b), w, h, meta.crop_pad_x or 0.0, meta.crop_pad_y or 0.0) for b in boxes
        ]
        return regions, [image[r[1] : r[3], r[0] : r[2]] for r in regions if r is not None]

    def _assemble(
        self, boxes: np.ndarray, scores: np.ndarray | None, regions: list, read: list
    ) -> list[Plate]:
        results = iter(read)
        plates = []
        for i, region in enumerate(regions):
            char_dets = next(results) if region is not None else None
            det_score = None if scores is None else float(scores[i])
            plates.append(
                assemble_plate(
                    boxes[i],
                    det_score,
                    region,
                    char_dets,
                    self.ocr_meta.names,
                    self.config,
                    self.region_memory or self.rules,
                )
            )
        return plates

    def _second_look(self, image: np.ndarray, boxes: np.ndarray, plates: list[Plate]) -> list[Plate]:
        """Small or doubtful plates read again from re-cut crops (``config.second_look``)."""
        meta = self.ocr_meta
        return second_look(
            image,
            boxes,
            plates,
            self.config,
            (meta.crop_pad_x or 0.0, meta.crop_pad_y or 0.0),
            self.backend.read,
            lambda box, score, region, dets: assemble_plate(
                box, score, region, dets, meta.names, self.config, self.rules
            ),
        )

    def predict(self, image: np.ndarray) -> list[Plate]:
        """Plates in one BGR image (no threads)."""
        image = Frame(source="<array>", index=0, image=image).load()
        return self.read_plates(image, self.detect(image))

    # -- many frames -----------------------------------------------------------------------------
    def _read_frame(self, frame: Frame, detected: Future, keep_images: bool) -> FrameResult | Future:
        image, dets, error = self.completed(frame, detected.result())
        if error is not None or image is None or dets is None:  # DetectedFrame: both set when no error
            return FrameResult(source=frame.source, frame=frame.index, error=error or FRAME_UNREAD)
        if self.backend.reads_async:  # the crops join the OCR stream; the frame completes later
            return _frame_result(
                frame, image if keep_images else None, self.read_boxes_async(image, dets.boxes, dets.scores)
            )
        try:
            plates = self.read_plates(image, dets)
        except FRAME_ERRORS as e:
            return FrameResult(source=frame.source, frame=frame.index, error=frame_error(frame.source, e))
        return FrameResult(
            source=frame.source, frame=frame.index, plates=plates, image=image if keep_images else None
        )

    def run(self, source: SourceSpec, keep_images: bool = False) -> Iterator[FrameResult]:
        """Results for every frame of ``source`` (image, folder, glob, arrays, Frames), in order.

        Pipelined: up to ``workers`` frames are detected at once while the reader thread crops and
        reads the previous ones; at most ``workers + queue_depth`` frames are in flight. A frame
        that cannot be read gives a result with ``error`` and the run goes on.
        """
        return self.scheduler.run(iter_frames(source), self._read_frame, keep_images)

    def track(
        self,
        source: SourceSpec,
        config: TrackConfig | None = None,
        keep_images: bool = False,
        events: EventBuilder | None = None,
    ) -> TrackRun:
        """Video: tracked frames (plates with ``track_id`` and their track's voted text) and events
        (one per plate, stream outages), in order; OCR only where a track needs it. ``events``
        completes plate events (camera, zones, watch list, crops: :mod:`runtime.events.record`).
        The returned iterator carries the run's counts in ``.stats``. See :mod:`runtime.video`."""
        return track_plates(self, source, config, keep_images, events)

    def run_naive(self, source: SourceSpec) -> Iterator[FrameResult]:
        """The seed's way, for comparison: one frame at a time, detector then one OCR call per crop."""
        for frame in iter_frames(source):
            image, dets, error = self.completed(frame, self.scheduler.detect(frame))
            if error is not None or image is None or dets is None:
                yield FrameResult(source=frame.source, frame=frame.index, error=error or FRAME_UNREAD)
                continue
            yield FrameResult(
                source=frame.source,
                frame=frame.index,
                plates=self.read_plates(image, dets, one_call_per_crop=True),
            )

    def run_detector_only(
        self, source: SourceSpec, parallel: bool = False
    ) -> Iterator[tuple[Frame, Detections | None]]:
        """Only the plate detector (decode, letterbox, inference, NMS): one frame at a time, or
        ``parallel`` on the same workers as ``run`` - the pipeline's ceiling if reading cost nothing."""
        if parallel:
            return self.scheduler.run(
                iter_frames(source), lambda frame, detected: (frame, detected.result()[1])
            )
        return ((frame, self.scheduler.detect(frame)[1]) for frame in iter_frames(source))

    # -- speed -----------------------------------------------------------------------------------
    def benchmark(
        self, source: SourceSpec, frames: int | None = None, repeat: int = 3, warmup: int = 2
    ) -> dict[str, Any]:
        """Frames per second of the pipeline, the naive way and the detector alone, in one run.

        Image files are read into memory once (still encoded: every mode decodes, as it would from
        disk) so the disk does not time; ``frames`` repeats or truncates the list to that length.
        Each mode runs ``repeat`` times, interleaved, and the best run counts (least disturbed by
        other processes). Returns frames, plates_per_frame, pipeline_fps, naive_fps (one frame at
        a time, one OCR call per crop), detector_only_fps (the detector alone, one frame at a time,
        like naive), detector_only_parallel_fps (the detector alone on the pipeline's workers: the
        pipeline's ceiling), their ratios, rss_mb (peak resident memory) and the settings used.
        """
        items = _benchmark_frames(source, frames)
        if not items:
            raise InputError("benchmark: the source has no frames")
        for item in items[:warmup]:
            self.predict(item.load())
        modes = {
            "pipeline": lambda: self.run(items),
            "naive": lambda: self.run_naive(items),
            "detector_only": lambda: self.run_detector_only(items),
            "detector_only_parallel": lambda: self.run_detector_only(items, parallel=True),
        }
        best = {mode: math.inf for mode in modes}
        cpu = {mode: math.inf for mode in modes}
        waiting: dict[str, dict[str, float]] = {}
        plates = zoomed = 0
        for _ in range(max(1, repeat)):
            for mode, start in modes.items():  # interleaved, so a busy spell hits every mode alike
                wait = self._clocks_reset()
                passes = self.zoom_out_passes
                t0, c0 = time.perf_counter(), time.process_time()
                out: list[Any] = list(start())
                seconds = time.perf_counter() - t0
                if seconds < best[mode]:
                    waiting[mode] = wait(seconds)
                best[mode] = min(best[mode], seconds)
                cpu[mode] = min(cpu[mode], time.process_time() - c0)
                if mode == "pipeline":
                    plates = sum(len(r.plates) for r in out)
                    zoomed = self.zoom_out_passes - passes
        n = len(items)
        fps = {mode: n / seconds for mode, seconds in best.items()}
        return {
            "frames": n,
            "plates_per_frame": round(plates / n, 3),
            # The zoomed-out look's second detections (runtime/zoom_out.py): what it costs, in passes.
            "zoom_out_passes_per_frame": round(zoomed / n, 3),
            "pipeline_fps": round(fps["pipeline"], 2),
            "naive_fps": round(fps["naive"], 2),
            "detector_only_fps": round(fps["detector_only"], 2),
            "detector_only_parallel_fps": round(fps["detector_only_parallel"], 2),
            "pipeline_vs_naive": round(fps["pipeline"] / fps["naive"], 3),
            "pipeline_vs_detector_only": round(fps["pipeline"] / fps["detector_only"], 3),
            "pipeline_vs_detector_only_parallel": round(fps["pipeline"] / fps["detector_only_parallel"], 3),
            "rss_mb": round(peak_rss_mb(), 1),
            # CPU time per frame (all threads): the work each mode does, whatever else runs on the machine.
            "cpu_ms_per_frame": {mode: round(1000 * c / n, 1) for mode, c in cpu.items()},
            # Share of each mode's (best) run during which a request to each model was outstanding:
            # the model near 1.0 in the pipeline is the one that bounds its rate.
            "wait_share": waiting,
            "cpu_count": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            **self.backend.describe(),
            "threads": self.config.threads,
            "workers": self.scheduler.workers,
            "repeat": max(1, repeat),
        }

    def _clocks_reset(self):
        """Reset the backend's model clocks; returns ``share(seconds)``: each model's busy time over
        ``seconds`` of run (see :class:`runtime.backends.base.ModelClock`)."""
        for clock in self.backend.clocks.values():
            clock.reset()

        def share(seconds: float) -> dict[str, float]:
            return {name: round(c.busy_s() / seconds, 3) for name, c in self.backend.clocks.items()}

        return share


def _frame_result(frame: Frame, image: np.ndarray | None, reading: Future) -> Future:
    """The FrameResult once ``reading`` (the frame's plates) completes; an OCR failure on one of its
    crops becomes that frame's error."""
    out: Future = Future()

    def done(f: Future) -> None:
        try:
            out.set_result(
                FrameResult(source=frame.source, frame=frame.index, plates=f.result(), image=image)
            )
        except Exception as e:
            out.set_result(
                FrameResult(
                    source=frame.source,
                    frame=frame.index,
                    error=f"{frame.source} (frame {frame.index}): the OCR model failed on a plate "
                    f"({type(e).__name__}: {str(e).strip()[:300]})",
                )
            )

    reading.add_done_callback(done)
    return out


def _benchmark_frames(source: SourceSpec, frames: int | None) -> list[Frame]:
    if isinstance(source, (str, Path)):
        paths = list_image_paths(source)
        if frames is not None:
            paths = paths[:frames]  # only what is timed stays in memory
        items = [Frame(source=str(p), index=i, data=p.read_bytes()) for i, p in enumerate(paths)]
    else:
        items = list(iter_frames(source))
    if frames is not None and items:
        items = [
            Frame(source=it.source, index=i, image=it.image, path=it.path, data=it.data)
            for i, it in enumerate(items[j % len(items)] for j in range(frames))
        ]
    return items
