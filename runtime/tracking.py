"""Plates across video frames: tracks, per-track voting, and when a track needs reading.

Why our own small tracker and not a library: the lean runtime ships numpy and OpenCV only.
supervision's ByteTrack pulls scipy, matplotlib and pillow; norfair pulls scipy and filterpy;
degirum_tools' tracker needs the DeGirum SDK. Plates move smoothly and rarely cross each other,
so a constant-velocity prediction, greedy IoU association in ByteTrack's two stages (confident
detections first, weak ones only continue tracks) and a centre-distance fallback for small fast
plates do the job in ~170 lines that are easy to read and test.

Voting: every reading of a track (one OCR pass on one frame) votes for the track's text. The
length comes first (weighted vote), then each position is voted with the character scores *and*
the model's alternatives (soft votes), so a reading that hesitated between B and 8 counts for
both. Readings one character longer or shorter (a cut-off or doubled character) are aligned to
the consensus by dropping or skipping the position that agrees best, at half weight. Region
rules then pick the best rule-valid text from the voted distribution, as they do for one frame.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.config import TrackConfig
from runtime.geometry import iou_matrix
from runtime.records import NO_REGION_MATCH, Box, Char, Plate, to_box
from runtime.rules import RegionRules, choose

OFF_BY_ONE_WEIGHT = 0.5
"""Vote weight of a reading one character longer or shorter than the voted length, once aligned."""


@dataclass
class TrackReading:
    """One OCR pass on one frame of a track."""

    frame: int
    text: str
    score: float
    chars: list[Char]
    box: Box
    lines: int | None = None
    crop: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The plate cut from this frame (kept when events carry crops: the best reading's goes out)."""

    @property
    def weight(self) -> float:
        """How much this reading counts: the geometric mean of its character scores (a product
        would make long plates count less than short ones)."""
        scores = [c.score if c.score is not None else 1.0 for c in self.chars]
        if not scores:
            return 0.0
        return float(math.exp(sum(math.log(max(s, 1e-6)) for s in scores) / len(scores)))


@dataclass
class Vote:
    """What a track's readings agree on."""

    text: str
    score: float
    """Share of the vote of the least-agreed character (1 = every reading agrees everywhere)."""
    support: int
    """Readings of the voted length."""
    chars: list[Char]
    """One character per voted position: the winner, its share as score, the runners-up as
    alternatives (with region rules, ``text`` may have dropped one of them to fit a format)."""
    lines: int | None = None
    region: str | None = None
    """With region rules: the region whose format ``text`` fits, or ``NO_REGION_MATCH``."""


def _align(chars: list[Char], consensus: str) -> list[Char | None] | None:
    """``chars`` (one longer or one shorter than ``consensus``) laid over it: drop the extra
    character or leave a gap where agreement is best; None when the lengths differ otherwise."""
    n, m = len(chars), len(consensus)
    options: list[list[Char | None]]
    if n == m + 1:
        options = [[*chars[:j], *chars[j + 1 :]] for j in range(n)]
    elif n == m - 1:
        options = [[*chars[:j], None, *chars[j:]] for j in range(m)]
    else:
        return None
    return max(
        options,
        key=lambda o: sum(c is not None and c.char == want for c, want in zip(o, consensus, strict=False)),
    )


def _tally(readings: list[TrackReading], length: int) -> list[dict[str, float]]:
    tally: list[dict[str, float]] = [defaultdict(float) for _ in range(length)]

    def add(chars: Sequence[Char | None], weight: float) -> None:
        for slot, c in zip(tally, chars, strict=False):
            if c is None:
                continue
            slot[c.char] += weight * (c.score if c.score is not None else 1.0)
            for alt, s in c.alternatives:
                slot[alt] += weight * s

    exact = [r for r in readings if len(r.chars) == length]
    for r in exact:
        add(r.chars, r.weight)
    consensus = "".join(max(slot, key=lambda ch: slot[ch]) if slot else "?" for slot in tally)
    if exact:
        for r in readings:
            aligned = _align(r.chars, consensus) if len(r.chars) != length else None
            if aligned is not None:
                add(aligned, OFF_BY_ONE_WEIGHT * r.weight)
    return tally


