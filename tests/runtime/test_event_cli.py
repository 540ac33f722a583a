"""``python -m runtime`` delivering plate events: a real mosquitto stopped mid-video and restarted,
a webhook failing its first requests, two cameras (a file and the RTSP test server) in one process
with the status endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from helpers.event_receivers import MQTT_PASSWORD, MqttSubscriber, WebhookReceiver, mosquitto_brokers

from data.synth.video import make_video

ROOT = Path(__file__).resolve().parents[2]
VIDEO = dict(
    frames=120,
    plates=5,
    fps=25.0,
    styles=["br_old"],
    two_line_share=0.0,
    fonts=["roboto-condensed:600", "barlow-semi-condensed:SemiBold"],
)
FAST = [
    "--delivery",
    "backoff_initial_s=0.2",
    "--delivery",
    "backoff_max_s=1",
    "--delivery",
    "publish_timeout_s=2",
    "--delivery",
    "drain_timeout_s=30",
    "--delivery",
    "crop=none",
]


@pytest.fixture
def mosquitto(tmp_path):
    yield from mosquitto_brokers(tmp_path)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli_traffic")
    make_video(out, seed=21, progress=False, **VIDEO)
    return out


def key(event: dict) -> tuple[str, int]:
    return event["event_id"], event["revision"]


def test_events_reach_mqtt_through_a_broker_restart_and_a_failing_webhook(mosquitto, traffic, tmp_path):
    broker = mosquitto()
    subscriber = MqttSubscriber(broker)
    hook = WebhookReceiver(fail_first=3)
    jsonl = tmp_path / "events.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "runtime",
        str(traffic / "video.mp4"),
        "--region",
        "br",
        "--events",
        broker.url(),
        "--events",
        hook.url(),
        "--events",
        f"jsonl:{jsonl}",
        "--delivery",
        f"queue_dir={tmp_path / 'queues'}",
        *FAST,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    timers = []
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if not timers:  # the first event is out: the broker goes down, and is back 3 s later
            broker.stop()
            timers.append(threading.Timer(3.0, broker.start))
            timers[0].start()
    assert timers, proc.stderr.read()
    timers[0].join()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    sent = [json.loads(line) for line in jsonl.read_text().splitlines()]
    plates = [e for e in sent if e["event"] == "plate"]
    assert len(plates) >= 3, "the video should give several plate events"
    assert len(printed) == len(sent)

    got = subscriber.wait_for(len(sent), timeout=30)
    subscriber.close()
    hook.close()
    arrived = list(dict.fromkeys(key(e) for e in got))  # QoS 1: a copy may come twice
    assert arrived == [key(e) for e in sent], "MQTT: every event once, in order"
    assert [key(e) for e in hook.accepted] == [key(e) for e in sent], "webhook: none lost, in order"
    assert hook.requests == len(sent) + 3
    assert [s for s, _ in subscriber.status()][-1] == "offline"

    assert "cannot deliver" in err and "delivering again" in err
    assert MQTT_PASSWORD not in err and all(MQTT_PASSWORD not in line for line in printed)
    summary = json.loads(err.split("summary: ", 1)[1].splitlines()[0])
    assert summary["events"] == len(plates) and summary["confirmed"] == len(plates)
    assert len(summary["sinks"]) == 3 and all(MQTT_PASSWORD not in s["sink"] for s in summary["sinks"])
    assert all(s["queued"] == 0 for s in summary["sinks"])


def test_two_cameras_in_one_process_each_with_its_events_and_status(rtsp_server, traffic, tmp_path):
    """A video file and the RTSP test server as two cameras of one process, one model pair; the
    RTSP camera is switched off at the end (it does not come back: exit 3, the file camera's
    events all delivered)."""
    street = tmp_path / "street"
    make_video(street, seed=22, progress=False, **{**VIDEO, "frames": 75, "plates": 2})
    server = rtsp_server(street / "video.mp4", fps=25, password="Cam-Secret-8812")
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(
        "cameras:\n"
        f"  - name: gate\n    source: {traffic / 'video.mp4'}\n    region: br\n"
        f"  - name: street\n    source: {server.url}\n    region: br\n"
        "    stream: {reconnect_attempts: 0, read_timeout_s: 3, open_timeout_s: 5}\n"
        "    track: {event_at: confirm}\n"
    )
    jsonl = tmp_path / "events.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "runtime",
        "--cameras",
        str(cameras),
        "--events",
        f"jsonl:{jsonl}",
        "--status-port",
        "0",
        "--json",
        "--events-only",
        "--delivery",
        f"queue_dir={tmp_path / 'queues'}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    err_lines: list[str] = []
    status_url: list[str] = []
    statuses: list[dict] = []

    def read_err() -> None:
        for line in proc.stderr:
            err_lines.append(line)
            if line.startswith("status: "):
                status_url.append(line.split(" ", 1)[1].strip())

    def watch_status() -> None:
        """Poll the status endpoint; once the file camera has ended and the RTSP camera has sent a
        plate event, the RTSP camera goes dark for good."""
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            if not status_url:
                continue
            try:
                with urllib.request.urlopen(status_url[0], timeout=5) as answer:
                    status = json.loads(answer.read())
            except OSError:
                continue  # the run is ending
            statuses.append(status)
            cams = status["cameras"]
            if cams["gate"]["state"] == "ended" and cams["street"]["events"] > 0:
                break
        server.kill()

    threads = [threading.Thread(target=f, daemon=True) for f in (read_err, watch_status)]
    for t in threads:
        t.start()
    lines = [json.loads(raw) for raw in proc.stdout]
    code = proc.wait(timeout=120)
    for t in threads:
        t.join(timeout=60)
    err = "".join(err_lines)
    assert code == 3, err
    summary = json.loads(err.split("summary: ", 1)[1].splitlines()[0])
    assert set(summary["cameras"]) == {"gate", "street"}
    assert (
        summary["cameras"]["gate"]["state"] == "ended" and summary["cameras"]["street"]["state"] == "failed"
    )

    truth = {
        "gate": {p["text"] for p in json.loads((traffic / "truth.json").read_text())["plates"]},
        "street": {p["text"] for p in json.loads((street / "truth.json").read_text())["plates"]},
    }
    plates = [e for e in lines if e.get("event") == "plate"]
    for name in ("gate", "street"):
        texts = {e["text"] for e in plates if e["camera"] == name and not e["update"]}
        assert texts and texts <= truth[name], (name, texts, truth[name])
    assert {e["text"] for e in plates if e["camera"] == "gate"} == truth["gate"]
    assert summary["cameras"]["gate"]["events"] == len(truth["gate"])
    assert [json.loads(x) for x in jsonl.read_text().splitlines()] == lines
    assert statuses and set(statuses[0]["cameras"]) == {"gate", "street"} and statuses[0]["ok"]
    running = [s["cameras"]["gate"] for s in statuses if s["cameras"]["gate"]["state"] == "running"]
    assert any(c["fps"] for c in running), "per-camera FPS while the camera runs"
    assert all("Cam-Secret-8812" not in json.dumps(s) for s in statuses)
    assert "Cam-Secret-8812" not in err and all("Cam-Secret-8812" not in json.dumps(x) for x in lines)
