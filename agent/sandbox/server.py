"""The HTTP(S) server every emulator stands on, with per-connection state and faults.

Each emulator subclasses :class:`Emulator` and answers :meth:`Emulator.handle`. The
base answers the sandbox's own endpoints (``GET /_sandbox/state``,
``GET|POST /_sandbox/faults``, ``POST /_sandbox/events``), applies the injected faults
to every other request, and keeps one :class:`Connection` per TCP connection, because
KSC binds a login to its keep-alive connection.
"""

from __future__ import annotations

import abc
import collections
import html
import http.server
import json
import logging
import random
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, Self

from agent.sandbox.certs import TlsIdentity

logger = logging.getLogger(__name__)

SANDBOX_PREFIX = "/_sandbox/"


class BadRequest(Exception):
    """The request cannot be read; the emulator answers 400 with this message."""


@dataclass
class Connection:
    """One TCP connection; emulators keep what they bind to it in ``data``."""

    id: int
    client: tuple[str, int]
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Request:
    """One HTTP request as an emulator sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    connection: Connection

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header's value, names matched case-insensitively."""
        return self.headers.get(name, default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body parsed as JSON; an empty body is ``None``."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BadRequest(f"The body is not valid JSON: {err}") from err


@dataclass
class Response:
    """One HTTP response; ``close`` ends the connection after sending it."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        """A JSON response."""
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        all_headers = {"Content-Type": "application/json; charset=utf-8"}
        all_headers.update(headers or {})
        return cls(status, body, all_headers)

    @classmethod
    def text(
        cls,
        text: str,
        status: int = 200,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> Response:
        """A text response (XML, HTML or plain)."""
        all_headers = {"Content-Type": content_type}
        all_headers.update(headers or {})
        return cls(status, text.encode("utf-8"), all_headers)


def html_error_page(status: int, reason: str) -> Response:
    """An IIS-style HTML error page, as a Windows server answers when it fails."""
    title = f"{status} - {html.escape(reason)}"
    page = (
        "<!DOCTYPE html><html><head><title>"
        f"{title}</title></head><body><h1>Server Error</h1><h2>{title}</h2>"
        "</body></html>"
    )
    return Response.text(page, status, "text/html; charset=utf-8")


@dataclass
class Faults:
    """What goes wrong on purpose; set through ``POST /_sandbox/faults``.

    ``latency_ms`` delays every answer; ``error_rate`` answers that share of requests
    with ``error_status``; ``next_errors`` fails exactly the next N requests;
    ``rate_limit_rate`` answers that share with 429 and ``Retry-After: retry_after``;
    ``down`` drops every connection without an answer; ``hang`` accepts and never
    answers; ``path_prefix`` limits all of it to paths that start with it.
    """

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    next_errors: int = 0
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    down: bool = False
    hang: bool = False
    path_prefix: str = ""

    def describe(self) -> dict[str, Any]:
        """The faults as JSON."""
        return dict(self.__dict__)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Reads requests off one connection and hands them to the emulator."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection_state = self.server.emulator.open_connection(
            self.client_address
        )

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator.close_connection(self.connection_state)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("%s: " + format, self.server.emulator.name, *args)

    def do_GET(self) -> None:  # noqa: N802 (the names http.server dispatches to)
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def do_PUT(self) -> None:  # noqa: N802
        self._serve()

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve()

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = self.rfile.readline(1024)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # Trailer lines end with an empty line.
                while self.rfile.readline(1024).strip():
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _serve(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        try:
            body = self._read_body()
        except ValueError:
            self._send(Response.text("Bad request body", 400))
            return
        request = Request(
            method=self.command,
            path=url.path,
            query=urllib.parse.parse_qs(url.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            connection=self.connection_state,
        )
        response = self.server.emulator.dispatch(request)
        if response is None:
            # A fault dropped the connection: no answer at all.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if response.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class _Server(http.server.ThreadingHTTPServer):
    """A threaded server that does each TLS handshake on the connection's own thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator: Emulator, context: ssl.SSLContext | None) -> None:
        self.emulator = emulator
        self.tls_context = context
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__((emulator.host, emulator.requested_port), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        plain = request
        with self.sockets_lock:
            self.open_sockets.add(request)
        try:
            # Headers and body leave in two writes; without this, Nagle's algorithm
            # and the client's delayed ACK hold every answer back by about 40 ms.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls_context is not None:
                request.settimeout(10)
                try:
                    request = self.tls_context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as err:
                    logger.debug(
                        "%s: TLS handshake failed: %s", self.emulator.name, err
                    )
                    return
                request.settimeout(None)
                # The TLS socket took over the descriptor: stop() must shut it.
                with self.sockets_lock:
                    self.open_sockets.add(request)
            super().finish_request(request, client_address)
        finally:
            with self.sockets_lock:
                self.open_sockets.discard(plain)
                self.open_sockets.discard(request)
            if request is not plain:
                # socketserver closes only the plain socket, detached by the wrap.
                request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test, a killed agent) is normal here.
        logger.debug(
            "%s: connection from %s ended badly",
            self.emulator.name,
            client_address,
            exc_info=True,
        )

    def close_all_connections(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Emulator(abc.ABC):
    """Base of the emulated servers: lifecycle, sandbox endpoints and faults."""

    name = "emulator"

    def __init__(
        self,
        *,
        tls: TlsIdentity | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.tls = tls
        self.lock = threading.RLock()
        self.faults = Faults()
        self.calls: collections.Counter[str] = collections.Counter()
        self._random = random.Random(seed)
        self._connection_ids = iter(range(1, 1 << 62))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # Lifecycle.

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context to serve with; emulators may narrow the versions."""
        return self.tls.server_context() if self.tls else None

    def start(self) -> Self:
        """Listen on the host and a free port, and serve on a background thread."""
        self._server = _Server(self, self.tls_context())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name=f"sandbox-{self.name}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("%s emulator listening on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_all_connections()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        """The port actually listened on."""
        assert self._server is not None, "start() the emulator first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The base address, such as ``https://127.0.0.1:50123``."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def describe(self) -> dict[str, Any]:
        """Where the emulator is and how to sign in, for ``sandbox.json``."""
        return {"url": self.url}

    # Connections.

    def open_connection(self, client: tuple[str, int]) -> Connection:
        """A new TCP connection arrived."""
        return Connection(next(self._connection_ids), client)

    def close_connection(self, connection: Connection) -> None:
        """A TCP connection ended; emulators free what was bound to it."""
        connection.data.clear()

    # Requests.

    def dispatch(self, request: Request) -> Response | None:
        """Answer one request: the sandbox endpoints, else faults, else the emulator."""
        if request.path.startswith(SANDBOX_PREFIX):
            return self._sandbox_endpoint(request)

        with self.lock:
            self.calls[f"{request.method} {request.path}"] += 1
        fault = self._apply_faults(request)
        if fault is not None or self._dropped(request):
            return fault

        try:
            return self.handle(request)
        except BadRequest as err:
            return self.bad_request(str(err))
        except Exception:
            logger.exception("%s emulator failed on %s", self.name, request.path)
            return self.fault_response(500)

    def _dropped(self, request: Request) -> bool:
        applies = request.path.startswith(self.faults.path_prefix)
        return applies and self.faults.down

    def _apply_faults(self, request: Request) -> Response | None:
        faults = self.faults
        if not request.path.startswith(faults.path_prefix):
            return None

        if faults.hang:
            while self.faults.hang and not self._stopping.wait(0.1):
                pass
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if faults.down:
            return None

        with self.lock:
            if faults.next_errors > 0:
                faults.next_errors -= 1
                return self.fault_response(faults.error_status)
            if (
                faults.rate_limit_rate
                and self._random.random() < faults.rate_limit_rate
            ):
                return self.fault_response(429, retry_after=faults.retry_after)
            if faults.error_rate and self._random.random() < faults.error_rate:
                return self.fault_response(faults.error_status)
        return None

    @abc.abstractmethod
    def handle(self, request: Request) -> Response:
        """Answer a request of the emulated API."""

    def fault_response(self, status: int, retry_after: int | None = None) -> Response:
        """The answer for an injected failure, in the emulated API's own error shape."""
        response = html_error_page(status, http.HTTPStatus(status).phrase)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    def bad_request(self, message: str) -> Response:
        """The answer to a request that cannot be read."""
        return Response.text(message, 400)

    # The sandbox's own endpoints.

    def state(self) -> dict[str, Any]:
        """What the emulator holds, for ``GET /_sandbox/state``."""
        return {}

    def add_events(self, payload: Any) -> dict[str, Any]:
        """Add events or changes, for ``POST /_sandbox/events``."""
        raise BadRequest(f"The {self.name} emulator takes no events")

    def expire_sessions(self) -> None:
        """End every session now, as an idle timeout would."""
        raise BadRequest(f"The {self.name} emulator has no sessions")

    def _sandbox_endpoint(self, request: Request) -> Response:
        name = request.path[len(SANDBOX_PREFIX) :].strip("/")
        try:
            if name == "state" and request.method == "GET":
                with self.lock:
                    payload = self.state()
                    payload["calls"] = dict(self.calls)
                return Response.json(payload)
            if name == "faults" and request.method == "GET":
                return Response.json(self.faults.describe())
            if name == "faults" and request.method == "POST":
                return Response.json(self._set_faults(request.json() or {}))
            if name == "events" and request.method == "POST":
                with self.lock:
                    return Response.json(self.add_events(request.json() or {}))
        except BadRequest as err:
            return Response.json({"error": str(err)}, 400)
        return Response.json({"error": f"No sandbox endpoint {request.path}"}, 404)

    def _set_faults(self, changes: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(changes, dict):
            raise BadRequest("Send the faults as a JSON object")
        with self.lock:
            if changes.pop("reset", False):
                self.faults = Faults()
                self.calls.clear()
            if changes.pop("expire_sessions", False):
                self.expire_sessions()
            for key, value in changes.items():
                if not hasattr(self.faults, key):
                    raise BadRequest(f"Unknown fault '{key}'")
                kind = type(getattr(self.faults, key))
                try:
                    setattr(self.faults, key, kind(value))
                except (TypeError, ValueError) as err:
                    raise BadRequest(f"Fault '{key}' takes a {kind.__name__}") from err
            return self.faults.describe()