def vote(readings: list[TrackReading], rules: RegionRules | None = None, top_n: int = 5) -> Vote | None:
    """The text ``readings`` agree on (None when none of them read anything)."""
    readings = [r for r in readings if r.chars]
    if not readings:
        return None
    by_length: dict[int, float] = defaultdict(float)
    for r in readings:
        by_length[len(r.chars)] += r.weight
    # Most weight wins; on a tie the longer text (a missed character is likelier than an invented one).
    length = max(by_length, key=lambda n: (by_length[n], n))
    tally = _tally(readings, length)
    exact = [r for r in readings if len(r.chars) == length]
    layout = exact[-1]  # boxes and lines of the newest reading of that length
    chars: list[Char] = []
    for slot, c in zip(tally, layout.chars, strict=False):
        total = sum(slot.values()) or 1.0
        ranked = sorted(slot.items(), key=lambda kv: (-kv[1], kv[0]))
        best, mass = ranked[0]
        chars.append(
            Char(
                char=best,
                box=c.box,
                score=mass / total,
                line=c.line,
                alternatives=[(a, m / total) for a, m in ranked[1:4]],
            )
        )
    text = "".join(c.char for c in chars)
    kept: tuple[int | None, ...] = tuple(range(len(chars)))
    region = None
    if rules is not None:
        choice = choose(chars, rules, top_n)
        region = choice.region or NO_REGION_MATCH if choice is not None else None
        if choice is not None and choice.region and choice.text != text:
            text, kept = choice.text, choice.kept
    shares = []
    for k, ch in zip(kept, text, strict=True):
        voted = chars[k] if k is not None else None
        share = None
        if voted is not None:
            share = voted.score if voted.char == ch else dict(voted.alternatives).get(ch)
        if share is None:  # a look-alike the rules chose that no reading voted for
            own = voted.score or 0.0 if voted is not None else 0.0
            share = own * (rules.lookalike_score if rules is not None else 0.0)
        shares.append(share)
    return Vote(
        text=text,
        score=float(min(shares)),
        support=len(exact),
        chars=chars,
        lines=layout.lines,
        region=region,
    )


@dataclass
class Track:
    """One plate followed across frames."""

    id: int
    box: Box
    """Where the plate was last detected."""
    det_score: float
    first_frame: int
    last_frame: int
    """The last frame with a detection."""
    hits: int = 1
    aspect: float = 0.0
    """Width / height of the plate when last seen whole (see ``TrackConfig.partial_width``): a box
    cut from the side keeps the plate's height, so height x aspect is the plate's whole width."""
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    """Per-frame motion of the box centre (smoothed). The centre, not the edges: a plate sliding
    behind a pole shrinks from one side, and edge velocities would fold its predicted box."""
    readings: deque[TrackReading] = field(default_factory=deque)
    last_read_frame: int | None = None
    attempts: int = 0
    """Times the OCR model was given this track's crop (readings keep only those with a text)."""
    vote: Vote | None = None
    confirmed: bool = False
    reported: bool = False
    """An event has been sent for this track."""
    first_box: Box | None = None
    """Where the plate was first detected (the direction of travel: first box to last)."""
    event_id: str = ""
    """The id its events carry (set with the first one; updates keep it)."""
    revision: int = -1
    """The revision of its latest event (0 for the first; each update adds one)."""
    reported_text: str | None = None
    """The text of its latest event (an update goes out when the vote turns to another text)."""

    def predicted(self, frame: int) -> np.ndarray:
        """The box expected at ``frame``: the last box moved at constant velocity."""
        shift = self.velocity * float(frame - self.last_frame)
        return np.asarray(self.box, np.float32) + np.concatenate([shift, shift])

    def add_reading(self, reading: TrackReading, max_readings: int) -> None:
        self.readings.append(reading)
        while len(self.readings) > max_readings:
            self.readings.popleft()

    def best_reading(self) -> TrackReading | None:
        """The most confident reading that agrees with the vote (any reading when none agrees)."""
        if not self.readings:
            return None
        text = self.vote.text if self.vote else None
        agreeing = [r for r in self.readings if r.text == text]
        return max(agreeing or self.readings, key=lambda r: r.weight)

    def event(self, source: str) -> dict[str, Any]:
        """The plate event: ``{"event": "plate", "text", "score", "first_frame", "last_frame",
        "track_id", "best_box", "readings", ...}``."""
        best = self.best_reading()
        return {
            "event": "plate",
            "source": source,
            "text": self.vote.text if self.vote else "",
            "score": round(self.vote.score, 4) if self.vote else 0.0,
            "confirmed": self.confirmed,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "track_id": self.id,
            "best_box": [round(v, 2) for v in (best.box if best else self.box)],
            "best_frame": best.frame if best else self.last_frame,
            "lines": self.vote.lines if self.vote else None,
            **({"region_match": self.vote.region} if self.vote and self.vote.region else {}),
            "readings": [
                {"frame": r.frame, "text": r.text, "score": round(r.score, 4)} for r in self.readings
            ],
        }


