"""Event sinks against real receivers: mosquitto stopped and restarted under load, a webhook that
fails, a queue that outlives the process, a queue that fills up."""

from __future__ import annotations

import json
import time

import pytest
from helpers.event_receivers import MQTT_PASSWORD, MqttSubscriber, WebhookReceiver, mosquitto_brokers

from runtime.config import EventsConfig
from runtime.events.record import new_event_id
from runtime.events.sinks import SinkError, Sinks, open_sink


@pytest.fixture
def mosquitto(tmp_path):
    yield from mosquitto_brokers(tmp_path)


FAST = dict(backoff_initial_s=0.1, backoff_max_s=0.5, http_timeout_s=2.0, publish_timeout_s=2.0)


def numbered(n: int, start: int = 0) -> list[dict]:
    return [{"event": "plate", "event_id": new_event_id(), "revision": 0, "n": start + i} for i in range(n)]


def test_mqtt_broker_restarted_mid_run_loses_nothing_and_keeps_order(mosquitto, tmp_path):
    broker = mosquitto()
    subscriber = MqttSubscriber(broker)
    messages: list[str] = []
    config = EventsConfig(queue_dir=str(tmp_path / "queues"), drain_timeout_s=20, **FAST)
    sink = open_sink(broker.url(), config, report=messages.append)
    sent = numbered(60)
    for event in sent[:20]:
        sink.send(event)
    time.sleep(0.3)
    broker.stop()  # the broker goes down mid-run: these 20 wait on disk
    for event in sent[20:40]:
        sink.send(event)
        time.sleep(0.02)
    assert sink.stats()["queued"] > 0
    broker.start()
    for event in sent[40:]:
        sink.send(event)
    sink.close()
    got = subscriber.wait_for(len(sent))
    subscriber.close()
    # QoS 1: a copy may arrive twice (a PUBACK lost in the cut); event_id tells it apart.
    first_seen = list(dict.fromkeys(e["event_id"] for e in got))
    assert first_seen == [e["event_id"] for e in sent], "every event once, in the order sent"
    assert [e["n"] for e in got if e["event_id"] in first_seen][: len(sent)] == sorted(
        e["n"] for e in got if e["event_id"] in first_seen
    )[: len(sent)]
    statuses = [s for s, _ in subscriber.status()]
    assert statuses[0] == "online" and statuses[-1] == "offline", statuses
    assert any("cannot deliver" in m for m in messages) and any("delivering again" in m for m in messages)
    assert all(MQTT_PASSWORD not in m for m in messages), "the password must never be printed"
    assert MQTT_PASSWORD not in json.dumps(sink.stats())


def test_mqtt_status_is_retained_offline_after_the_run(mosquitto, tmp_path):
    broker = mosquitto()
    config = EventsConfig(queue_dir=str(tmp_path / "queues"), **FAST)
    with Sinks.open([broker.url("cam")], config, report=lambda m: None) as sinks:
        sinks.send(numbered(1)[0])
    late = MqttSubscriber(broker, "cam")  # subscribes after the run: only retained messages
    deadline = time.monotonic() + 5
    while not late.status() and time.monotonic() < deadline:
        time.sleep(0.05)
    late.close()
    assert late.status() == [("offline", True)]


def test_webhook_failing_the_first_3_requests_loses_no_event(tmp_path):
    receiver = WebhookReceiver(fail_first=3, user="hook", password="Hook-Secret-11")
    messages: list[str] = []
    config = EventsConfig(queue_dir=str(tmp_path / "queues"), **FAST)
    sink = open_sink(receiver.url(auth="hook:Hook-Secret-11@"), config, report=messages.append)
    sent = numbered(8)
    for event in sent:
        sink.send(event)
    sink.close()
    receiver.close()
    assert [e["event_id"] for e in receiver.accepted] == [e["event_id"] for e in sent]
    assert receiver.requests == len(sent) + 3 and all(receiver.auth_seen)
    assert sink.stats()["failures"] == 3 and sink.stats()["queued"] == 0
    assert all("Hook-Secret-11" not in m for m in messages) and messages


