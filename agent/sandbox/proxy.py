"""An HTTP proxy with Basic auth that reaches only this computer.

Clients tunnel with ``CONNECT host:port`` (TLS to KSC goes this way) or send plain
HTTP requests with an absolute URI. Credentials travel in ``Proxy-Authorization:
Basic``; missing or wrong ones get 407 with ``Proxy-Authenticate``. For safety the
proxy dials only 127.0.0.1, localhost and ::1: any other target gets 403 and is never
resolved or dialled. The counters in ``GET /_sandbox/state`` say what happened.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import http.client
import logging
import socket
import threading
import urllib.parse
from typing import Any

from agent.sandbox.server import (
    Emulator,
    Request,
    Response,
    _Handler,
    _Server,
)

logger = logging.getLogger(__name__)

DEFAULT_USER = "proxy-user"
DEFAULT_PASSWORD = "Sandbox-Proxy-1!"
#: The only targets the proxy dials, and the address each is dialled at; names are
#: never looked up, so nothing outside this computer can be reached.
LOOPBACK = {
    "127.0.0.1": "127.0.0.1",
    "localhost": "127.0.0.1",
    "::1": "::1",
    "[::1]": "::1",
}
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
DIAL_TIMEOUT = 5
RELAY_BUFFER = 65536


class ProxyEmulator(Emulator):
    """The sandbox proxy: CONNECT tunnels and plain-HTTP forwarding to loopback."""

    name = "proxy"

    def __init__(
        self,
        *,
        seed: int = 0,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port, seed=seed)
        self.user = user
        self.password = password
        self.counters = {
            "tunnels_opened": 0,
            "requests_forwarded": 0,
            "dialled": 0,
            "refused_auth": 0,
            "refused_target": 0,
            "dial_failures": 0,
        }

    def start(self) -> ProxyEmulator:
        """Listen on a free port of 127.0.0.1 with the proxy's request handler."""
        self._server = _ProxyServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="sandbox-proxy",
            daemon=True,
        )
        self._thread.start()
        logger.debug("Proxy listening on %s", self.url)
        return self

    def describe(self) -> dict[str, Any]:
        """The proxy's address and credentials."""
        return {"url": self.url, "user": self.user, "password": self.password}

    def handle(self, request: Request) -> Response:
        """A request addressed to the proxy itself rather than through it."""
        return Response.text(
            "This is an HTTP proxy: use CONNECT or an absolute http:// URI", 400
        )

    def state(self) -> dict[str, Any]:
        """The counters of tunnels, forwards, dials and refusals (lock held)."""
        return dict(self.counters)

    def count(self, name: str) -> None:
        """Add one to a counter."""
        with self.lock:
            self.counters[name] += 1

    def authorised(self, header: str | None) -> bool:
        """Whether ``Proxy-Authorization`` holds the proxy's Basic credentials."""
        scheme, _, value = (header or "").strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return hmac.compare_digest(user.encode(), self.user.encode()) and (
            hmac.compare_digest(password.encode(), self.password.encode())
        )

    def gate(self, request: Request) -> Response | None | bool:
        """Auth, target and faults for one proxied request.

        Returns a refusal or fault Response, None to drop the connection, or True to
        go ahead. The target is checked before anything is dialled.
        """
        with self.lock:
            self.calls[f"{request.method} {request.path}"] += 1
        if not self.authorised(request.header("Proxy-Authorization")):
            self.count("refused_auth")
            return Response.text(
                "Proxy authentication required",
                407,
                headers={"Proxy-Authenticate": 'Basic realm="sandbox proxy"'},
            )
        host, _ = split_target(request.path)
        if host is None or host.lower() not in LOOPBACK:
            self.count("refused_target")
            logger.info("Proxy refused a target outside this computer: %s", host)
            return Response.text(
                "The sandbox proxy reaches only 127.0.0.1, localhost and ::1", 403
            )
        fault = self._apply_faults(request)
        if fault is not None:
            return fault
        if self._dropped(request):
            return None
        return True


def split_target(target: str) -> tuple[str | None, int]:
    """(host, port) of ``host:port``, ``[v6]:port`` or an absolute URI; None if bad."""
    if "://" in target:
        url = urllib.parse.urlsplit(target)
        try:
            port = url.port or (443 if url.scheme == "https" else 80)
        except ValueError:
            return None, 0
        host = url.hostname
        return (f"[{host}]" if host and ":" in host else host), port
    host, _, port_text = target.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None, 0
    return host, int(port_text)


