"""The files users write for events (zones, watch lists, cameras) and the small parts around them:
formats, clear errors naming the file and entry, the status endpoint over real HTTP, the queue lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from runtime.cameras import CamerasError, load_cameras
from runtime.config import EventsConfig
from runtime.events.queue import DiskQueue, QueueError
from runtime.events.record import direction_of
from runtime.events.status import StatusServer
from runtime.events.watchlist import WatchlistError, load_watchlist
from runtime.events.zones import ZoneError, load_zones

ROOT = Path(__file__).resolve().parents[2]


def test_zones_relative_and_pixel_include_and_exclude(tmp_path):
    path = tmp_path / "zones.yaml"
    path.write_text(
        "zones:\n"
        "  - {name: bottom, points: [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]}\n"
        "cameras:\n"
        "  gate:\n"
        "    - {name: left, coords: pixel, points: [[0, 0], [100, 0], [100, 100], [0, 100]]}\n"
        "    - {name: hole, type: exclude, coords: pixel, points: [[40, 40], [60, 40], [60, 60], [40, 60]]}\n"
    )
    zones = load_zones(path)
    default, gate = zones.for_camera("street"), zones.for_camera("gate")
    assert default.zone_of((10, 80, 30, 90), 200, 100) == (True, "bottom")
    assert default.zone_of((10, 10, 30, 20), 200, 100) == (False, None)
    assert gate.zone_of((10, 10, 20, 20), 200, 200) == (True, "left")
    assert gate.zone_of((45, 45, 55, 55), 200, 200) == (False, None), "inside the exclude zone"
    assert gate.zone_of((150, 150, 160, 160), 200, 200) == (False, None), "outside every include zone"


@pytest.mark.parametrize(
    "text, words",
    [
        ("zones:\n  - {name: a, points: [[0, 0], [1, 1]]}\n", "zone 1 ('a'): points must be at least 3"),
        ("zones:\n  - {name: a, points: [[0, 0], [1, 0], [1, 1]], type: keep}\n", "type 'keep'"),
        ("zones:\n  - {name: a, coords: relative, points: [[0, 0], [5, 0], [1, 1]]}\n", "within [0, 1]"),
        ("zones: []\nfoo: 1\n", "unknown keys ['foo']"),
        ("cameras:\n  gate:\n    - {points: [[0, 0], [1, 0]]}\n", "camera 'gate' zone 1"),
    ],
)
def test_bad_zones_files_name_the_file_and_zone(tmp_path, text, words):
    path = tmp_path / "zones.yaml"
    path.write_text(text)
    with pytest.raises(ZoneError) as e:
        load_zones(path)
    assert str(path) in str(e.value) and words in str(e.value)


def test_watch_lists_csv_and_yaml(tmp_path):
    csv = tmp_path / "w.csv"
    csv.write_text("plate,label,list\nabc-1234,Ana,allow\nXYZ 9876,stolen,deny\nDEF5678,,\n")
    watch = load_watchlist(csv)
    assert [(e.plate, e.list) for e in watch.entries] == [
        ("ABC1234", "allow"),
        ("XYZ9876", "deny"),
        ("DEF5678", "allow"),
    ]
    assert watch.match("ABC1234")["distance"] == 0
    assert watch.match("A8C1234")["distance"] == 0.5, "B/8 is a look-alike swap"
    assert watch.match("ABC1235")["distance"] == 1
    assert watch.match("ABC12") is None
    yaml = tmp_path / "w.yaml"
    yaml.write_text("max_distance: 0\nallow: [ABC1234]\ndeny: [{plate: ABC1235, label: x}]\n")
    strict = load_watchlist(yaml)
    assert strict.match("ABC1234")["list"] == "allow" and strict.match("ABC1236") is None
    tie = tmp_path / "tie.yaml"
    tie.write_text("allow: [ABC1234]\ndeny: [ABC1236]\n")
    assert load_watchlist(tie).match("ABC1235")["list"] == "deny", "a tie goes to deny"


@pytest.mark.parametrize(
    "name, text, words",
    [
        ("w.csv", "label,list\nx,allow\n", "line 1: the header must name a 'plate' column"),
        ("w.csv", "plate,list\nABC1234,maybe\n", "line 2: list 'maybe'"),
        ("w.csv", "plate\nAB#12\n", "line 2: plate 'AB#12'"),
        ("w.yaml", "allow: [ABC1234]\ndeny: [ABC1234]\n", "both the allow and the deny list"),
        ("w.yaml", "allow: [ABC1234]\nwarn: [X]\n", "unknown keys ['warn']"),
        ("w.txt", "", "empty"),
    ],
)
def test_bad_watch_lists_name_the_file_and_line(tmp_path, name, text, words):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(WatchlistError) as e:
        load_watchlist(path)
    assert str(path) in str(e.value) and words in str(e.value)


def test_cameras_file_resolves_paths_and_refuses_mistakes(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"")
    (tmp_path / "zones.yaml").write_text(
        "cameras:\n  gate:\n    - {name: z, points: [[0, 0], [1, 0], [1, 1]]}\n"
    )
    good = tmp_path / "cameras.yaml"
    good.write_text(
        "cameras:\n"
        "  - {name: gate, source: v.mp4, zones: zones.yaml, track: {event_at: end}}\n"
        "  - {name: cam, source: 'rtsp://u:p@h/s', events: [jsonl:x.jsonl]}\n"
    )
    gate, cam = load_cameras(good)
    assert gate.source == str(tmp_path / "v.mp4") and gate.zones.zones[0].name == "z"
    assert cam.source == "rtsp://u:p@h/s" and cam.events == ["jsonl:x.jsonl"] and cam.zones is None
    for text, words in [
        ("cameras:\n  - {name: a, source: x.mp4}\n  - {name: a, source: y.mp4}\n", "a second camera"),
        ("cameras:\n  - {name: a}\n", "camera 'a': no source"),
        ("cameras:\n  - {name: a, source: x.mp4, track: {nope: 1}}\n", "unknown keys ['nope']"),
        ("cameras:\n  - {name: a, source: x.mp4, colour: red}\n", "unknown keys ['colour']"),
        ("cams: []\n", "expected 'cameras:'"),
    ]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(CamerasError) as e:
            load_cameras(bad)
        assert str(bad) in str(e.value) and words in str(e.value), str(e.value)


def test_direction_from_first_and_last_box():
    assert direction_of((0, 0, 40, 10), (0, 0, 60, 15), 0.15, 0.5) == "approaching"
    assert direction_of((0, 0, 60, 15), (0, 0, 40, 10), 0.15, 0.5) == "leaving"
    assert direction_of((0, 0, 40, 10), (100, 0, 140, 10), 0.15, 0.5) == "right"
    assert direction_of((100, 0, 140, 10), (0, 0, 40, 10), 0.15, 0.5) == "left"
    assert direction_of((0, 0, 40, 10), (5, 0, 45, 10), 0.15, 0.5) is None


def test_status_endpoint_serves_json_and_health(tmp_path):
    state = {"ok": True, "cameras": {"gate": {"fps": 12.5}}}
    with StatusServer(lambda: state, 0) as server:
        with urllib.request.urlopen(server.url, timeout=5) as answer:
            assert json.loads(answer.read()) == state
        health = server.url.replace("/status", "/health")
        with urllib.request.urlopen(health, timeout=5) as answer:
            assert json.loads(answer.read()) == {"ok": True}
        state["ok"] = False
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(health, timeout=5)
        assert e.value.code == 503
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(server.url.replace("/status", "/nope"), timeout=5)
        assert e.value.code == 404


def test_a_queue_belongs_to_one_process(tmp_path):
    path = tmp_path / "q.sqlite"
    queue = DiskQueue(path, 10)
    queue.put('{"n": 1}')
    other = subprocess.run(
        [sys.executable, "-c", f"from runtime.events.queue import DiskQueue; DiskQueue({str(path)!r}, 10)"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert other.returncode != 0 and "in use by another process" in other.stderr
    queue.close()
    again = DiskQueue(path, 10)
    assert again.peek() is not None and again.peek()[1] == '{"n": 1}'
    again.close()
    (tmp_path / "file").write_text("")
    with pytest.raises(QueueError):
        DiskQueue(tmp_path / "file" / "q.sqlite", 10)


def test_cli_refuses_event_options_for_images_and_bad_settings(tmp_path):
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for args, words in [
        ([str(image_dir), "--events", "jsonl:x"], "plate events come from video sources only"),
        (["x.mp4", "--delivery", "crop=png"], "crop='png'"),
        (["x.mp4", "--events", "kafka://h/t"], "unknown sink"),
        (["--cameras", str(tmp_path / "none.yaml")], "cannot read"),
    ]:
        run = subprocess.run(
            [sys.executable, "-m", "runtime", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            env={**os.environ, "HOME": str(tmp_path)},
        )
        assert run.returncode == 2 and words in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert EventsConfig().crop == "base64"
