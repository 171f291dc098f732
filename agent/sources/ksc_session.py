"""Logins and calls to the KSC Open API: token sessions per virtual server.

The client logs in with ``Session.StartSession`` (a ``KSCBasic`` header and
``X-KSC-VServer``) and sends the token in ``X-KSC-Session`` on any pooled
connection, rather than binding a login to one keep-alive connection as KlAkOAPI
does: the agent reads several virtual servers in turn and at once, and a token
survives a dropped or recycled connection, so only a real expiry needs a new login.
A call answered 401 or 403 logs in again once and is sent again; a second refusal
is an error that says so. Nothing here retries a refused login.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Any

import requests

from agent.errors import (
    AccountInactive,
    AgentError,
    AuthError,
    CertificateError,
    ConnectError,
    PermissionDenied,
    ProtocolError,
    ProxyRefused,
    RemoteError,
    ServerError,
    WrongCredentials,
)
from agent.sources.ksc_route import Route
from agent.sources.ksc_wire import (
    API,
    LOGON_FAILED,
    NOT_FOUND,
    SYSTEM,
    PxgError,
    ResultSetGone,
    VirtualServerLoginFailed,
    method_error,
)
from agent.transport import HttpTransport

logger = logging.getLogger(__name__)

SESSION_HEADER = "X-KSC-Session"
VSERVER_HEADER = "X-KSC-VServer"
#: The main server's "virtual server" name: an empty X-KSC-VServer.
MAIN = ""
#: Closing does not wait long for a server that is gone: its sessions end anyway.
END_TIMEOUT = (3.0, 3.0)


def _b64(text: str) -> str:
    """Base64 of UTF-8 text, as KSCBasic and X-KSC-VServer carry names."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def where(vserver: str) -> str:
    """How messages name a login's scope."""
    return f'virtual server "{vserver}"' if vserver else "the Administration Server"