class _ProxyHandler(_Handler):
    """Adds CONNECT and absolute-URI forwarding to the emulators' handler."""

    server: _ProxyServer

    def do_CONNECT(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        """Open a tunnel to a loopback target after the auth and target checks."""
        proxy = self.server.emulator
        request = self._request()
        verdict = proxy.gate(request)
        if verdict is not True:
            self._refuse(verdict)
            return

        host, port = split_target(self.path)
        upstream = self._dial(host, port)
        if upstream is None:
            return
        proxy.count("tunnels_opened")
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        self._relay(upstream)

    def _serve(self) -> None:
        """Forward absolute-URI requests; answer the rest as an emulator."""
        if "://" not in self.path:
            super()._serve()
            return
        if not self.path.lower().startswith("http://"):
            message = "Only http:// URIs are forwarded; tunnel https with CONNECT"
            self._send(Response.text(message, 400))
            return
        proxy = self.server.emulator
        try:
            body = self._read_body()
        except ValueError:
            self._send(Response.text("Bad request body", 400, headers={}))
            return
        request = self._request(body)
        verdict = proxy.gate(request)
        if verdict is not True:
            self._refuse(verdict)
            return
        self._forward(request)

    def _request(self, body: bytes = b"") -> Request:
        """The request as the emulator base sees it."""
        return Request(
            self.command, self.path, {}, self.headers, body, self.connection_state
        )

    def _refuse(self, verdict: Response | None | bool) -> None:
        """Send a refusal (and close), or drop the connection."""
        if isinstance(verdict, Response):
            verdict.close = True
            self._send(verdict)
        else:
            self.close_connection = True

    def _dial(self, host: str | None, port: int) -> socket.socket | None:
        """Connect to a loopback target, or answer 502."""
        proxy = self.server.emulator
        address = LOOPBACK[(host or "").lower()]
        proxy.count("dialled")
        try:
            upstream = socket.create_connection((address, port), timeout=DIAL_TIMEOUT)
        except OSError as err:
            proxy.count("dial_failures")
            self._send(
                Response.text(f"Cannot reach {host}:{port}: {err}", 502, headers={})
            )
            self.close_connection = True
            return None
        upstream.settimeout(None)
        return upstream

    def _relay(self, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes."""
        # One thread per direction; whichever side ends first closes both.
        client = self.connection

        def pump_up() -> None:
            """Copy from the client to the target."""
            try:
                while data := self.rfile.read1(RELAY_BUFFER):
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                _shutdown(upstream)
                _shutdown(client)

        thread = threading.Thread(target=pump_up, name="proxy-relay", daemon=True)
        thread.start()
        try:
            while data := upstream.recv(RELAY_BUFFER):
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(client)
            _shutdown(upstream)
            thread.join(timeout=5)
            upstream.close()

    def _forward(self, request: Request) -> None:
        """Send a plain-HTTP request to its loopback target and relay the answer."""
        proxy = self.server.emulator
        url = urllib.parse.urlsplit(self.path)
        host, port = split_target(self.path)
        address = LOOPBACK[(host or "").lower()]
        path = urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in HOP_BY_HOP
        }
        proxy.count("dialled")
        upstream = http.client.HTTPConnection(address, port, timeout=DIAL_TIMEOUT)
        try:
            upstream.request(
                self.command, path, body=request.body or None, headers=headers
            )
            reply = upstream.getresponse()
            body = reply.read()
        except OSError as err:
            proxy.count("dial_failures")
            self._send(Response.text(f"Cannot reach {host}:{port}: {err}", 502))
            return
        finally:
            upstream.close()
        proxy.count("requests_forwarded")
        kept = {
            name: value
            for name, value in reply.getheaders()
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length"
        }
        self._send(Response(reply.status, body, kept))


class _ProxyServer(_Server):
    """The emulators' threaded server with the proxy's handler."""

    emulator: ProxyEmulator

    def __init__(self, emulator: ProxyEmulator) -> None:
        super().__init__(emulator, None)
        self.RequestHandlerClass = _ProxyHandler


def _shutdown(sock: socket.socket) -> None:
    """Shut a socket both ways, ignoring one already closed."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
