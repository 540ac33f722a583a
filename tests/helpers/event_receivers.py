"""Real receivers for the event tests: Debian's mosquitto broker and a webhook server, on loopback.

``mosquitto_brokers`` (a fixture's body): a factory starting /usr/sbin/mosquitto on a free port with a
generated config (user and password, persistence in the test's folder), stopped by process id at teardown;
tests skip, naming the reason, when the binary is missing (``make system-deps`` installs it).
``MqttSubscriber`` records what the broker forwards (a persistent QoS 1 session, so messages queued
while it was disconnected still arrive). ``WebhookReceiver``: a stdlib HTTP server that answers
500 to its first ``fail_first`` requests and records the JSON bodies it accepted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

MOSQUITTO = os.environ.get("LPR_MOSQUITTO", "/usr/sbin/mosquitto")
MQTT_USER, MQTT_PASSWORD = "lpr", "Mqtt-Secret-5519"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_unavailable() -> str | None:
    if not Path(MOSQUITTO).is_file():
        return f"{MOSQUITTO} not found; run `make system-deps` (apt: mosquitto)"
    if shutil.which("mosquitto_passwd") is None and not Path("/usr/bin/mosquitto_passwd").is_file():
        return "mosquitto_passwd not found; run `make system-deps` (apt: mosquitto)"
    return None


class Mosquitto:
    """One broker on a fixed port (so clients reconnect to the same address after a restart)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0
        passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        self.password_file = folder / "passwd"
        subprocess.run(
            [passwd, "-b", "-c", str(self.password_file), MQTT_USER, MQTT_PASSWORD],
            check=True,
            capture_output=True,
        )
        self.password_file.chmod(0o600)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {self.password_file}\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 10000\n" + ("user root\n" if os.geteuid() == 0 else "")
            # As root, mosquitto switches to the user "mosquitto", who cannot read the test's folder.
        )

    def url(self, topic: str = "lpr") -> str:
        return f"mqtt://{MQTT_USER}:{MQTT_PASSWORD}@127.0.0.1:{self.port}/{topic}"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        self.starts += 1
        log = open(self.folder / f"mosquitto_{self.starts}.log", "wb")
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not start; see {self.folder}/mosquitto_{self.starts}.log")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop it (SIGTERM: it saves its persistent sessions, as on a service restart)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def mosquitto_brokers(tmp_path: Path) -> Iterator[Callable[[], Mosquitto]]:
    """The body of a ``mosquitto`` fixture: yields a factory of started brokers, stops them after."""
    reason = mosquitto_unavailable()
    if reason is not None:
        pytest.skip(reason)
    brokers: list[Mosquitto] = []

    def start() -> Mosquitto:
        folder = tmp_path / f"broker{len(brokers)}"
        folder.mkdir()
        broker = Mosquitto(folder)
        brokers.append(broker)
        return broker.start()

    yield start
    for broker in brokers:
        broker.stop(signal.SIGKILL)


class MqttSubscriber:
    """Records (topic, payload, retained) of every message under ``topic/#``."""

    def __init__(self, broker: Mosquitto, topic: str = "lpr") -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self.connected = threading.Event()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-subscriber-{broker.port}", clean_session=False
        )
        client.username_pw_set(MQTT_USER, MQTT_PASSWORD)
        client.reconnect_delay_set(1, 1)

        def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            c.subscribe(f"{topic}/#", qos=1)
            self.connected.set()

        def on_disconnect(*args: Any) -> None:
            self.connected.clear()

        def on_message(c: Any, userdata: Any, msg: Any) -> None:
            with self._lock:
                self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

        client.on_connect, client.on_disconnect, client.on_message = on_connect, on_disconnect, on_message
        client.connect("127.0.0.1", broker.port, keepalive=5)
        client.loop_start()
        if not self.connected.wait(10):
            raise RuntimeError("the test subscriber could not connect")
        self.client = client

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/events")]

    def status(self) -> list[tuple[str, bool]]:
        with self._lock:
            return [(p, r) for t, p, r in self.messages if t.endswith("/status")]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until ``count`` distinct (event_id, revision) have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if len({(e["event_id"], e.get("revision", 0)) for e in events}) >= count:
                return events
            time.sleep(0.1)
        return self.events()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class WebhookReceiver:
    """An HTTP server on loopback: 500 to the first ``fail_first`` POSTs, then 200, recording bodies."""

    def __init__(
        self, fail_first: int = 0, user: str | None = None, password: str | None = None, port: int = 0
    ) -> None:
        import base64

        self.fail_first = fail_first
        self.requests = 0
        self.accepted: list[dict[str, Any]] = []
        self.auth_seen: list[bool] = []
        expected = (
            "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user is not None else None
        )
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests += 1
                receiver.auth_seen.append(expected is None or self.headers.get("Authorization") == expected)
                if receiver.requests <= receiver.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.accepted.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", auth: str = "") -> str:
        return f"http://{auth}127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
