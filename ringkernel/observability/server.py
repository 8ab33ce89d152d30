"""``system.serve(port=)``: ``/metrics``, ``/healthz`` and ``/readyz`` over one small HTTP server.

The standard library's threading HTTP server in a daemon thread is enough:
a scrape every few seconds is the whole load.  The server stops when the
system shuts down (the system calls :meth:`MetricsServer.close`).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ringkernel.observability.metrics import health
from ringkernel.observability.prometheus import registry_for

PORT_MAX = 65535


class MetricsServer:
    """The running server; ``port`` is the bound one (useful with ``port=0``), ``url`` its base."""

    def __init__(self, system: Any, port: int = 9464, host: str = "127.0.0.1") -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= PORT_MAX:
            raise ValueError(f"port must be an integer in 0..{PORT_MAX} (0: any free port), got {port!r}")
        self.system = system
        registry = registry_for(system)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path in ("/healthz", "/readyz"):
                    report = health(system)
                    ok = report["live"] if path == "/healthz" else report["ready"]
                    self._reply(200 if ok else 503, "application/json", json.dumps(report).encode())
                else:
                    self._reply(404, "text/plain", b"try /metrics, /healthz or /readyz\n")

            def _reply(self, code: int, kind: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # a scrape every few seconds is not worth a line on stderr

        try:
            self.httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
        self.httpd.daemon_threads = True
        self.host = host
        self.port: int = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="ringkernel-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stops serving and frees the port (idempotent)."""
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join()
        self.httpd.server_close()

    def __repr__(self) -> str:
        return f"<MetricsServer {self.url}>"
