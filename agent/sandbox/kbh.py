"""The emulated Kaspersky Business Hub: one server per environment, JSON over HTTPS.

The wire is our model of Business Hub (``specs/kbh.md``), not a confirmed one: every
choice the spec leaves open (error codes, paging limits, the cursor, the token's
lifetime) is a constant below, so that a change to the real wire touches this module
and ``agent/sources/kbh.py`` alone.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
import http
import logging
import math
import random
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from agent.sandbox import seed
from agent.sandbox.certs import TlsIdentity
from agent.sandbox.server import BadRequest, Emulator, Request, Response

logger = logging.getLogger(__name__)

# The modelled wire, in one place.
ENVIRONMENTS = ("production", "beta", "test")
API_PREFIX = "/api/v1"
TOKEN_LIFETIME = 3600.0
#: How long an ended token is still told apart from an unknown one.
FORGET_ENDED_TOKENS_AFTER = 3600.0
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
INTEGRATION_HEADER = "X-Integration-Id"
#: The cursor is base64url (no padding) of "kbh1|<environment>|<company>|<event id>".
CURSOR_VERSION = "kbh1"

INVALID_CREDENTIALS = "invalid_credentials"
ACCOUNT_DISABLED = "account_disabled"
UNAUTHORIZED = "unauthorized"
TOKEN_EXPIRED = "token_expired"
MISSING_INTEGRATION_ID = "missing_integration_id"
INVALID_INTEGRATION_ID = "invalid_integration_id"
INVALID_REQUEST = "invalid_request"
INVALID_PARAMETER = "invalid_parameter"
INVALID_CURSOR = "invalid_cursor"
NOT_FOUND = "not_found"
COMPANY_NOT_FOUND = "company_not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
RATE_LIMITED = "rate_limited"

_UUID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)
_NUMBER = re.compile(r"^-?[0-9]{1,9}$")
_COMPANY = rf"^{API_PREFIX}/companies/([^/]+)"
#: Paths and the method each takes, with the emulator method that answers it.
_ROUTES = (
    (re.compile(rf"^{API_PREFIX}/session$"), {"POST": "_sign_in"}),
    (re.compile(rf"^{API_PREFIX}/companies$"), {"GET": "_list_companies"}),
    (re.compile(_COMPANY + "/devices$"), {"GET": "_list_devices"}),
    (re.compile(_COMPANY + "/licenses$"), {"GET": "_list_licenses"}),
    (re.compile(_COMPANY + "/events$"), {"GET": "_list_events"}),
    (re.compile(_COMPANY + "/office365/problems$"), {"GET": "_list_office365"}),
)


class ApiError(Exception):
    """A request the modelled API refuses; answered in the JSON error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """``{"error": {"code", "message"}}`` with ``status``."""
    payload = {"error": {"code": code, "message": message}}
    return Response.json(payload, status, headers)


def iso_time(moment: dt.datetime) -> str:
    """A time as ISO 8601 in UTC with a trailing Z, to the second."""
    utc = moment.astimezone(dt.UTC).replace(microsecond=0, tzinfo=None)
    return utc.isoformat() + "Z"


@dataclass
class Account:
    """A Business Hub user who signs in with an email address and a password."""

    email: str
    password: str
    disabled: bool = False


@dataclass
class Session:
    """A signed-in token; it ends at ``expires_at`` (``time.monotonic`` seconds)."""

    email: str
    expires_at: float


