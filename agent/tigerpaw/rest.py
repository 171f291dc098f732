"""Tigerpaw's REST API: signed JSON calls, paging, and refusals as typed errors.

Every request is signed by :class:`agent.tigerpaw.signing.TsiAuth`. GETs, PUTs and
searches are retried on 5xx and 429 (they are safe to repeat); creates are sent once,
because a create that may have reached the server is made safe by the caller's
idempotency key, never by sending it again here. Replies are JSON with ``Success``
and ``Message``; a few calls answer a bare list, which is accepted too.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

from agent.errors import (
    AccountInactive,
    AuthError,
    PermissionDenied,
    ProtocolError,
    RecordLocked,
    RecordNotFound,
    RemoteError,
    RequestRejected,
    ServerError,
    WrongCredentials,
)
from agent.tigerpaw.signing import TsiAuth
from agent.tigerpaw.wire import SYSTEM, TigerpawHttp, scrub
from agent.transport import DEFAULT_TIMEOUT, describe_address

logger = logging.getLogger(__name__)

#: Rows per page; Tigerpaw answers at most 200.
DEFAULT_PAGE_SIZE = 100
#: Beyond this many seconds between our clock and the server's, signatures fail.
CLOCK_TOLERANCE = 240
KEYS_ADVICE = (
    "check the public and private key of the rep in Master Tables > Account Reps > "
    "Admin (REST API Security)"
)
RIGHTS_ADVICE = (
    "grant it to the security role of the rep whose REST keys the agent uses "
    "(Tigerpaw: Master Tables > Security Roles), or use the keys of a rep who has it"
)
_RIGHT_PATTERN = re.compile(
    r"((?:Accounts|Recurring agreements|Master tables|Price book items|"
    r"Service orders|Custom folders and fields): (?:get|create|update|delete))",
    re.IGNORECASE,
)
_REP_PATTERN = re.compile(r"rep '([^']{1,80})'")


class RestHttp(TigerpawHttp):
    """The REST transport: 5xx errors quote Tigerpaw's own Message."""

    def status_error(self, response: requests.Response) -> RemoteError | None:
        """Like the base, with the server's Message in a server error."""
        failure = super().status_error(response)
        if not isinstance(failure, ServerError):
            return failure
        message = message_of(response)
        if not message:
            return failure
        address = describe_address(response.url or self.base_url)
        # Tigerpaw's Message says what failed: quote it, without our own
        # "Tigerpaw failed" in front of its "The Tigerpaw API failed".
        said = scrub(message, ()).rstrip(" .")
        return ServerError(
            f"HTTP {response.status_code} from {address}: {said}. The agent tries "
            "again later",
            system=SYSTEM,
            status=response.status_code,
        )


def message_of(response: requests.Response) -> str:
    """The ``Message`` of a JSON reply, or empty."""
    try:
        payload = response.json()
    except ValueError:
        return ""
    if isinstance(payload, dict):
        return str(payload.get("Message") or "")
    return ""


def rows_of(payload: Any, key: str) -> list[dict[str, Any]]:
    """The list under ``key`` of a reply (or the reply itself, if a bare list)."""
    if isinstance(payload, list):
        found: Any = payload
    elif isinstance(payload, dict):
        found = payload.get(key)
    else:
        found = None
    if found is None:
        return []
    if not isinstance(found, list):
        raise ProtocolError(
            f"Tigerpaw answered {key} that is not a list", system=SYSTEM
        )
    return [row for row in found if isinstance(row, dict)]