class KscTransport(HttpTransport):
    """The shared transport over a pinned route, its failures told in KSC's terms."""

    def __init__(self, route: Route, **kwargs: Any) -> None:
        pool_size = kwargs.pop("pool_size", 4)
        proxy_url = route.proxy.url() if route.proxy else None
        super().__init__(
            SYSTEM, route.url, proxy_url=proxy_url, pool_size=pool_size, **kwargs
        )
        self.route = route
        self.session.mount("https://", route.adapter(pool_size))
        self.session.headers.update(
            {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        )

    def request(
        self, method: str, path: str, *, retry: bool = True, **kwargs: Any
    ) -> requests.Response:
        """Send through the shared transport; connection failures said for KSC."""
        try:
            return super().request(method, path, retry=retry, **kwargs)
        except (ConnectError, CertificateError, ProxyRefused) as err:
            cause = err.__cause__
            if not isinstance(cause, requests.RequestException):
                raise  # Already ours (the pin check), with its own words.
            raise self.route.explain(cause) from cause


class KscSession:
    """One account's token sessions, one per virtual server (``""``: main server)."""

    def __init__(
        self, transport: KscTransport, user: str | None, password: str | None
    ) -> None:
        self.transport = transport
        self.user = (user or "").strip()
        self._password = password or ""
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._login_locks: dict[str, threading.Lock] = {}
        self._unreachable = False

    @property
    def address(self) -> str:
        """The server's ``host:port``."""
        return self.transport.route.target.netloc

    # Calls.

    def call(
        self,
        vserver: str,
        method: str,
        args: dict[str, Any] | None = None,
        *,
        retry: bool = True,
        result_set: bool = False,
    ) -> dict[str, Any]:
        """Call ``method`` in ``vserver``'s session; its reply's JSON object.

        ``retry=False`` for calls that move a server-side position. With
        ``result_set`` a PxgError "not found" means the accessor or iterator is gone
        and raises :class:`ResultSetGone` for the reader to open it again.
        """
        token = self._tokens.get(vserver) or self.login(vserver)
        response = self._post(method, args, token, retry)

        if response.status_code in (401, 403):
            logger.info(
                "KSC at %s ended the session on %s (HTTP %d); logging in again",
                self.address,
                where(vserver),
                response.status_code,
            )
            token = self.login(vserver, stale=token)
            response = self._post(method, args, token, retry)
            if response.status_code in (401, 403):
                raise self._refused_again(vserver, method, response)

        payload = self._read(response, method)
        pxg = PxgError.of(payload)
        if pxg is not None:
            if result_set and pxg.code == NOT_FOUND:
                raise ResultSetGone(method) from pxg
            raise method_error(pxg, method, where(vserver), self.user) from pxg
        return payload

    def call_quietly(self, vserver: str, method: str, args: dict[str, Any]) -> None:
        """A best-effort call (releasing a result set): no new login, no error."""
        token = self._tokens.get(vserver)
        if token is None:
            return
        try:
            self._post(method, args, token, retry=False)
        except AgentError as err:
            logger.debug("KSC %s on %s failed: %s", method, where(vserver), err)

    def _post(
        self, method: str, args: dict[str, Any] | None, token: str, retry: bool
    ) -> requests.Response:
        """POST one method with the session token."""
        body = json.dumps(args or {}, separators=(",", ":"))
        return self._send(method, body, {SESSION_HEADER: token}, retry)

    def _send(
        self, method: str, body: str, headers: dict[str, str], retry: bool
    ) -> requests.Response:
        """One request; reports unreachable (once) and back (once)."""
        try:
            response = self.transport.request(
                "POST",
                API + method,
                data=body.encode("utf-8"),
                headers=headers,
                retry=retry,
            )
        except (ConnectError, ServerError) as err:
            with self._lock:
                first, self._unreachable = not self._unreachable, True
            if first:
                logger.warning("KSC at %s is unreachable: %s", self.address, err)
            raise
        if self._unreachable:
            with self._lock:
                back, self._unreachable = self._unreachable, False
            if back:
                logger.info("KSC at %s is back", self.address)
        return response

    def _read(self, response: requests.Response, method: str) -> dict[str, Any]:
        """The JSON object of a 200 reply; any other answer as a typed error."""
        if response.status_code == 404:
            raise ProtocolError(
                f"HTTP 404 from {self.address}: the address is not KSC's Open API; "
                "check the address and port (13299)",
                system=SYSTEM,
                field="address",
            )
        if response.status_code != 200:
            raise ProtocolError(
                f"KSC at {self.address} answered {method} with HTTP "
                f"{response.status_code}: check that the address is KSC's Open API "
                "(port 13299), and send the agent's log to support if it is",
                system=SYSTEM,
                field="address",
            )
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            kind = response.headers.get("Content-Type", "no content type")[:60]
            raise ProtocolError(
                f"{self.address} answered {method} with {kind}, not KSC's JSON: "
                "check that the address is KSC's Open API (port 13299)",
                system=SYSTEM,
                field="address",
            )
        return payload

    # Logins.

    def login(
        self, vserver: str, *, stale: str | None = None, force: bool = False
    ) -> str:
        """A live token for ``vserver``: the current one, or a new login.

        ``stale`` is a token the server refused: another thread's newer login is
        used instead of logging in twice. ``force`` logs in even with a live token.
        """
        self._check_credentials()
        with self._lock:
            lock = self._login_locks.setdefault(vserver, threading.Lock())

        with lock:
            current = self._tokens.get(vserver)
            if not force and current is not None and current != stale:
                return current
            if force and current is not None:
                self.call_quietly(vserver, "Session.EndSession", {})

            headers = {
                "Authorization": self._authorization(),
                VSERVER_HEADER: _b64(vserver),
            }
            response = self._send("Session.StartSession", "{}", headers, retry=True)
            if response.status_code in (401, 403):
                raise self._login_refusal(vserver, response)
            payload = self._read(response, "Session.StartSession")
            pxg = PxgError.of(payload)
            if pxg is not None:
                raise self._login_refusal(vserver, response) from pxg
            token = payload.get("PxgRetVal")
            if not isinstance(token, str) or not token:
                raise ProtocolError(
                    f"KSC at {self.address} opened a session without a token: send "
                    "the agent's log to support",
                    system=SYSTEM,
                )
            self._tokens[vserver] = token
        logger.debug("Logged in to %s at %s", where(vserver), self.address)
        return token

    def end_all(self) -> None:
        """End every session (best effort), as a polite client does on closing."""
        with self._lock:
            tokens, self._tokens = self._tokens, {}
        for token in tokens.values():
            try:
                self.transport.request(
                    "POST",
                    API + "Session.EndSession",
                    data=b"{}",
                    headers={SESSION_HEADER: token},
                    retry=False,
                    timeout=END_TIMEOUT,
                )
            except AgentError as err:
                logger.debug("Ending a KSC session failed: %s", err)

    def _authorization(self) -> str:
        """The KSCBasic header: ``DOMAIN\\name`` is a Windows account, else internal."""
        domain, _, name = self.user.rpartition("\\")
        internal = "0" if domain else "1"
        return (
            f'KSCBasic user="{_b64(name)}", pass="{_b64(self._password)}", '
            f'domain="{domain}", internal="{internal}"'
        )

    def _check_credentials(self) -> None:
        """Refuse to log in without a user name or password."""
        if not self.user:
            raise WrongCredentials(
                "Enter the user name of a KSC account: KSC's Open API has no "
                "certificate login, so the certificate file does not replace the "
                "user name and password",
                system=SYSTEM,
                field="user",
            )
        if not self._password:
            raise WrongCredentials(
                f"Enter the password of the KSC account {self.user}",
                system=SYSTEM,
                field="password",
            )

    def _login_refusal(self, vserver: str, response: requests.Response) -> AuthError:
        """The typed error for a refused login: 2FA, virtual server, credentials."""
        try:
            pxg = PxgError.of(response.json())
        except ValueError:
            pxg = None
        said = f" (KSC says: {pxg.message})" if pxg and pxg.message else ""

        challenge = response.headers.get("WWW-Authenticate", "")
        if challenge.startswith("KSCMFA"):
            return AuthError(
                f"The KSC account {self.user} must confirm each login with a second "
                "factor, which the agent cannot do: exempt the account from two-step "
                "verification in KSC, or use an account without it",
                system=SYSTEM,
                field="user",
            )
        if vserver and (pxg is None or pxg.code != LOGON_FAILED):
            return VirtualServerLoginFailed(
                f'KSC login failed for virtual server "{vserver}"{said}: check the '
                "virtual server's name as KSC lists it under Virtual Administration "
                "Servers; if it is right, check the user name and password",
                system=SYSTEM,
                field="vserver",
                vserver=vserver,
            )
        if response.status_code == 403:
            return AccountInactive(
                f"KSC refused the login of {self.user}{said}: the account may be "
                "locked or disabled; ask the KSC administrator",
                system=SYSTEM,
                field="user",
            )
        return WrongCredentials(
            f"KSC refused the user name {self.user} or its password{said}: check "
            "both (the password is case-sensitive; write a Windows account as "
            "DOMAIN\\name)",
            system=SYSTEM,
            field="password",
        )

    def _refused_again(
        self, vserver: str, method: str, response: requests.Response
    ) -> RemoteError:
        """The error when a call is refused even right after a new login."""
        try:
            pxg = PxgError.of(response.json())
        except ValueError:
            pxg = None
        said = f"; KSC says: {pxg.message}" if pxg and pxg.message else ""
        if response.status_code == 403:
            return PermissionDenied(
                f"KSC refused {method} on {where(vserver)} even right after a new "
                f"login (HTTP 403{said}): check that the account {self.user} may use "
                "the Open API and read this virtual server",
                system=SYSTEM,
                field="user",
                right=method,
            )
        return ProtocolError(
            f"KSC at {self.address} did not accept the session it had just opened "
            f"for {where(vserver)} (HTTP 401{said}): try again later, and send the "
            "agent's log to support if it stays so",
            system=SYSTEM,
        )
