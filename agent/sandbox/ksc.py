"""The emulated KSC Administration Server: its Open API over HTTPS (TLS 1.2).

Calls are ``POST /api/v1.0/Class.Method`` with JSON bodies. A client logs in with
``POST /api/v1.0/login`` and a ``KSCBasic`` header, which binds the login to its
keep-alive connection, or opens a token session (``Session.StartSession``) and sends
``X-KSC-Session`` on any connection. ``X-KSC-VServer`` picks the virtual server (the
seed's tenants); everything after is scoped to it. Method errors come back as
``PxgError`` bodies with HTTP 200; auth failures are 401, dead sessions 403.
"""

from __future__ import annotations

import gzip
import logging
import ssl
import time
from typing import Any

from agent.sandbox import ksc_const as const
from agent.sandbox import seed
from agent.sandbox.certs import TlsIdentity
from agent.sandbox.ksc_methods import (
    ACCESSOR,
    EVENT_ITERATOR,
    METHODS,
    SYNC_ITERATOR,
    Call,
)
from agent.sandbox.ksc_sessions import (
    AuthFailure,
    Owner,
    Principal,
    PxgFailure,
    ResultSets,
    TokenSession,
    check_basic,
    new_token,
)
from agent.sandbox.ksc_values import BadValue, decode
from agent.sandbox.server import (
    BadRequest,
    Connection,
    Emulator,
    Request,
    Response,
)

logger = logging.getLogger(__name__)

_PRINCIPAL = "ksc_principal"


