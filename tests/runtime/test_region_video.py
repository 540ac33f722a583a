"""Video voting with an umbrella region: a synthetic Brazilian roadside video read by the shipped
models with ``--region br`` and with ``--region auto``. The umbrella must confirm every plate the
country's rules confirm, with the same text, within the same number of readings, and name the
member that matched."""

from __future__ import annotations

import pytest
from helpers.video_truth import plate_events, plate_of, truth_of

from data.synth.video import make_video
from runtime.config import PipelineConfig, TrackConfig
from runtime.pipeline import Predictor

# As tests/runtime/test_video.py's roadside video (fonts the shipped OCR model reads), shorter.
VIDEO = dict(
    frames=90,
    plates=3,
    fps=25.0,
    styles=["br_old", "mercosur"],
    two_line_share=0.0,
    fonts=["roboto-condensed:600", "barlow-semi-condensed:SemiBold"],
    duration=(40, 60),
)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    out = tmp_path_factory.mktemp("region_video")
    make_video(out, seed=11, progress=False, **VIDEO)
    return out


def confirmations(folder, region: str) -> dict[int, dict]:
    """Per true plate: its event at confirmation (event_at=confirm), for ``region``'s rules."""
    truth, boxes = truth_of(folder)
    with Predictor(config=PipelineConfig(region=region, threads=1)) as predictor:
        # every track's event, confirmed or not: which plates each region's rules confirm is the question
        events = plate_events(
            predictor.track(str(folder / "video.mp4"), TrackConfig(report_unconfirmed=True))
        )
    out = {pid: e for e in events if (pid := plate_of(e, boxes)) is not None}
    assert len(out) == len(truth["plates"]), f"{region}: events for {sorted(out)} of {len(truth['plates'])}"
    return out


def test_an_umbrella_confirms_within_the_same_number_of_readings(video):
    country, umbrella = confirmations(video, "br"), confirmations(video, "auto")
    confirmed = {pid: e for pid, e in country.items() if e["confirmed"]}
    assert confirmed, "the country's rules confirmed no plate: nothing to compare"
    for pid, e in confirmed.items():
        u = umbrella[pid]
        print(
            pid, e["text"], len(e["readings"]), "readings;", u["text"], len(u["readings"]), u["region_match"]
        )
        assert u["confirmed"] and u["text"] == e["text"], (e["text"], u["text"])
        assert len(u["readings"]) <= len(e["readings"]), (pid, e["readings"], u["readings"])
        assert e["region_match"] == "br" and u["region_match"] in {"br", *_sharing(e["text"])}


def _sharing(text: str) -> set[str]:
    """Regions other than br whose formats write ``text`` just as likely (an umbrella names one)."""
    from runtime.rules import available_regions, load_rules

    weight = load_rules("br").match(text)[1]
    out = set()
    for name in available_regions():
        if name in ("us", "eu", "auto"):
            continue
        m = load_rules(name).match(text)
        if m is not None and m[1] >= weight:
            out.add(name)
    return out
