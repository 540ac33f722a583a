"""Where events go: ``--events SPEC`` (given several times, every event goes to each).

* ``jsonl:PATH`` - one JSON object per line, appended and flushed per event (``jsonl:-``: stdout).
* ``mqtt://[user:pass@]host[:port]/topic`` (``mqtts://`` for TLS) - each event published to
  ``topic/events`` with QoS 1; ``topic/status`` holds ``online`` (retained) while we run and
  ``offline`` after (retained; also the last will, so a crash or a cut cable says so too).
* ``http://...`` / ``https://...`` - a webhook: each event POSTed as JSON (``user:pass@`` becomes
  HTTP basic auth). 2xx is delivered; timeouts, connection errors, 408, 429 and 5xx are retried
  with back-off; any other answer is a rejection: the event goes to ``<queue>.rejected.jsonl``
  beside the queue and a warning names it (the receiver will never take it; nothing is dropped
  silently).

MQTT and webhook sinks push each event onto their own bounded queue on disk (runtime/events/queue.py)
and deliver from it in order on a thread of their own, one event at a time, removing it only once
acknowledged: an outage delays events, it loses none (the oldest go only when the queue is full,
counted and reported). A broker may see an event twice (QoS 1: a PUBACK lost in the cut); events
carry ``event_id`` and ``revision`` so consumers can drop the second copy.

Credentials never appear in messages (:func:`runtime.streams.redact_url`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from runtime.config import EventsConfig
from runtime.errors import InputError
from runtime.events.queue import DiskQueue
from runtime.frames import redact_url

SINK_SCHEMES = ("jsonl:", "mqtt://", "mqtts://", "http://", "https://")
RETRY_HTTP_STATUS = (408, 425, 429)
"""Answers below 500 that mean "later", not "never"."""


class SinkError(InputError):
    """A sink specification that cannot be used (the message names it, credentials masked)."""


def warn(message: str) -> None:
    print(f"warning: {redact_url(message)}", file=sys.stderr, flush=True)


class Sink:
    """Takes events (``send``) and delivers them; ``close`` flushes what it can."""

    name: str
    """The sink's specification with credentials masked."""

    def send(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {"sink": self.name}


class JsonlSink(Sink):
    """Events appended to a file (or stdout), one JSON line each, flushed at once."""

    def __init__(self, path: str) -> None:
        self.name = f"jsonl:{path}"
        self.path = path
        self.sent = 0
        self._lock = threading.Lock()
        if path == "-":
            self._file: IO[str] = sys.stdout
        else:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self._file = open(path, "a", encoding="utf-8")
            except OSError as e:
                raise SinkError(f"--events {self.name}: cannot write here ({e.strerror or e})") from None

    def send(self, event: dict[str, Any]) -> None:
        line = json.dumps(event) + "\n"
        with self._lock:  # cameras on threads of their own share a sink: whole lines only
            self._file.write(line)
            self._file.flush()
            self.sent += 1

    def close(self) -> None:
        if self._file is not sys.stdout:
            self._file.close()

    def stats(self) -> dict[str, Any]:
        return {"sink": self.name, "delivered": self.sent, "queued": 0}


class QueuedSink(Sink):
    """A network sink: events go to a queue on disk, a thread delivers them in order (see above).

    Subclasses implement ``_deliver(body) -> bool`` (True: acknowledged; False: try again later,
    after a back-off; raise :class:`Rejected` when the receiver will never take this event)."""

    def __init__(self, spec: str, config: EventsConfig, report: Callable[[str], None] = warn) -> None:
        self.spec = spec
        self.name = redact_url(spec)
        self.config = config
        self.report = report
        self.delivered = 0
        self.failures = 0
        self.rejected = 0
        self.last_error: str | None = None
        self.down_since: float | None = None
        self.queue = DiskQueue(queue_path(config, spec), config.queue_max_events)
        waiting = len(self.queue)
        if waiting:
            self.report(f"events {self.name}: {waiting} events left from an earlier run are sent first")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sink {self.name}", daemon=True)

    def start(self) -> QueuedSink:
        self._thread.start()
        return self

    def send(self, event: dict[str, Any]) -> None:
        dropped = self.queue.put(json.dumps(event))
        if dropped:
            self.report(
                f"events {self.name}: queue full ({self.config.queue_max_events} events, "
                f"{self.queue.path}): the oldest {dropped} dropped ({self.queue.dropped} so far)"
            )

    def _deliver(self, body: str) -> bool:
        raise NotImplementedError

    def _run(self) -> None:
        backoff = self.config.backoff_initial_s
        while not self._stop.is_set():
            item = self.queue.peek(timeout=0.2)
            if item is None:
                continue
            seq, body = item
            try:
                ok = self._deliver(body)
            except Rejected as e:
                self._reject(body, str(e))
                self.queue.ack(seq)
                continue
            except Exception as e:  # noqa: BLE001 - any failure of a delivery is retried, never fatal
                ok, self.last_error = False, f"{type(e).__name__}: {e}"
            if ok:
                self.queue.ack(seq)
                self.delivered += 1
                backoff = self.config.backoff_initial_s
                if self.down_since is not None:
                    outage = time.monotonic() - self.down_since
                    self.report(
                        f"events {self.name}: delivering again after {outage:.1f} s "
                        f"({len(self.queue)} still queued)"
                    )
                    self.down_since = None
                continue
            self.failures += 1
            if self.down_since is None:
                self.down_since = time.monotonic()
                self.report(
                    f"events {self.name}: cannot deliver ({self.last_error}); queued on disk, "
                    f"retrying with back-off"
                )
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.config.backoff_max_s)

    def _reject(self, body: str, why: str) -> None:
        self.rejected += 1
        path = self.queue.path.with_name(self.queue.path.stem + ".rejected.jsonl")
        with open(path, "a", encoding="utf-8") as f:
            f.write(body + "\n")
        self.report(f"events {self.name}: event rejected ({why}); kept in {path}")

    def close(self) -> None:
        """Deliver what is queued (up to ``drain_timeout_s``), then stop; the rest stays on disk."""
        if self._thread.is_alive():
            self.queue.wait_empty(self.config.drain_timeout_s)
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.config.http_timeout_s + self.config.publish_timeout_s + 1)
        left = len(self.queue)
        if left:
            self.report(
                f"events {self.name}: {left} events not delivered yet; kept in {self.queue.path} "
                "and sent at the next start"
            )
        if not self._thread.is_alive():  # else a delivery still running would find its queue closed
            self.queue.close()

    def stats(self) -> dict[str, Any]:
        return {
            "sink": self.name,
            "delivered": self.delivered,
            "queued": len(self.queue),
            "failures": self.failures,
            "rejected": self.rejected,
            "dropped": self.queue.dropped,
            "connected": self.down_since is None,
            **({"last_error": redact_url(self.last_error)} if self.last_error else {}),
        }