def test_undelivered_events_stay_on_disk_and_go_at_the_next_start(tmp_path):
    receiver = WebhookReceiver()
    url = receiver.url()
    receiver.close()  # the receiver is down for the whole first run
    config = EventsConfig(queue_dir=str(tmp_path / "queues"), drain_timeout_s=0.5, **FAST)
    messages: list[str] = []
    sink = open_sink(url, config, report=messages.append)
    sent = numbered(5)
    for event in sent:
        sink.send(event)
    sink.close()
    assert any("5 events not delivered yet" in m for m in messages), messages
    # The receiver is back on the same port; a new run delivers the old events first, then its own.
    back = WebhookReceiver(port=receiver.port)
    sink = open_sink(url, config, report=messages.append)
    later = numbered(2, start=5)
    for event in later:
        sink.send(event)
    sink.close()
    back.close()
    assert [e["n"] for e in back.accepted] == list(range(7))
    assert any("left from an earlier run" in m for m in messages)


def test_a_full_queue_drops_the_oldest_and_says_so(tmp_path):
    receiver = WebhookReceiver()
    url = receiver.url()
    receiver.close()
    config = EventsConfig(queue_dir=str(tmp_path / "q"), queue_max_events=5, drain_timeout_s=0.2, **FAST)
    messages: list[str] = []
    sink = open_sink(url, config, report=messages.append)
    for event in numbered(8):
        sink.send(event)
    assert sink.stats()["dropped"] == 3 and sink.stats()["queued"] == 5
    sink.close()
    assert any("queue full" in m and "dropped" in m for m in messages), messages


def test_a_rejected_event_is_kept_beside_the_queue(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Reject(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(400)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Reject)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    messages: list[str] = []
    config = EventsConfig(queue_dir=str(tmp_path / "q"), **FAST)
    sink = open_sink(f"http://127.0.0.1:{server.server_address[1]}/x", config, report=messages.append)
    event = numbered(1)[0]
    sink.send(event)
    sink.close()
    server.shutdown()
    server.server_close()
    rejected = list((tmp_path / "q").glob("*.rejected.jsonl"))
    assert len(rejected) == 1 and json.loads(rejected[0].read_text())["event_id"] == event["event_id"]
    assert any("rejected (HTTP 400" in m for m in messages)


def test_bad_sink_specs_are_clear_errors(tmp_path):
    config = EventsConfig(queue_dir=str(tmp_path / "q"))
    for spec, words in [
        ("kafka://host/topic", "unknown sink"),
        ("mqtt://user:Pw-123@host", "expected mqtt://"),
        ("jsonl:", "needs a path"),
    ]:
        try:
            open_sink(spec, config)
        except SinkError as e:
            assert words in str(e) and "Pw-123" not in str(e), str(e)
        else:
            raise AssertionError(f"{spec} should be refused")


def test_mqtt_broker_down_at_start_gets_the_events_once_it_is_up(mosquitto, tmp_path):
    broker = mosquitto()
    subscriber = MqttSubscriber(broker)  # a persistent session, kept by the broker over its restart
    broker.stop()  # nothing listens when the sink starts
    config = EventsConfig(queue_dir=str(tmp_path / "queues"), drain_timeout_s=20, **FAST)
    messages: list[str] = []
    sink = open_sink(broker.url(), config, report=messages.append)
    sent = numbered(3)
    for event in sent:
        sink.send(event)
    time.sleep(0.5)
    assert sink.stats()["queued"] == 3 and not sink.stats()["connected"]
    broker.start()
    sink.close()
    got = subscriber.wait_for(len(sent))
    subscriber.close()
    assert list(dict.fromkeys(e["event_id"] for e in got)) == [e["event_id"] for e in sent]