class RestApi:
    """Signed calls to ``<api_url>/api/...`` with typed errors and paging."""

    def __init__(
        self,
        api_url: str,
        public_key: str,
        private_key: str,
        *,
        verify: bool | str = True,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self.http = RestHttp(
            api_url,
            address_field="api_url",
            verify=verify,
            timeout=timeout,
            attempts=attempts,
            backoff=backoff,
            sleep=sleep,
        )
        self.http.session.auth = TsiAuth(public_key, private_key, clock)
        self.clock = clock
        self.page_size = max(1, min(int(page_size), 200))
        self.secrets = (public_key.strip(), private_key.strip())

    def close(self) -> None:
        """Close pooled connections."""
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        right: str | None = None,
        record: str | None = None,
        retry: bool | None = None,
        read: bool = False,
    ) -> Any:
        """Send one signed request and return its JSON; refusals raise.

        ``right`` is the right the call needs (named when Tigerpaw refuses without
        naming one); ``record`` names the record for a 404 ("Service order 20001").
        ``retry`` defaults to safe for GET and PUT, not for POST and DELETE. A
        timeout is retried only for a GET or a ``read`` (a search): a write that
        timed out may have been done, and its outbox entry tries it again later.
        """
        safe = method in ("GET", "PUT") if retry is None else retry
        headers = {"Accept": "application/json"}
        kwargs: dict[str, Any] = {"headers": headers, "params": params}
        if body is not None:
            kwargs["data"] = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"

        response = self.http.request(
            method, path, retry=safe, retry_timeout=read or None, **kwargs
        )
        payload = self._payload(response)
        failed = isinstance(payload, dict) and payload.get("Success") is False
        if response.status_code >= 400 or failed:
            raise self._refusal(response, payload, right=right, record=record)
        logger.debug("%s %s: HTTP %d", method, path, response.status_code)
        return payload

    def pages(
        self,
        method: str,
        path: str,
        key: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        right: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every row under ``key`` of a paged list, fetched one page at a time."""
        start = 1
        while True:
            paging = {"pageRequest.pageSize": self.page_size}
            paging["pageRequest.startRow"] = start
            page_body = None
            if method == "POST":
                page_body = {**(body or {}), "PageSize": self.page_size}
                page_body["StartRow"] = start
            payload = self.call(
                method,
                path,
                body=page_body,
                params={**(params or {}), **paging},
                right=right,
                retry=True,
                read=True,
            )
            rows = rows_of(payload, key)

            yield from rows

            next_row = payload.get("NextRow") if isinstance(payload, dict) else None
            next_row = int(next_row or 0)
            if not rows or next_row <= 0:
                return
            if next_row <= start:
                raise ProtocolError(
                    f"Tigerpaw's paging of {path} went back to row {next_row}",
                    system=SYSTEM,
                )
            start = next_row

    # Errors.

    def _payload(self, response: requests.Response) -> Any:
        """The reply's JSON; a reply without JSON is not Tigerpaw's API."""
        try:
            return response.json()
        except ValueError as err:
            if response.status_code == 404:
                raise self.http.wrong_address(response, "Tigerpaw REST API") from err
            address = describe_address(response.url or self.http.base_url)
            raise ProtocolError(
                f"HTTP {response.status_code} from {address} is not an answer of "
                "Tigerpaw's REST API (no JSON): check the Tigerpaw API address",
                system=SYSTEM,
                field="api_url",
            ) from err

    def _refusal(
        self,
        response: requests.Response,
        payload: Any,
        *,
        right: str | None,
        record: str | None,
    ) -> RemoteError:
        """The typed error for a refused request."""
        status = response.status_code
        raw = str(payload.get("Message") or "") if isinstance(payload, dict) else ""
        message = scrub(raw, self.secrets)
        if status == 401:
            return self._auth_error(response, raw)
        if status == 403:
            found = _RIGHT_PATTERN.search(raw)
            named = _canonical_right(found.group(1)) if found else right
            which = f"the right '{named}'" if named else "a right this call needs"
            return PermissionDenied(
                f"The Tigerpaw rep of these REST keys lacks {which}: {RIGHTS_ADVICE}",
                system=SYSTEM,
                field="public_key",
                right=named or "",
            )
        if status == 404 and record:
            return RecordNotFound(
                f"{record} does not exist in Tigerpaw ({message or 'HTTP 404'})",
                system=SYSTEM,
                status=404,
            )
        if status == 404:
            return self.http.wrong_address(response, "such Tigerpaw REST resource")
        if status == 423:
            return RecordLocked(
                message or f"{record or 'The record'} is open in Tigerpaw: try later",
                system=SYSTEM,
            )
        if status in (405, 411, 415):
            return ProtocolError(
                f"Tigerpaw refused the request as sent (HTTP {status}: {message}); "
                "this Tigerpaw version may not offer it",
                system=SYSTEM,
            )
        return RequestRejected(
            f"Tigerpaw refused the request: {message or f'HTTP {status}'}",
            system=SYSTEM,
            status=status,
        )

    def _auth_error(self, response: requests.Response, raw: str) -> AuthError:
        """The typed error for a 401: clock, inactive rep, or wrong keys."""
        text = raw.casefold()
        skew = self._clock_skew(response)
        if "clock" in text or (skew is not None and abs(skew) > CLOCK_TOLERANCE):
            off = f" by about {abs(skew) / 60:.0f} minutes" if skew else ""
            return AuthError(
                f"Tigerpaw refused the request because this computer's clock is "
                f"off{off}: set this computer's date, time and time zone right (or "
                "turn on automatic time), then try again",
                system=SYSTEM,
            )
        if "inactive" in text or "not active" in text:
            found = _REP_PATTERN.search(raw)
            who = f" ({found.group(1)})" if found else ""
            return AccountInactive(
                f"Tigerpaw refused the REST keys: their rep{who} is inactive. Make "
                "the rep active in Master Tables > Account Reps, or use the keys of "
                "an active rep",
                system=SYSTEM,
                field="public_key",
            )
        if "signature" in text or "private key" in text:
            return WrongCredentials(
                "Tigerpaw refused the REST keys: the private key does not belong to "
                f"this public key; {KEYS_ADVICE}",
                system=SYSTEM,
                field="private_key",
            )
        return WrongCredentials(
            f"Tigerpaw refused the REST keys: {KEYS_ADVICE}",
            system=SYSTEM,
            field="public_key",
        )

    def _clock_skew(self, response: requests.Response) -> float | None:
        """Seconds our clock is ahead of the server's (from its Date header)."""
        served = response.headers.get("Date")
        if not served:
            return None
        try:
            server_time = email.utils.parsedate_to_datetime(served).timestamp()
        except (TypeError, ValueError):
            return None
        return self.clock() - server_time


def _canonical_right(text: str) -> str:
    """A right as the setup guide writes it: ``Service orders: create``."""
    area, _, action = text.partition(":")
    area = area.strip()
    return f"{area[:1].upper()}{area[1:].lower()}: {action.strip().lower()}"