class Rejected(Exception):
    """The receiver answered that it will never take this event."""


def queue_path(config: EventsConfig, spec: str) -> Path:
    """The queue file of sink ``spec``: the same sink finds its queue again at the next start."""
    parts = urllib.parse.urlsplit(spec)
    host = "".join(c if c.isalnum() else "-" for c in (parts.hostname or "host"))
    digest = hashlib.sha256(spec.encode()).hexdigest()[:12]
    return (
        Path(os.path.expanduser(config.queue_dir))
        / f"{parts.scheme}-{host}-{parts.port or 0}-{digest}.sqlite"
    )


class WebhookSink(QueuedSink):
    """POST each event as JSON to an http(s) URL."""

    def __init__(self, spec: str, config: EventsConfig, report: Callable[[str], None] = warn) -> None:
        parts = urllib.parse.urlsplit(spec)
        if not parts.hostname:
            raise SinkError(f"--events {redact_url(spec)}: no host in the URL")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        self.headers = {"Content-Type": "application/json", "User-Agent": "lpr-runtime"}
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        super().__init__(spec, config, report)

    def _deliver(self, body: str) -> bool:
        request = urllib.request.Request(self.url, data=body.encode(), headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.http_timeout_s) as answer:
                answer.read()
                return True
        except urllib.error.HTTPError as e:
            if e.code >= 500 or e.code in RETRY_HTTP_STATUS:
                self.last_error = f"HTTP {e.code} {e.reason}"
                return False
            raise Rejected(f"HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            self.last_error = redact_url(f"{type(e).__name__}: {reason}")
            return False


class MqttSink(QueuedSink):
    """Publish each event to an MQTT broker with QoS 1 (paho-mqtt, imported only for this sink)."""

    def __init__(self, spec: str, config: EventsConfig, report: Callable[[str], None] = warn) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise SinkError(
                f"--events {redact_url(spec)}: MQTT needs paho-mqtt (pip install paho-mqtt)"
            ) from None
        parts = urllib.parse.urlsplit(spec)
        topic = parts.path.strip("/")
        if not parts.hostname or not topic:
            raise SinkError(f"--events {redact_url(spec)}: expected mqtt://[user:pass@]host[:port]/topic")
        self.topic = topic
        self.events_topic, self.status_topic = f"{topic}/events", f"{topic}/status"
        self._mqtt = mqtt
        self._connected = threading.Event()
        self._acked = threading.Condition()
        client_id = config.mqtt_client_id or f"lpr-{socket.gethostname()}-{os.getpid()}"
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if parts.username is not None:
            client.username_pw_set(
                urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
            )
        if parts.scheme == "mqtts":
            client.tls_set()
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(
            min_delay=max(1, round(config.backoff_initial_s)), max_delay=max(1, round(config.backoff_max_s))
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client
        super().__init__(spec, config, report)
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        # connect_async + loop_start: paho connects (and reconnects, with back-off) on its own thread,
        # so a broker that is down at start is an outage like any other, not a failure to start.
        client.connect_async(parts.hostname, port, keepalive=config.mqtt_keepalive_s)
        client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            return
        client.publish(self.status_topic, "online", qos=1, retain=True)
        self._connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        self.last_error = f"disconnected from the broker ({reason})"
        with self._acked:
            self._acked.notify_all()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._acked:
            self._acked.notify_all()

    def _deliver(self, body: str) -> bool:
        if not self._connected.wait(timeout=self.config.backoff_initial_s):
            self.last_error = self.last_error or "broker unreachable"
            return False
        info = self.client.publish(self.events_topic, body, qos=1)
        if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            self.last_error = f"publish failed ({self._mqtt.error_string(info.rc)})"
            return False
        deadline = time.monotonic() + self.config.publish_timeout_s
        with self._acked:
            while not info.is_published():
                left = deadline - time.monotonic()
                if left <= 0 or not self._connected.is_set() or self._stop.is_set():
                    # Not acknowledged: sent again once connected (the broker may get it twice: QoS 1).
                    self.last_error = self.last_error or "no PUBACK from the broker"
                    return False
                self._acked.wait(min(left, 0.2))
        return True

    def close(self) -> None:
        super().close()
        if self._connected.is_set():
            info = self.client.publish(self.status_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=self.config.publish_timeout_s)
            except (RuntimeError, ValueError):
                pass  # the broker went away at the end: its last will says offline for us
            self.client.disconnect()
        self.client.loop_stop()

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "connected": self._connected.is_set()}


def open_sink(spec: str, config: EventsConfig | None = None, report: Callable[[str], None] = warn) -> Sink:
    """The sink for ``spec`` (see the module docstring); SinkError naming it when it cannot be."""
    config = config or EventsConfig()
    low = spec.lower()
    if low.startswith("jsonl:"):
        path = spec[len("jsonl:") :]
        if not path:
            raise SinkError("--events jsonl: needs a path (jsonl:events.jsonl, or jsonl:- for stdout)")
        return JsonlSink(path)
    if low.startswith(("mqtt://", "mqtts://")):
        return MqttSink(spec, config, report).start()
    if low.startswith(("http://", "https://")):
        return WebhookSink(spec, config, report).start()
    raise SinkError(
        f"--events {redact_url(spec)}: unknown sink; expected one of "
        "jsonl:PATH, mqtt://[user:pass@]host[:port]/topic, http(s)://..."
    )


class Sinks:
    """Every event to every sink (``--events`` given several times)."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    @classmethod
    def open(
        cls, specs: list[str], config: EventsConfig | None = None, report: Callable[[str], None] = warn
    ) -> Sinks:
        opened: list[Sink] = []
        try:
            for spec in specs:
                opened.append(open_sink(spec, config, report))
        except BaseException:
            for sink in opened:
                sink.close()
            raise
        return cls(opened)

    def send(self, event: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.send(event)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def stats(self) -> list[dict[str, Any]]:
        return [sink.stats() for sink in self.sinks]

    def __enter__(self) -> Sinks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
