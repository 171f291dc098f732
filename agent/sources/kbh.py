"""The Kaspersky Business Hub client: companies, devices, licenses, events, and the
Office 365 problems of a company.

The wire is our model (``specs/kbh.md``); it lives here, in ``kbh_wire.py`` and in the
emulator, so a change of the real API touches those places only. ``KESCloudServer``
picks the server from :data:`SERVERS` at every call, so a change of the setting is
followed at the next call without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from agent.errors import (
    CertificateError,
    ConnectError,
    ProtocolError,
    RemoteError,
    ServerError,
    WrongCredentials,
)
from agent.sources import records
from agent.sources.kbh_servers import (
    ENVIRONMENTS,
    SETTING,
    Server,
    ServerTable,
    normalise,
)
from agent.sources.kbh_wire import (
    SYSTEM,
    CompanyNotFound,
    CursorRefused,
    KbhTransport,
    error_of,
    parse_device,
    parse_event,
    parse_license,
    parse_office365_problem,
    parse_tenant,
    read_json,
    refusal,
    reword,
    sign_in_refusal,
)
from agent.transport import DEFAULT_TIMEOUT

__all__ = [
    "ENVIRONMENTS",
    "SERVERS",
    "CompanyNotFound",
    "CursorRefused",
    "KbhClient",
    "Server",
    "ServerTable",
    "clear_registered_servers",
    "register_servers",
]

logger = logging.getLogger(__name__)

API = "/api/v1"
INTEGRATION_HEADER = "X-Integration-Id"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
#: A 401 with one of these codes means "sign in again" (once per call).
RENEW_CODES = frozenset({"token_expired", "unauthorized"})
#: Sign in again this long before the token ends, rather than wait for its 401.
RENEW_MARGIN = 30.0

#: The real Business Hub base URL per ``KESCloudServer`` value. No public material
#: names them, so every entry is unset: choosing one is a ConfigError, never a guess
#: and never a fallback to production. The sandbox registers its emulated servers.
KNOWN_SERVERS: dict[str, str | None] = {"production": None, "beta": None, "test": None}
SERVERS = ServerTable(KNOWN_SERVERS)


def register_servers(servers: Mapping[str, tuple[str, str | None]]) -> None:
    """Put ``{environment: (url, ca_file)}`` (the sandbox's) in :data:`SERVERS`."""
    SERVERS.register(servers)


def clear_registered_servers() -> None:
    """Take the registered servers out of :data:`SERVERS` again."""
    SERVERS.clear()


class _Link:
    """One Business Hub server in use: its transport and the token signed in there."""

    def __init__(self, name: str, server: Server, transport: KbhTransport) -> None:
        self.name = name
        self.server = server
        self.transport = transport
        self.label = f"{SYSTEM} ({name})"
        self.token: str | None = None
        self.renew_at = 0.0
        self.lock = threading.Lock()

    def live_token(self) -> str | None:
        """The token while it is still some way from its end, else None."""
        if self.token is not None and time.monotonic() < self.renew_at:
            return self.token
        return None


class KbhClient:
    """Reads one Business Hub account for one integration.

    ``server`` is a ``KESCloudServer`` value or a callable giving the current one
    (such as ``lambda: config.settings.kes_cloud_server``). Lists are read lazily,
    page by page, each from the server in use when the list was asked for.
    """

    def __init__(
        self,
        email: str,
        password: str,
        *,
        server: Callable[[], str] | str,
        integration_id: str,
        table: ServerTable | None = None,
        timeout: tuple[float, float] | float = DEFAULT_TIMEOUT,
        page_size: int = DEFAULT_PAGE_SIZE,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.email = email.strip()
        self._password = password
        self._server = server
        # Ours, made by the store; a malformed one is a bug, not a setup mistake.
        self.integration_id = str(uuid.UUID(integration_id))
        self.table = table
        self.timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self.attempts = attempts
        self.sleep = sleep
        self._lock = threading.Lock()
        self._link_in_use: _Link | None = None
        self._unreachable = False

    def close(self) -> None:
        """Close the pooled connections."""
        with self._lock:
            link, self._link_in_use = self._link_in_use, None
        if link is not None:
            link.transport.close()

    def __enter__(self) -> KbhClient:
        """Use the client in a ``with`` block that closes it."""
        return self

    def __exit__(self, *_: object) -> None:
        """Close the client at the end of the ``with`` block."""
        self.close()

    # What callers read.

    def check(self) -> list[records.Tenant]:
        """Sign in afresh and read the first page of companies (the setup's Proceed)."""
        link = self._link()

        self._sign_in(link, force=True)
        params = {"offset": 0, "limit": self.page_size}
        reply = self._get(link, f"{API}/companies", params)

        return [
            self._parse(link, "company", parse_tenant, item)
            for item in self._items(link, reply, "companies")
        ]

    def companies(self) -> Iterator[records.Tenant]:
        """Every company of the account, with its workspaces, page by page."""
        link = self._link()
        pages = self._pages(link, f"{API}/companies", "companies")
        return (self._parse(link, "company", parse_tenant, item) for item in pages)

    def devices(self, company_id: str) -> Iterator[records.Device]:
        """The company's devices with their problems, read lazily page by page."""
        link = self._link()
        path = self._company_path(company_id, "devices")
        pages = self._pages(link, path, "devices", company_id)
        return (
            self._parse(link, "device", parse_device, company_id, item)
            for item in pages
        )

    def license_usage(self, company_id: str) -> list[records.LicenseUsage]:
        """Each license of the company with the devices (or mailboxes) using it."""
        link = self._link()

        reply = self._get(
            link, self._company_path(company_id, "licenses"), None, company_id
        )
        licenses = self._items(link, reply, "licenses")
        using = self._devices_per_license(link, company_id)

        usage = []
        for item in licenses:
            license_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            device_ids = tuple(using.get(license_id, ()))
            usage.append(
                self._parse(
                    link, "license", parse_license, company_id, item, device_ids
                )
            )
            if isinstance(item, dict) and item.get("devices_used") != len(device_ids):
                # The lists were read at different moments; the devices are exact.
                logger.debug(
                    "%s: license %s counts %s devices, %d name it",
                    link.label,
                    license_id,
                    item.get("devices_used"),
                    len(device_ids),
                )
        return usage

    def events(
        self, company_id: str, cursor: str = "", limit: int = DEFAULT_PAGE_SIZE
    ) -> records.EventPage:
        """Up to ``limit`` events after ``cursor`` (all from the first without one)."""
        link = self._link()
        params: dict[str, Any] = {"limit": max(1, min(limit, MAX_PAGE_SIZE))}
        if cursor:
            params["after"] = cursor

        path = self._company_path(company_id, "events")
        reply = self._get(link, path, params, company_id)
        items = self._items(link, reply, "events")
        next_cursor = reply.get("cursor")
        if not isinstance(next_cursor, str):
            raise self._unreadable(link, "a list of events", "it holds no cursor")

        events = [
            self._parse(link, "event", parse_event, company_id, item) for item in items
        ]
        return records.EventPage(events=events, cursor=next_cursor or cursor)

    def office365_problems(self, company_id: str) -> list[records.Office365Problem]:
        """The company's current Office 365 problems (none without the workspace)."""
        link = self._link()

        path = self._company_path(company_id, "office365/problems")
        reply = self._get(link, path, None, company_id)

        return [
            self._parse(link, "problem", parse_office365_problem, company_id, item)
            for item in self._items(link, reply, "Office 365 problems")
        ]

    # Reading lists.

    def _pages(
        self, link: _Link, path: str, what: str, company_id: str | None = None
    ) -> Iterator[Any]:
        """The items of an offset-paged list, one page in memory at a time."""
        offset = 0
        while True:
            params = {"offset": offset, "limit": self.page_size}
            reply = self._get(link, path, params, company_id)
            items = self._items(link, reply, what)
            total = reply.get("total")

            yield from items

            offset += len(items)
            if isinstance(total, int):
                if not items or offset >= total:
                    return
            elif len(items) < self.page_size:
                return

    def _devices_per_license(self, link: _Link, company_id: str) -> dict[str, list]:
        """Device ids per ``license_id``, from the company's devices."""
        path = self._company_path(company_id, "devices")
        using: dict[str, list[str]] = {}
        for item in self._pages(link, path, "devices", company_id):
            if not isinstance(item, dict) or "license_id" not in item:
                # Counting without it would bill nothing, silently.
                raise self._unreadable(
                    link,
                    "a list of devices",
                    "a device does not say which license it uses (license_id)",
                )
            if item["license_id"] not in (None, ""):
                using.setdefault(str(item["license_id"]), []).append(str(item["id"]))
        return using

    def _items(self, link: _Link, reply: dict[str, Any], what: str) -> list[Any]:
        """The ``items`` list of a reply."""
        items = reply.get("items")
        if not isinstance(items, list):
            raise self._unreadable(link, f"a list of {what}", "it holds no items")
        return items

    def _parse(self, link: _Link, what: str, parse: Callable, *args: Any) -> Any:
        """``parse(*args)``; a field we cannot read becomes a ProtocolError."""
        try:
            return parse(*args)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            why = f"{type(err).__name__}: {err}"
            raise self._unreadable(link, f"a {what}", why) from err

    def _unreadable(self, link: _Link, what: str, why: str) -> ProtocolError:
        """A reply we cannot read, said so that support can act on it."""
        return ProtocolError(
            f"{link.label} sent {what} the agent cannot read ({why}): check "
            f"that {SETTING} selects a Business Hub server, and send the agent's log "
            "to support",
            system=SYSTEM,
        )

    @staticmethod
    def _company_path(company_id: str, what: str) -> str:
        """The path of a company's list, its id quoted."""
        return f"{API}/companies/{quote(company_id, safe='')}/{what}"

    # The server in use.

    def _server_name(self) -> str:
        """The ``KESCloudServer`` value in force now."""
        return self._server() if callable(self._server) else self._server

    def _link(self) -> _Link:
        """The link to the server ``KESCloudServer`` selects now (new on a change)."""
        name = self._server_name()
        table = self.table if self.table is not None else SERVERS
        server = table.resolve(name)
        name = normalise(name)

        with self._lock:
            old = self._link_in_use
            if old is not None and old.name == name and old.server == server:
                return old
            transport = KbhTransport(
                f"{SYSTEM} ({name})",
                server.url,
                verify=server.verify,
                timeout=self.timeout,
                attempts=self.attempts,
                sleep=self.sleep,
            )
            link = self._link_in_use = _Link(name, server, transport)
            self._unreachable = False

        if old is not None:
            if old.name != name:
                logger.info("Business Hub server changed: %s -> %s", old.name, name)
            else:
                logger.info("The address of %s changed: signing in there", link.label)
            # Lists already being read keep using it; requests reopens what they need.
            old.transport.close()
        return link

    # Calls.

    def _get(
        self,
        link: _Link,
        path: str,
        params: dict[str, Any] | None,
        company_id: str | None = None,
    ) -> dict[str, Any]:
        """GET with the token; a session that ended is renewed once, the GET resent."""
        token = link.live_token() or self._sign_in(link)
        response = self._send(link, "GET", path, params=params, token=token)

        code, _ = error_of(response)
        if response.status_code == 401 and code in RENEW_CODES:
            logger.info("%s ended the session (%s); signing in again", link.label, code)
            token = self._sign_in(link, stale=token)
            response = self._send(link, "GET", path, params=params, token=token)
            if response.status_code == 401:
                raise ProtocolError(
                    f"{link.label} refused the session it had just opened "
                    f"({error_of(response)[0] or 'HTTP 401'}): try again later, and "
                    "send the agent's log to support if it stays so",
                    system=SYSTEM,
                )
        if response.status_code != 200:
            raise refusal(link.label, self.email, response, path, company_id)
        return read_json(link.label, response, path)

    def _sign_in(
        self, link: _Link, *, stale: str | None = None, force: bool = False
    ) -> str:
        """Sign in with email and password; the token (another thread's if newer)."""
        self._check_credentials()
        with link.lock:
            current = link.live_token()
            if not force and current is not None and current != stale:
                return current

            body = {"email": self.email, "password": self._password}
            response = self._send(link, "POST", f"{API}/session", json=body)
            if response.status_code != 200:
                raise sign_in_refusal(link.label, self.email, response)
            reply = read_json(link.label, response, f"{API}/session")
            token, lifetime = reply.get("token"), reply.get("expires_in")
            if not isinstance(token, str) or not token:
                raise self._unreadable(link, "a sign-in reply", "it holds no token")

            lifetime = float(lifetime) if isinstance(lifetime, int | float) else 60.0
            link.token = token
            margin = min(RENEW_MARGIN, lifetime / 10)
            link.renew_at = time.monotonic() + max(0.0, lifetime - margin)
        logger.debug("Signed in to %s as %s", link.label, self.email)
        return token

    def _check_credentials(self) -> None:
        """Refuse a blank or malformed email, or a blank password, before sending."""
        local, at, domain = self.email.partition("@")
        if not (local and at and domain):
            raise WrongCredentials(
                f"'{self.email[:80]}' is not an email address: enter the email you "
                "sign in to Business Hub with",
                system=SYSTEM,
                field="email",
            )
        if not self._password:
            raise WrongCredentials(
                "Enter the Business Hub password of " + self.email,
                system=SYSTEM,
                field="password",
            )

    def _send(
        self, link: _Link, method: str, path: str, *, token: str = "", **kwargs: Any
    ) -> requests.Response:
        """One request through the transport; reports unreachable and back once."""
        headers = {INTEGRATION_HEADER: self.integration_id}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            # Sign-in has no effect but a new token, so it is as safe to retry as GET.
            response = link.transport.request(method, path, headers=headers, **kwargs)
        except (ConnectError, CertificateError) as err:
            failure = reword(err, link.label, link.server.url)
            if isinstance(failure, ConnectError):
                self._report_unreachable(link, failure)
            raise failure from err
        except ServerError as err:
            self._report_unreachable(link, err)
            raise

        if self._unreachable:
            with self._lock:
                back, self._unreachable = self._unreachable, False
            if back:
                logger.info("%s is back", link.label)
        return response

    def _report_unreachable(self, link: _Link, failure: RemoteError) -> None:
        """Log the first failure in a row as a warning, the rest at debug level."""
        with self._lock:
            first, self._unreachable = not self._unreachable, True
        if first:
            logger.warning("%s is unreachable: %s", link.label, failure)
        else:
            logger.debug("%s is still unreachable: %s", link.label, failure)