class KscEmulator(Emulator):
    """KSC's Open API over a fleet whose tenants are virtual servers."""

    name = "ksc"

    def __init__(
        self,
        fleet: seed.Fleet,
        *,
        tls: TlsIdentity,
        seed: int = 0,
        user: str = const.DEFAULT_USER,
        password: str = const.DEFAULT_PASSWORD,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(tls=tls, host=host, port=port, seed=seed)
        self.fleet = fleet
        self.user = user
        self.password = password
        #: Token sessions end after this many idle seconds; tests lower it.
        self.session_idle_seconds = const.SESSION_IDLE_SECONDS
        self.sessions: dict[str, TokenSession] = {}
        self.results = ResultSets()
        self._connections: dict[int, Connection] = {}
        self._vservers = {tenant.name: tenant for tenant in fleet.tenants}

    def tls_context(self) -> ssl.SSLContext | None:
        """TLS 1.2 only: KSC accepts 1.0 to 1.2, and 1.0/1.1 are disabled here."""
        assert self.tls is not None
        return self.tls.server_context(maximum=ssl.TLSVersion.TLSv1_2)

    def describe(self) -> dict[str, Any]:
        """Where the server is, the account, and the virtual servers' names."""
        return {
            "url": self.url,
            "user": self.user,
            "password": self.password,
            "vserver_names": [tenant.name for tenant in self.fleet.tenants],
        }

    # Connections: a login lives as long as its TCP connection.

    def open_connection(self, client: tuple[str, int]) -> Connection:
        """Remember the connection so that expiring sessions can log it out."""
        connection = super().open_connection(client)
        with self.lock:
            self._connections[connection.id] = connection
        return connection

    def close_connection(self, connection: Connection) -> None:
        """Free the login and every result set the connection held."""
        with self.lock:
            self._connections.pop(connection.id, None)
            self.results.release_owner(("conn", connection.id))
        super().close_connection(connection)

    # Requests.

    def handle(self, request: Request) -> Response:
        """Answer one Open API call."""
        if not request.path.startswith(const.API_PREFIX):
            return Response.text("Not found", 404)
        if request.method != "POST":
            return Response.text(
                "Open API calls are POST", 405, headers={"Allow": "POST"}
            )
        content_type = (request.header("Content-Type") or "").split(";")[0].strip()
        if content_type and content_type.lower() != "application/json":
            raise BadRequest("Content-Type must be application/json")

        name = request.path[len(const.API_PREFIX) :]
        try:
            if name == "login":
                return self._login(request)
            principal, owner = self._authenticate(request)
        except AuthFailure as err:
            return self._reply(request, err.failure.body(), err.status)

        try:
            args = self._arguments(request)
            payload = self._call(request, name, principal, owner, args)
        except PxgFailure as err:
            payload = err.body()
        return self._reply(request, payload)

    def _arguments(self, request: Request) -> dict[str, Any]:
        """The body's arguments, decoded from either value form."""
        body = request.json()
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise PxgFailure(
                const.ERR_BAD_FORMAT, "The body must be a JSON object of arguments"
            )
        try:
            return decode(body)
        except BadValue as err:
            raise PxgFailure(const.ERR_BAD_FORMAT, str(err)) from err

    def _call(
        self,
        request: Request,
        name: str,
        principal: Principal,
        owner: Owner,
        args: dict[str, Any],
    ) -> dict[str, Any]:
        """Run a Session method or a data method under the emulator's lock."""
        if name.startswith("Session."):
            return self._session_method(request, name, principal, owner)
        handler = METHODS.get(name)
        if handler is None:
            raise PxgFailure(
                const.ERR_NO_SUCH_CALL,
                f"No such method '{name}' (the sandbox emulates "
                "VServers, HostGroup.FindHosts, ChunkAccessor, LicenseKeys, "
                "GroupSyncIterator, EventProcessing and Session calls)",
            )
        with self.lock:
            return handler(Call(self.fleet, self.results, principal, owner, args))

    def _reply(self, request: Request, payload: Any, status: int = 200) -> Response:
        """A JSON reply, gzipped when the client accepts gzip."""
        response = Response.json(payload, status)
        accepted = request.header("Accept-Encoding") or ""
        codings = {part.split(";")[0].strip().lower() for part in accepted.split(",")}
        if "gzip" in codings and response.body:
            response.body = gzip.compress(response.body, compresslevel=5)
            response.headers["Content-Encoding"] = "gzip"
        return response

    # Logins and sessions.

    def _check(self, request: Request) -> Principal:
        """The principal of the request's KSCBasic header, or AuthFailure."""
        header = request.header("Authorization")
        if not header:
            raise AuthFailure(
                401,
                const.ERR_LOGON_FAILED,
                "Send an Authorization: KSCBasic header to log in",
            )
        return check_basic(
            header,
            request.header("X-KSC-VServer"),
            (self.user, self.password),
            self._vservers,
        )

    def _login(self, request: Request) -> Response:
        """Bind a login to the request's connection."""
        principal = self._check(request)
        with self.lock:
            self.results.release_owner(("conn", request.connection.id))
            request.connection.data[_PRINCIPAL] = principal
        logger.debug("KSC login to %s", principal.scope)
        return self._reply(request, {})

    def _authenticate(self, request: Request) -> tuple[Principal, Owner]:
        """The caller (by token, header or connection) and the owner of its results."""
        token = (request.header("X-KSC-Session") or "").strip()
        with self.lock:
            self._expire_idle_sessions()
            if token:
                session = self.sessions.get(token)
                if session is None:
                    raise AuthFailure(
                        403,
                        const.ERR_NO_ACCESS,
                        "The session has ended or expired: start a new one with "
                        "Session.StartSession",
                    )
                session.last_used = time.monotonic()
                return session.principal, ("session", session.token)

        if request.header("Authorization"):
            principal = self._check(request)
            with self.lock:
                request.connection.data[_PRINCIPAL] = principal
            return principal, ("conn", request.connection.id)

        bound: Principal | None = request.connection.data.get(_PRINCIPAL)
        if bound is None:
            raise AuthFailure(
                401,
                const.ERR_NO_ACCESS,
                "Not logged in on this connection: POST /api/v1.0/login with a "
                "KSCBasic header first, or send X-KSC-Session",
            )
        return bound, ("conn", request.connection.id)

    def _expire_idle_sessions(self) -> None:
        """End the token sessions idle longer than session_idle_seconds."""
        limit = time.monotonic() - self.session_idle_seconds
        for token in [t for t, s in self.sessions.items() if s.last_used < limit]:
            self._end_session(token)

    def _end_session(self, token: str) -> None:
        """End a token session and free its result sets."""
        self.sessions.pop(token, None)
        self.results.release_owner(("session", token))

    def _session_method(
        self, request: Request, name: str, principal: Principal, owner: Owner
    ) -> dict[str, Any]:
        """Session.StartSession, Ping and EndSession."""
        with self.lock:
            if name == "Session.StartSession":
                token = new_token()
                self.sessions[token] = TokenSession(token, principal, time.monotonic())
                return {"PxgRetVal": token}
            if name == "Session.Ping":
                return {}
            if name == "Session.EndSession":
                if owner[0] == "session":
                    self._end_session(owner[1])
                else:
                    request.connection.data.pop(_PRINCIPAL, None)
                    self.results.release_owner(owner)
                return {}
        raise PxgFailure(const.ERR_NO_SUCH_CALL, f"No such method '{name}'")

    # The sandbox's own endpoints.

    def state(self) -> dict[str, Any]:
        """Virtual servers with their counts, and what is open (lock held)."""
        self._expire_idle_sessions()
        self.results.purge()
        logins = sum(1 for c in self._connections.values() if _PRINCIPAL in c.data)
        return {
            "vservers": [
                {
                    "id": tenant.number,
                    "name": tenant.name,
                    "hosts": len(tenant.devices),
                    "licenses": len(tenant.licenses),
                    "events": len(tenant.events),
                }
                for tenant in self.fleet.tenants
            ],
            "sessions": len(self.sessions),
            "connection_logins": logins,
            "accessors": self.results.count(ACCESSOR),
            "iterators": self.results.count(SYNC_ITERATOR),
            "event_iterators": self.results.count(EVENT_ITERATOR),
            "events": sum(len(tenant.events) for tenant in self.fleet.tenants),
            "next_event_id": self.fleet.next_event_id,
        }

    def add_events(self, payload: Any) -> dict[str, Any]:
        """New events and device changes, through the seed (lock held)."""
        try:
            return seed.apply_changes(self.fleet, payload)
        except (ValueError, TypeError, AttributeError) as err:
            raise BadRequest(f"Cannot apply the changes: {err}") from err

    def expire_sessions(self) -> None:
        """End every token session and connection login, as a server restart would."""
        with self.lock:
            for token in list(self.sessions):
                self._end_session(token)
            for connection in self._connections.values():
                connection.data.pop(_PRINCIPAL, None)
                self.results.release_owner(("conn", connection.id))
        logger.info("KSC emulator: every session and login expired")

    def fault_response(self, status: int, retry_after: int | None = None) -> Response:
        """Injected 401/403 look like KSC's auth answers; the rest are HTML pages."""
        if status in (401, 403):
            failure = PxgFailure(const.ERR_NO_ACCESS, "Access denied (injected)")
            return Response.json(failure.body(), status)
        return super().fault_response(status, retry_after)
