"""A small status endpoint (``--status-port P``): health and counters as JSON, on loopback by default.

    GET /status  -> {"ok": true, "uptime_s", "cameras": {name: {"fps", "frames", "events",
                     "last_event_time", "connected", ...}}, "sinks": [{"sink", "queued", ...}]}
    GET /health  -> {"ok": true} (200), or 503 with {"ok": false} once a camera has failed for good

The standard library's HTTP server on a thread of its own: nothing to install, nothing exposed
beyond the host unless asked (``host``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StatusServer:
    """Serves ``provider()`` (a JSON-able dict with an ``ok`` key) until closed."""

    def __init__(self, provider: Callable[[], dict[str, Any]], port: int, host: str = "127.0.0.1") -> None:
        self.provider = provider

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                path = self.path.split("?", 1)[0].rstrip("/") or "/status"
                if path not in ("/status", "/health"):
                    self._answer(404, {"error": f"no such page {path}; try /status or /health"})
                    return
                try:
                    status = provider()
                except Exception as e:  # noqa: BLE001 - the endpoint reports, never takes the run down
                    self._answer(500, {"ok": False, "error": f"{type(e).__name__}: {e}"})
                    return
                body = status if path == "/status" else {"ok": bool(status.get("ok"))}
                self._answer(200 if status.get("ok") or path == "/status" else 503, body)

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: stderr is the run's
                pass

        try:
            self.server = ThreadingHTTPServer((host, port), Handler)
        except OSError as e:
            raise OSError(
                f"--status-port {port}: cannot listen on {host}:{port} ({e.strerror or e})"
            ) from None
        self.server.daemon_threads = True
        self.host, self.port = host, int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="status endpoint", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/status"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StatusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