class KbhEmulator(Emulator):
    """One Business Hub server (production, beta or test) with its own accounts."""

    def __init__(
        self,
        fleet: seed.Fleet,
        *,
        environment: str,
        tls: TlsIdentity,
        seed: int = 0,
    ) -> None:
        if environment not in ENVIRONMENTS:
            raise ValueError(
                f"Unknown Business Hub environment '{environment}': "
                f"use one of {', '.join(ENVIRONMENTS)}"
            )
        super().__init__(tls=tls, seed=seed)
        self.name = f"kbh-{environment}"
        self.environment = environment
        self.fleet = fleet
        #: Seconds a token lasts; tests lower it to see a token expire.
        self.token_lifetime = TOKEN_LIFETIME
        self.account, self.disabled_account = make_accounts(environment, seed)
        self.sessions: dict[str, Session] = {}
        self.integration_ids: set[str] = set()
        self._companies = {tenant.uid: tenant for tenant in fleet.tenants}

    def start(self) -> KbhEmulator:
        """Listen on a free port of 127.0.0.1 and serve; return this emulator."""
        super().start()
        return self

    def describe(self) -> dict[str, Any]:
        """Where this server is and who can sign in (and who is disabled)."""
        return {
            **super().describe(),
            "environment": self.environment,
            "email": self.account.email,
            "password": self.account.password,
            "disabled_email": self.disabled_account.email,
            "disabled_password": self.disabled_account.password,
        }

    # Faults and errors in the API's own shape.

    def fault_response(self, status: int, retry_after: int | None = None) -> Response:
        """An injected failure as a JSON error; 429 says when to try again."""
        if status == http.HTTPStatus.TOO_MANY_REQUESTS:
            wait = retry_after if retry_after is not None else 1
            return error_response(
                status,
                RATE_LIMITED,
                f"Too many requests: wait {wait} seconds and try again",
                {"Retry-After": str(wait)},
            )
        phrase = http.HTTPStatus(status).phrase
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        code = re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")
        return error_response(status, code, f"{phrase} (injected fault)", headers)

    def bad_request(self, message: str) -> Response:
        """A request that cannot be read, as a JSON error."""
        return error_response(400, INVALID_REQUEST, message)

    # Sessions.

    def expire_sessions(self) -> None:
        """End every token now; they answer ``token_expired`` from here on."""
        now = time.monotonic()
        for session in self.sessions.values():
            session.expires_at = min(session.expires_at, now)

    def _sign_in(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(400, INVALID_REQUEST, "Send email and password as JSON")
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            raise ApiError(
                400, INVALID_REQUEST, "Both email and password must be strings"
            )

        with self.lock:
            account = self._account(email, password)
            token = secrets.token_urlsafe(32)
            now = time.monotonic()
            self._forget_ended_sessions(now)
            self.sessions[token] = Session(account.email, now + self.token_lifetime)
            lifetime = self.token_lifetime

        logger.debug("%s: %s signed in", self.name, account.email)
        expires_in = max(1, math.ceil(lifetime))
        return Response.json({"token": token, "expires_in": expires_in})

    def _account(self, email: str, password: str) -> Account:
        for account in (self.account, self.disabled_account):
            if account.email == email.strip().lower() and secrets.compare_digest(
                account.password.encode(), password.encode()
            ):
                if account.disabled:
                    raise ApiError(
                        403,
                        ACCOUNT_DISABLED,
                        f"The account {account.email} is disabled in this "
                        "Business Hub; ask its administrator to enable it",
                    )
                return account
        raise ApiError(401, INVALID_CREDENTIALS, "The email or password is wrong")

    def _forget_ended_sessions(self, now: float) -> None:
        cutoff = now - FORGET_ENDED_TOKENS_AFTER
        for token in [t for t, s in self.sessions.items() if s.expires_at < cutoff]:
            del self.sessions[token]

    def _authorize(self, request: Request) -> None:
        """Check the bearer token and the integration id of a data call."""
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401, UNAUTHORIZED, "Sign in first and send Authorization: Bearer"
            )
        session = self.sessions.get(token.strip())
        if session is None:
            raise ApiError(401, UNAUTHORIZED, "The token is not known to this server")
        if session.expires_at <= time.monotonic():
            raise ApiError(401, TOKEN_EXPIRED, "The token has expired: sign in again")

        integration_id = (request.header(INTEGRATION_HEADER) or "").strip()
        if not integration_id:
            raise ApiError(
                400,
                MISSING_INTEGRATION_ID,
                f"Send the integration's UUID in the {INTEGRATION_HEADER} header",
            )
        if not _UUID.match(integration_id):
            raise ApiError(
                400,
                INVALID_INTEGRATION_ID,
                f"The {INTEGRATION_HEADER} header must be a UUID, "
                f"not '{integration_id[:60]}'",
            )
        self.integration_ids.add(integration_id.lower())

    # Requests.

    def handle(self, request: Request) -> Response:
        """Route a request of the modelled API; refusals become JSON errors."""
        try:
            return self._route(request)
        except ApiError as err:
            return error_response(err.status, err.code, err.message, err.headers)

    def _route(self, request: Request) -> Response:
        match, methods = find_route(request.path)

        name = methods.get(request.method)
        if name is None:
            allowed = ", ".join(sorted(methods))
            raise ApiError(
                405,
                METHOD_NOT_ALLOWED,
                f"{request.path} takes {allowed}, not {request.method}",
                {"Allow": allowed},
            )
        handler = getattr(self, name)
        if name == "_sign_in":
            return handler(request)

        # One lock over the check and the page, so a page never sees half a change.
        with self.lock:
            self._authorize(request)
            return handler(request, *match.groups())

    def _company(self, company_id: str) -> seed.Tenant:
        company = self._companies.get(urllib.parse.unquote(company_id))
        if company is None:
            raise ApiError(
                404,
                COMPANY_NOT_FOUND,
                f"There is no company '{company_id[:60]}' in this Business Hub",
            )
        return company

    def _list_companies(self, request: Request) -> Response:
        offset, limit = paging(request)
        page = self.fleet.tenants[offset : offset + limit]
        items = [
            {"id": t.uid, "name": t.name, "workspaces": list(t.workspaces)}
            for t in page
        ]
        return Response.json({"items": items, "total": len(self.fleet.tenants)})

    def _list_devices(self, request: Request, company_id: str) -> Response:
        company = self._company(company_id)
        offset, limit = paging(request)
        items = [
            {
                "id": device.id,
                "name": device.name,
                "kind": device.kind,
                "status": device.status,
                "problems": sorted(device.problems),
                "last_seen": iso_time(device.last_seen),
                # Modelled: the subscription the device uses, so devices can be
                # billed by kind; null when it uses none.
                "license_id": device.license_serial,
            }
            for device in company.devices[offset : offset + limit]
        ]
        return Response.json({"items": items, "total": len(company.devices)})

    def _list_licenses(self, request: Request, company_id: str) -> Response:
        company = self._company(company_id)
        used: dict[str, int] = {}
        for device in company.devices:
            if device.license_serial:
                used[device.license_serial] = used.get(device.license_serial, 0) + 1
        items = [
            {
                "id": lic.serial,
                "product": lic.product,
                "kind": lic.kind,
                "state": lic.state,
                "seats": lic.seats,
                "expires": iso_time(lic.expires),
                "devices_used": used.get(lic.serial, 0),
                "mailboxes_used": lic.mailboxes_used,
            }
            for lic in company.licenses
        ]
        return Response.json({"items": items})

    def _list_events(self, request: Request, company_id: str) -> Response:
        company = self._company(company_id)
        _, limit = paging(request, offset_allowed=False)
        after = self._read_cursor(request.arg("after") or "", company)

        # Ids grow as events are raised, so the events after the cursor are a tail.
        start = bisect.bisect_right(company.events, after, key=lambda e: e.id)
        page = company.events[start : start + limit]
        items = [
            {
                "id": str(event.id),
                "time": iso_time(event.time),
                "severity": event.severity,
                "type": event.type,
                # An Office 365 event is about the company, not a device.
                "device_id": event.device_id or None,
                "device_name": event.device_name or None,
                "description": event.description,
                "problem_id": event.problem_id,
            }
            for event in page
        ]
        last = page[-1].id if page else after
        return Response.json(
            {"items": items, "cursor": self._make_cursor(company, last)}
        )

    def _list_office365(self, request: Request, company_id: str) -> Response:
        """The company's current Office 365 problems; none without the workspace."""
        company = self._company(company_id)
        items = [
            {
                "id": problem.id,
                "kind": problem.kind,
                "mailbox": problem.mailbox,
                "description": problem.description,
                "since": iso_time(problem.since),
            }
            for problem in company.office365_problems
        ]
        return Response.json({"items": items})

    def _make_cursor(self, company: seed.Tenant, event_id: int) -> str:
        text = f"{CURSOR_VERSION}|{self.environment}|{company.uid}|{event_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def _read_cursor(self, cursor: str, company: seed.Tenant) -> int:
        """The event id a cursor stands for; an empty cursor reads from the start."""
        if not cursor:
            return 0
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
            version, environment, company_id, event_id = text.split("|")
            if (version, environment, company_id) != (
                CURSOR_VERSION,
                self.environment,
                company.uid,
            ):
                raise ValueError("the cursor belongs elsewhere")
            return int(event_id)
        except (ValueError, UnicodeError, binascii.Error) as err:
            raise ApiError(
                400,
                INVALID_CURSOR,
                "The after parameter is not a cursor this server gave for this "
                "company: start again without it",
            ) from err

    # The sandbox's own endpoints.

    def state(self) -> dict[str, Any]:
        """The environment, its companies with counts, tokens and integration ids."""
        now = time.monotonic()
        return {
            "environment": self.environment,
            "companies": [
                {
                    "id": t.uid,
                    "name": t.name,
                    "workspaces": list(t.workspaces),
                    "devices": len(t.devices),
                    "device_names": [d.name for d in t.devices],
                    "licenses": len(t.licenses),
                    "events": len(t.events),
                    "office365_problems": [p.id for p in t.office365_problems],
                }
                for t in self.fleet.tenants
            ],
            "active_tokens": sum(s.expires_at > now for s in self.sessions.values()),
            "integration_ids": sorted(self.integration_ids),
        }

    def add_events(self, payload: Any) -> dict[str, Any]:
        """Raise events or change devices through :func:`seed.apply_changes`."""
        with self.lock:
            try:
                return seed.apply_changes(self.fleet, payload)
            except (ValueError, TypeError, AttributeError) as err:
                # ChangeError is a ValueError; the others come from malformed items.
                raise BadRequest(f"The changes cannot be applied: {err}") from err