class Tracker:
    """Associates each frame's plate detections with tracks (see the module docstring)."""

    def __init__(self, config: TrackConfig | None = None) -> None:
        self.config = config or TrackConfig()
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(
        self, frame: int, boxes: np.ndarray, scores: np.ndarray, size: tuple[int, int] | None = None
    ) -> tuple[list[tuple[Track, int]], list[Track]]:
        """Match detections (``boxes`` [N, 4] xyxy in image pixels, ``scores`` [N]) at ``frame``.

        Returns (track, detection index) for every detection that continues or starts a track,
        and the tracks that ended: unseen for more than ``max_missed`` frames, or, given the image
        ``size`` (width, height), predicted to have driven out of it. Frame numbers may jump
        (dropped frames): predictions move by the motion of the frames in between.
        """
        cfg = self.config
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        # First end the tracks that are gone, so that a plate entering where one just left starts its own.
        gone = {
            t.id
            for t in self.tracks
            if frame - t.last_frame > cfg.max_missed
            or (
                size is not None
                and frame - t.last_frame >= 2
                and _left_the_frame(t, frame, size, cfg.edge_margin)
            )
        }
        ended = [t for t in self.tracks if t.id in gone]
        self.tracks = [t for t in self.tracks if t.id not in gone]
        free_tracks = list(self.tracks)
        matched: list[tuple[Track, int]] = []
        strong = [i for i in range(len(boxes)) if scores[i] >= cfg.high_score]
        weak = [i for i in range(len(boxes)) if scores[i] < cfg.high_score]
        for group, weak_stage in ((strong, False), (weak, True)):  # ByteTrack: confident detections first
            pairs = self._associate(frame, free_tracks, boxes, group, weak_stage)
            for track, i in pairs:
                self._continue(track, frame, boxes[i], float(scores[i]))
                free_tracks.remove(track)
                matched.append((track, i))
        taken = {i for _, i in matched}
        # A second box on a plate that already continues a track (NMS lets overlapping boxes through)
        # is not a new plate.
        claimed = boxes[sorted(taken)] if taken else np.zeros((0, 4), np.float32)
        overlap = iou_matrix(boxes, claimed).max(axis=1) if len(claimed) else np.zeros(len(boxes))
        for i in strong:
            if i not in taken and overlap[i] < cfg.duplicate_iou:
                track = Track(
                    id=self._next_id,
                    box=to_box(boxes[i]),
                    det_score=float(scores[i]),
                    first_frame=frame,
                    last_frame=frame,
                    first_box=to_box(boxes[i]),
                    aspect=float(boxes[i][2] - boxes[i][0]) / max(float(boxes[i][3] - boxes[i][1]), 1.0),
                )
                self._next_id += 1
                self.tracks.append(track)
                matched.append((track, i))
        matched.sort(key=lambda m: m[1])
        return matched, ended

    def finish(self) -> list[Track]:
        """End every track (the source ended)."""
        ended, self.tracks = self.tracks, []
        return ended

    def _associate(
        self, frame: int, tracks: list[Track], boxes: np.ndarray, group: list[int], weak: bool = False
    ) -> list[tuple[Track, int]]:
        """Greedy pairs of ``tracks`` and detections ``group``. Weak detections (``weak``) only
        continue tracks seen in the previous frame, by overlap: a weak box far from any live track is
        more likely a sign or a plate of another lane than the lost plate (ByteTrack's rule)."""
        if weak:
            tracks = [t for t in tracks if frame - t.last_frame <= 1]
        if not tracks or not group:
            return []
        predicted = np.stack([t.predicted(frame) for t in tracks])
        dets = boxes[group]
        # A plate's height changes little between frames (its width does, cut by the frame edge).
        heights = (
            np.maximum(predicted[:, 3] - predicted[:, 1], 1.0)[:, None]
            / np.maximum(dets[:, 3] - dets[:, 1], 1.0)[None]
        )
        same_size = (heights <= self.config.max_height_ratio) & (
            heights >= 1.0 / self.config.max_height_ratio
        )
        iou = np.where(same_size, iou_matrix(predicted, dets), 0.0)
        pairs: list[tuple[Track, int]] = []
        used_t: set[int] = set()
        used_d: set[int] = set()
        for ti, di in sorted(
            zip(*np.nonzero(iou >= self.config.match_iou), strict=True), key=lambda p: -iou[p]
        ):
            if ti not in used_t and di not in used_d:
                used_t.add(ti)
                used_d.add(di)
                pairs.append((tracks[ti], group[di]))
        # Small fast plates may not overlap their prediction at all: fall back on centre distance,
        # in plate widths; the gate widens with every frame unseen (an occluded plate's speed is a guess).
        if weak:
            return pairs
        # Distances in plate widths across and plate heights up and down: a plate does not jump lanes.
        pc = (predicted[:, :2] + predicted[:, 2:]) / 2
        dc = (dets[:, :2] + dets[:, 2:]) / 2
        size = np.maximum(predicted[:, 2:] - predicted[:, :2], 1.0)
        size[:, 0] = np.maximum(
            size[:, 0], size[:, 1] * np.array([t.aspect for t in tracks])
        )  # a part: the whole
        dist = np.linalg.norm((dc[None] - pc[:, None]) / size[:, None], axis=2)
        missed = np.array([frame - t.last_frame - 1 for t in tracks], np.float32)
        gate = np.minimum(
            self.config.max_centre_shift + self.config.gate_growth * np.maximum(missed, 0),
            self.config.max_gate,
        )
        # After a gap, a plate comes back ahead of where it was last seen, never behind it.
        last = np.array([((t.box[0] + t.box[2]) / 2, (t.box[1] + t.box[3]) / 2) for t in tracks], np.float32)
        velocity = np.stack([t.velocity for t in tracks])
        ahead = np.einsum("tdk,tk->td", dc[None] - last[:, None], velocity) >= 0
        allowed = (dist <= gate[:, None]) & (ahead | (missed[:, None] < 1)) & same_size
        for ti, di in sorted(zip(*np.nonzero(allowed), strict=True), key=lambda p: dist[p]):
            if ti not in used_t and di not in used_d:
                used_t.add(ti)
                used_d.add(di)
                pairs.append((tracks[ti], group[di]))
        return pairs

    def _continue(self, track: Track, frame: int, box: np.ndarray, score: float) -> None:
        gap = max(1, frame - track.last_frame)
        old = np.asarray(track.box, np.float32)
        width, height = float(box[2] - box[0]), max(float(box[3] - box[1]), 1.0)
        if (
            width >= self.config.partial_width * track.aspect * height
        ):  # the whole plate: its motion and shape
            step = ((box[:2] + box[2:]) - (old[:2] + old[2:])) / 2 / gap
            a = self.config.velocity_smoothing
            track.velocity = (a * step + (1 - a) * track.velocity).astype(np.float32)
            b = self.config.aspect_smoothing
            track.aspect = b * width / height + (1 - b) * track.aspect
        track.box = to_box(box)
        track.det_score = score
        track.last_frame = frame
        track.hits += 1


