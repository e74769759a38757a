"""The sandbox's HTTP server: :class:`SandboxServer` (stdlib ``http.server``, keep-alive, fast).

Routes:

- ``/api/...``: the 13 endpoints of ``docs/api.md`` (:mod:`etl.sandbox.app`), key in the
  ``Api-Key`` header (401 JSON when missing or wrong), unknown route 404, wrong method 405.
  Every request is counted under ``"METHOD /template"`` and may be faulted
  (:mod:`etl.sandbox.faults`) before anything else, the key check included.
- ``GET /_sandbox/state``: ``{"leads", "campaign_entries", "tasks", "comments", "requests"}``.
- ``GET /_sandbox/faults``: the active rules with their ``matched``/``fired`` counters.
- ``POST /_sandbox/faults`` ``{"rules": [...]}``: replace the rules (400 with the reason when a
  rule is malformed); ``DELETE /_sandbox/faults``: clear them.
- ``POST /_sandbox/reset``: back to the start data; counts and faults cleared.
- ``GET /_sandbox/held?at_least=N&timeout=S``: wait until N requests are held by ``hold`` rules
  (or S seconds passed); ``{"held": n}``. ``POST /_sandbox/release``: let them go on,
  ``{"released": n}``.
- ``DELETE /_sandbox/leads/{leadId}``: delete a lead as a person would in the dialer (200
  ``{"deleted": id}``; 404 when there is no such lead).

The ``/_sandbox`` routes need no key and are never counted or faulted.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from etl.sandbox.app import MAX_HOLD_S, Reply, Request, SandboxApp, error_reply, json_reply
from etl.sandbox.data import demo_data, validate_data
from etl.sandbox.faults import FaultRule, FaultRuleError, parse_rules

__all__ = ["DEFAULT_API_KEY", "SandboxServer"]

logger = logging.getLogger(__name__)

DEFAULT_API_KEY = "sandbox-key"
MAX_BODY_BYTES = 16 * 1024 * 1024
_POLL_INTERVAL_S = 0.02  # how fast stop() gets the serving thread to notice


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    """One connection (keep-alive: many requests). Answers go out in a single ``send``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "voiptime-sandbox/1.0"
    sys_version = ""
    timeout = 300  # an idle keep-alive connection is closed after this many seconds
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s - " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _BodyError(400, "Malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise _BodyError(413, "Body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise _BodyError(400, f"Bad Content-Length {length!r}") from None
        if n < 0:
            raise _BodyError(400, f"Bad Content-Length {length!r}")
        if n > MAX_BODY_BYTES:
            raise _BodyError(413, "Body too large")
        return self.rfile.read(n) if n else b""

    def _send(self, reply: Reply) -> None:
        """Write the whole answer with one ``sendall`` (status line, headers, body)."""
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = ""
        lines = [
            f"HTTP/1.1 {reply.status} {phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            f"Content-Length: {len(reply.body)}",
        ]
        if reply.content_type:
            lines.append(f"Content-Type: {reply.content_type}")
        lines.extend(f"{name}: {value}" for name, value in reply.headers)
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        try:
            self.wfile.write(head + reply.body)
        except OSError:
            self.close_connection = True

    def _drop(self) -> None:
        """Close the connection without answering anything."""
        self.close_connection = True

    # ------------------------------------------------------------------ dispatch

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self._send(error_reply(exc.status, exc.message, path))
            return
        if path == "/api" or path.startswith("/api/"):
            self._serve_api(method, path, split.query, body)
        elif path.startswith("/_sandbox/"):
            self._serve_admin(method, path, split.query, body)
        else:
            self._send(
                error_reply(404, f"No endpoint {method} {path} (the API is under /api)", path)
            )

    def _serve_api(self, method: str, path: str, query: str, body: bytes) -> None:
        app = self.server.app
        match = app.match(method, path[4:] or "/")
        decision = app.admit(match.key)
        delay = self.server.latency_s + decision.delay_s
        if delay > 0:
            time.sleep(delay)
        if decision.hold:
            logger.debug("fault: holding %s until released", match.key)
            app.hold()
        rule = decision.rule
        if rule is not None and rule.drop == "before":
            logger.debug("fault: dropping %s before processing", match.key)
            self._drop()
            return
        if rule is not None and rule.status is not None:
            self._send(_fault_reply(rule, path))
            return
        request = Request(
            method=method,
            path=path,
            params={},
            query=parse_qs(query, keep_blank_values=True),
            body=body,
            content_type=self.headers.get("Content-Type"),
        )
        try:
            reply = app.handle(match, request, self.headers.get("Api-Key"))
        except Exception:  # a sandbox bug: answer 500 rather than hang the client
            logger.exception("sandbox failed on %s %s", method, path)
            reply = error_reply(500, "Sandbox internal error", path)
        if rule is not None and rule.drop == "after":
            logger.debug("fault: dropping %s after processing", match.key)
            self._drop()
            return
        self._send(reply)

    def _set_faults(self, path: str, body: bytes) -> Reply:
        """``POST /_sandbox/faults``: replace the fault rules (400 naming a bad one)."""
        try:
            payload = json.loads(body.decode("utf-8")) if body.strip() else None
            rules = parse_rules(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return error_reply(400, f"Invalid JSON: {exc}", path)
        except FaultRuleError as exc:
            return error_reply(400, str(exc), path)
        self.server.app.set_rules(rules)
        logger.info("sandbox fault rules set: %d rule(s)", len(rules))
        return json_reply(200, {"rules": self.server.app.rules_json()})

    def _wait_held(self, path: str, query: str) -> Reply:
        """``GET /_sandbox/held``: wait until enough requests are held (400 on a bad query)."""
        try:
            count, timeout = _held_query(query)
        except ValueError as exc:
            return error_reply(400, str(exc), path)
        return json_reply(200, {"held": self.server.app.wait_held(count, timeout)})

    def _serve_admin(self, method: str, path: str, query: str, body: bytes) -> None:
        app = self.server.app
        route = path.rstrip("/")
        if route == "/_sandbox/state" and method == "GET":
            self._send(json_reply(200, app.snapshot()))
        elif route == "/_sandbox/faults" and method == "GET":
            self._send(json_reply(200, {"rules": app.rules_json()}))
        elif route == "/_sandbox/faults" and method == "POST":
            self._send(self._set_faults(path, body))
        elif route == "/_sandbox/faults" and method == "DELETE":
            app.set_rules([])
            self._send(json_reply(200, {"rules": []}))
        elif route == "/_sandbox/reset" and method == "POST":
            app.reset()
            self._send(json_reply(200, {}))
        elif route == "/_sandbox/held" and method == "GET":
            self._send(self._wait_held(path, query))
        elif route == "/_sandbox/release" and method == "POST":
            self._send(json_reply(200, {"released": app.release()}))
        elif route.startswith("/_sandbox/leads/") and method == "DELETE":
            raw = route.rsplit("/", 1)[1]
            if raw.isdigit() and app.delete_lead(int(raw)):
                self._send(json_reply(200, {"deleted": int(raw)}))
            else:
                self._send(error_reply(404, f"Lead {raw} not found", path))
        elif route in (
            "/_sandbox/state",
            "/_sandbox/faults",
            "/_sandbox/reset",
            "/_sandbox/held",
            "/_sandbox/release",
        ):
            self._send(error_reply(405, f"Method {method} not allowed here", path))
        else:
            self._send(error_reply(404, f"No endpoint {method} {path}", path))


def _held_query(query: str) -> tuple[int, float]:
    """``at_least`` (default 1, >= 0) and ``timeout`` (seconds, default 30, 0-600) of
    ``GET /_sandbox/held``; ValueError names the bad one."""
    params = parse_qs(query, keep_blank_values=True)
    out: list[float] = []
    for name, default, high in (("at_least", 1, 10_000), ("timeout", 30, MAX_HOLD_S)):
        raw = params.get(name, [str(default)])[-1]
        try:
            value = int(raw) if name == "at_least" else float(raw)
        except ValueError:
            value = -1
        if not 0 <= value <= high:
            raise ValueError(f"{name}: must be a number 0-{high:g}, got {raw!r}")
        out.append(value)
    return int(out[0]), out[1]


def _fault_reply(rule: FaultRule, path: str) -> Reply:
    """The answer of a firing ``status`` rule."""
    assert rule.status is not None
    if rule.status in (204, 304):  # answers that must not have a body
        reply = Reply(rule.status)
    elif rule.has_body:
        if isinstance(rule.body, str):
            reply = Reply(rule.status, rule.body.encode("utf-8"), "text/plain; charset=utf-8")
        else:
            reply = json_reply(rule.status, rule.body)
    else:
        reply = error_reply(rule.status, "Injected fault (sandbox fault rule)", path)
    if rule.retry_after is not None:
        value = rule.retry_after
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        reply.headers.append(("Retry-After", str(value)))
    return reply


class _HttpServer(ThreadingHTTPServer):
    """A threading server that remembers its open connections, to close them on stop."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: SandboxApp, latency_s: float) -> None:
        self.app = app
        self.latency_s = latency_s
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s failed", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Shut down every open client connection (their handler threads then end)."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _HttpServer6(_HttpServer):
    address_family = socket.AF_INET6


class SandboxServer:
    """The in-memory Voiptime Cloud API (see the module docstring), on a loopback port.

    The socket is bound on construction (so :attr:`url` is known at once); :meth:`start` serves
    in a daemon thread, :meth:`serve_forever` in the calling thread. Usable as a context manager
    (``with SandboxServer() as sandbox:`` starts and stops it).

    Args:
        host: address to bind (``"::1"`` style hosts bind IPv6).
        port: TCP port; 0 picks a free one.
        api_key: the key ``/api`` requests must send in ``Api-Key``.
        latency_ms: milliseconds added before every ``/api`` answer (>= 0).
        data: start data (shape in :mod:`etl.sandbox.data`, e.g. from
            :func:`etl.sandbox.load_data`); ``None`` for the demo data.

    Raises:
        ConfigError: ``data`` has the wrong shape.
        ValueError: ``latency_ms`` < 0 or an empty ``api_key``.
        OSError: the address cannot be bound (port in use, ...).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        latency_ms: float = 0,
        data: dict[str, Any] | None = None,
    ) -> None:
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
        if not api_key:
            raise ValueError("api_key must not be empty")
        start = demo_data() if data is None else validate_data(data)
        self.app = SandboxApp(start, api_key)
        self.latency_ms = latency_ms
        server_class = _HttpServer6 if ":" in host else _HttpServer
        self._httpd = server_class((host, port), self.app, latency_ms / 1000.0)
        self._thread: threading.Thread | None = None
        self._serving_here = False  # serve_forever() runs in some caller's thread
        self._closed = False

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (no trailing slash), where ``/_sandbox/...`` lives."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL, ``http://HOST:PORT/api``."""
        return self.base_url + "/api"

    def start(self) -> SandboxServer:
        """Serve in a daemon thread (no-op when already started).

        Returns:
            ``self``.
        """
        if self._closed:
            raise RuntimeError("this SandboxServer was stopped; create a new one")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL_S},
                name=f"sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()
            logger.info("sandbox API serving at %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` (from another thread) or Ctrl-C.

        The server is closed on return.
        """
        if self._closed:
            raise RuntimeError("this SandboxServer was stopped; create a new one")
        logger.info("sandbox API serving at %s", self.url)
        self._serving_here = True
        try:
            self._httpd.serve_forever(poll_interval=0.5)
        finally:
            self._serving_here = False
            self._close()

    def stop(self) -> None:
        """Stop serving, release held requests, close open connections and the socket
        (idempotent)."""
        self.app.close()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        elif self._serving_here:
            self._httpd.shutdown()  # serve_forever() then closes the server itself
            return
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._httpd.close_connections()
            self._httpd.server_close()
            logger.info("sandbox API at %s stopped", self.url)

    def state(self) -> dict[str, Any]:
        """The state of ``GET /_sandbox/state``, read in-process (a deep copy)."""
        return self.app.snapshot()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SandboxServer(url={self.url!r})"