def find_route(path: str) -> tuple[re.Match[str], dict[str, str]]:
    """The route a path takes and the methods it answers; unknown paths are 404."""
    trimmed = path.rstrip("/") or "/"
    for pattern, methods in _ROUTES:
        match = pattern.match(trimmed)
        if match is not None:
            return match, methods
    raise ApiError(404, NOT_FOUND, f"There is no {path[:200]} in this API")


def paging(request: Request, *, offset_allowed: bool = True) -> tuple[int, int]:
    """The ``offset`` and ``limit`` of a list request, checked."""
    offset = _whole_number(request, "offset", 0) if offset_allowed else 0
    if offset < 0:
        raise ApiError(
            400, INVALID_PARAMETER, f"The offset parameter must be 0 or more: {offset}"
        )
    limit = _whole_number(request, "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(
            400,
            INVALID_PARAMETER,
            f"The limit parameter must be from 1 to {MAX_LIMIT}: {limit}",
        )
    return offset, limit


def _whole_number(request: Request, name: str, default: int) -> int:
    raw = request.arg(name)
    if raw is None:
        return default
    if not _NUMBER.match(raw.strip()):
        raise ApiError(
            400,
            INVALID_PARAMETER,
            f"The {name} parameter must be a whole number, not '{raw[:40]}'",
        )
    return int(raw.strip())


def make_accounts(environment: str, seed: int) -> tuple[Account, Account]:
    """The environment's administrator and its disabled user, the same per seed."""
    rng = random.Random(f"kbh-accounts:{environment}:{seed}")
    domain = f"{environment}.msp.example"
    admin = Account(
        f"admin@{domain}", f"{environment.title()}-{rng.getrandbits(48):012x}"
    )
    disabled = Account(
        f"former.technician@{domain}",
        f"Disabled-{rng.getrandbits(48):012x}",
        disabled=True,
    )
    return admin, disabled