def _left_the_frame(track: Track, frame: int, size: tuple[int, int], edge_margin: float) -> bool:
    """Whether an unseen ``track`` has driven out of an image of ``size`` (width, height): it was last
    seen at an edge (within ``edge_margin`` of the frame or two frames' motion) moving towards it, or it is
    predicted to be mostly outside. Asked only of tracks unseen for a frame or more: a plate half out of the
    frame is still detected, clipped."""
    w, h = size
    x1, y1, x2, y2 = track.box
    vx, vy = (float(v) for v in track.velocity)
    mx, my = max(edge_margin * w, 2 * abs(vx)), max(edge_margin * h, 2 * abs(vy))
    if (
        (x1 <= mx and vx < 0)
        or (x2 >= w - mx and vx > 0)
        or (y1 <= my and vy < 0)
        or (y2 >= h - my and vy > 0)
    ):
        return True
    px1, py1, px2, py2 = (float(v) for v in track.predicted(frame))
    area = max(1e-6, (px2 - px1) * (py2 - py1))
    inside = max(0.0, min(px2, w) - max(px1, 0.0)) * max(0.0, min(py2, h) - max(py1, 0.0))
    return inside / area < 0.5


def needs_reading(track: Track, frame: int, box: Box, width: int, height: int, config: TrackConfig) -> bool:
    """Whether ``track``, detected at ``box`` in ``frame``, should be read now (OCR on demand)."""
    mx, my = config.edge_margin * width, config.edge_margin * height
    at_edge = box[0] <= mx or box[1] <= my or box[2] >= width - mx or box[3] >= height - my
    if at_edge and (track.attempts or track.hits < config.edge_patience):
        return False  # wait until the plate is fully in view; read a plate that stays at the edge anyway
    if track.last_read_frame is None:
        return True
    since = frame - track.last_read_frame
    if track.confirmed:
        return since >= config.read_every_confirmed
    if track.attempts < config.confirm_readings:
        return since >= 1
    extra = track.attempts - config.confirm_readings
    wait = config.read_every_unconfirmed * config.unconfirmed_backoff**extra
    return since >= min(round(wait), config.read_every_confirmed)


def reading_from_plate(plate: Plate, frame: int) -> TrackReading:
    return TrackReading(
        frame=frame,
        text=plate.text or "",
        score=plate.score or 0.0,
        chars=list(plate.chars),
        box=plate.box,
        lines=plate.lines,
    )
