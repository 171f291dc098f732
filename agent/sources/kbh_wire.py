"""Business Hub's modelled wire: its JSON read into records, its failures into errors.

Everything here follows ``specs/kbh.md``, which is our model of Business Hub, not a
confirmed API: a change of the real wire touches this module, ``kbh.py`` and the
emulator.

Office 365 (our extension of the model; the spec names the workspace, not its data):
a company with the ``office365`` workspace raises events about its Office 365
protection, a license problem (type ``O365_LICENSE_PROBLEM``: the subscription
expired, is suspended or has more mailboxes than seats) or a mailbox-protection
problem (``O365_MAILBOX_NOT_PROTECTED``). Such an event names no device
(``device_id`` and ``device_name`` are null) and carries the ``problem_id`` of the
problem it raised; device events carry a null ``problem_id``. Every repeat of a
problem carries the same id. ``GET /api/v1/companies/{id}/office365/problems``
answers ``{"items": [{"id", "kind" (license, mailbox), "mailbox" (null for a license
problem), "description", "since"}]}``, the problems current now, not paged; a company
without the workspace lists none. A problem no longer listed has cleared.

License states (also our extension): besides the spec's ``active``, ``expired`` and
``suspended``, a subscription the customer ended is ``cancelled``; it bills nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from typing import Any

import requests

from agent.errors import (
    AccountInactive,
    AddressNotFound,
    CertificateError,
    CertificateNameMismatch,
    ConnectError,
    NothingListening,
    ProtocolError,
    RateLimited,
    RemoteError,
    ServerError,
    TimedOut,
    WrongCredentials,
)
from agent.sources import records
from agent.sources.kbh_servers import SETTING
from agent.transport import HttpTransport, describe_address, exception_chain

logger = logging.getLogger(__name__)

SYSTEM = "Business Hub"
#: The longest server text we put into a message of our own.
MAX_DETAIL = 200

#: Business Hub's words and ours; they agree today, the tables keep it that way.
PROBLEMS = {
    "not_protected": records.NOT_PROTECTED,
    "databases_outdated": records.DATABASES_OUTDATED,
    "threats_not_cured": records.THREATS_NOT_CURED,
    "not_seen": records.NOT_SEEN,
}
KINDS = {
    "workstation": records.WORKSTATION,
    "server": records.SERVER,
    "mobile": records.MOBILE,
}
STATUSES = ("ok", "warning", "critical")
#: License kinds and states (the spec's, and "cancelled": our modelled extension,
#: also taken in US spelling). Any other word is read as one that bills nothing.
LICENSE_KINDS = {"commercial": "commercial", "trial": "trial"}
LICENSE_STATES = {
    "active": "active",
    "expired": "expired",
    "suspended": "suspended",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}

# Words we met and could not map, each reported once.
_reported_words: set[tuple[str, str]] = set()


class CompanyNotFound(RemoteError):
    """The company is not (or no longer) in the Business Hub server in use."""

    def __init__(self, message: str, *, company_id: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.company_id = company_id


class CursorRefused(ProtocolError):
    """The server does not take the saved event cursor; the caller must reset it."""

    def __init__(self, message: str, *, company_id: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.company_id = company_id


def error_of(response: requests.Response) -> tuple[str, str]:
    """The ``code`` and ``message`` of a JSON error reply; empty when there is none."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    code, message = error.get("code"), error.get("message")
    return (
        code if isinstance(code, str) else "",
        message[:MAX_DETAIL] if isinstance(message, str) else "",
    )


class KbhTransport(HttpTransport):
    """The shared transport, with Business Hub's own words for 429 and 5xx."""

    def __init__(self, label: str, base_url: str, **kwargs: Any) -> None:
        super().__init__(SYSTEM, base_url, **kwargs)
        self.label = label

    def status_error(self, response: requests.Response) -> RemoteError | None:
        """RateLimited or ServerError carrying the server's own message."""
        failure = super().status_error(response)
        if failure is None:
            return None

        address = describe_address(response.url or self.base_url)
        _, detail = error_of(response)
        if isinstance(failure, RateLimited):
            return RateLimited(
                f"{self.label} at {address} asks the agent to slow down for "
                f"{failure.retry_after:.0f} s; it tries again after that",
                system=SYSTEM,
                retry_after=failure.retry_after,
            )
        said = f" ({detail})" if detail else ""
        return ServerError(
            f"{self.label} at {address} failed with HTTP {response.status_code}"
            f"{said}; the agent tries again later",
            system=SYSTEM,
            status=response.status_code,
        )


def reword(error: ConnectError | CertificateError, label: str, url: str) -> RemoteError:
    """The same kind of failure, told in terms of Business Hub and KESCloudServer.

    The shared transport asks to check "the address"; a Business Hub integration
    has no address field, so its messages point at the network and the setting.
    """
    address = describe_address(url)
    host = address.rsplit(":", 1)[0]
    through = "between this computer and Business Hub"
    if isinstance(error, CertificateNameMismatch):
        message = (
            f"The certificate of {label} does not name {host}: a proxy or firewall "
            f"that inspects HTTPS may present its own; let the agent's traffic "
            f"to Business Hub through unchanged, and check {SETTING}"
        )
    elif isinstance(error, CertificateError):
        message = (
            f"{label} at {address} presents a certificate this computer does not "
            f"trust{_verify_detail(error)}: a proxy or firewall that inspects HTTPS "
            "may present its own; let the agent's traffic to Business Hub through "
            f"unchanged, and check {SETTING}"
        )
    elif isinstance(error, AddressNotFound):
        message = (
            f"The address of {label}, {host}, was not found: check this computer's "
            f"DNS and internet connection, and that {SETTING} names the right server"
        )
    elif isinstance(error, NothingListening):
        message = (
            f"Nothing answers at {address}, the address of {label}: check the "
            f"internet connection and any firewall {through}"
        )
    elif isinstance(error, TimedOut):
        message = (
            f"{label} at {address} did not answer in time: check the internet "
            "connection; the agent tries again later"
        )
    else:
        message = (
            f"The connection to {label} at {address} failed: check the internet "
            f"connection and any firewall or proxy {through}"
        )
    return type(error)(message, system=SYSTEM, field=SETTING)


def read_json(label: str, response: requests.Response, path: str) -> dict[str, Any]:
    """The JSON object of a reply; anything else is a ProtocolError."""
    try:
        reply = response.json()
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        kind = response.headers.get("Content-Type", "no content type")
        raise ProtocolError(
            f"{label} answered {path} with {kind[:60]}, not JSON: check that "
            f"{SETTING} selects a Business Hub server",
            system=SYSTEM,
        )
    return reply


def refusal(
    label: str,
    email: str,
    response: requests.Response,
    path: str,
    company_id: str | None,
) -> RemoteError:
    """The typed error a refused data call stands for, by its JSON error code."""
    code, message = error_of(response)
    if code == "company_not_found" and company_id is not None:
        return CompanyNotFound(
            f"There is no company {company_id} in {label}: it was removed there, or "
            f"{SETTING} now selects another server than the one it was chosen on; "
            "choose the integration's companies again",
            system=SYSTEM,
            field="tenant",
            company_id=company_id,
        )
    if code == "invalid_cursor" and company_id is not None:
        return CursorRefused(
            f"{label} does not take the saved event position of company "
            f"{company_id} (it may come from another server after a change of "
            f"{SETTING}): the position must be reset to read its events",
            system=SYSTEM,
            company_id=company_id,
        )
    if code == "account_disabled":
        return sign_in_refusal(label, email, response)
    said = f"{code}: {message}" if code else f"HTTP {response.status_code}"
    return ProtocolError(
        f"{label} refused {path} ({said}): check that {SETTING} selects a Business "
        "Hub server, and send the agent's log to support",
        system=SYSTEM,
    )


def sign_in_refusal(label: str, email: str, response: requests.Response) -> RemoteError:
    """The typed error for a refused sign-in: credentials, a disabled account, other."""
    code, message = error_of(response)
    if code == "invalid_credentials" or (not code and response.status_code == 401):
        return WrongCredentials(
            f"{label} refused the email {email} or its password: check both (the "
            f"password is case-sensitive), and that {SETTING} in the config file "
            "names the Business Hub server this account is on",
            system=SYSTEM,
            field="password",
        )
    if code == "account_disabled" or (not code and response.status_code == 403):
        return AccountInactive(
            f"The Business Hub account {email} is disabled on {label}: ask the "
            "Business Hub administrator to enable it, or sign in with another account",
            system=SYSTEM,
            field="email",
        )
    said = f"{code}: {message}" if code else f"HTTP {response.status_code}"
    return ProtocolError(
        f"{label} did not accept the sign-in ({said}): check that {SETTING} selects "
        "a Business Hub server",
        system=SYSTEM,
    )


def _verify_detail(error: BaseException) -> str:
    """`` (reason)`` from the TLS check that failed, if the chain holds it."""
    for item in exception_chain(error):
        if isinstance(item, ssl.SSLCertVerificationError) and item.verify_message:
            return f" ({item.verify_message})"
    return ""


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when it names no offset)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    moment = dt.datetime.fromisoformat(value.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def parse_tenant(item: dict[str, Any]) -> records.Tenant:
    """A company of the companies list."""
    workspaces = item.get("workspaces") or []
    if not isinstance(workspaces, list):
        raise ValueError("workspaces is not a list")
    return records.Tenant(
        source=records.KBH,
        id=_text(item, "id"),
        name=_text(item, "name"),
        workspaces=tuple(str(w) for w in workspaces),
    )


def parse_device(company_id: str, item: dict[str, Any]) -> records.Device:
    """A device of a company's device list, in our words."""
    problems = item.get("problems") or []
    if not isinstance(problems, list):
        raise ValueError("problems is not a list")
    status = str(item.get("status", ""))
    return records.Device(
        tenant_id=company_id,
        id=_text(item, "id"),
        name=str(item.get("name") or ""),
        kind=_word("device kind", KINDS, item.get("kind"), records.OTHER),
        # A status we cannot read is worth a look, so it counts as a warning.
        status=status if status in STATUSES else _unknown("status", status, "warning"),
        problems=frozenset(
            _word("device problem", PROBLEMS, word, "") for word in problems
        )
        - {""},
        last_seen=parse_time(item.get("last_seen")),
    )


def parse_license(
    company_id: str, item: dict[str, Any], device_ids: tuple[str, ...]
) -> records.LicenseUsage:
    """A license or subscription with the devices that use it.

    Only an active commercial one bills; a kind or state this agent does not know
    is read as trial or suspended, so that it bills nothing.
    """
    return records.LicenseUsage(
        tenant_id=company_id,
        license_id=_text(item, "id"),
        product=str(item.get("product") or ""),
        kind=_word("license kind", LICENSE_KINDS, item.get("kind"), "trial"),
        state=_word("license state", LICENSE_STATES, item.get("state"), "suspended"),
        seats=int(item.get("seats") or 0),
        expires=parse_time(item.get("expires")),
        device_ids=device_ids,
        mailboxes=int(item.get("mailboxes_used") or 0),
    )


def parse_event(company_id: str, item: dict[str, Any]) -> records.SecurityEvent:
    """An event of a company's event list."""
    moment = parse_time(item.get("time"))
    if moment is None:
        raise ValueError("an event has no time")
    severity = str(item.get("severity", ""))
    return records.SecurityEvent(
        tenant_id=company_id,
        id=_text(item, "id"),
        time=moment,
        severity=severity
        if severity in records.SEVERITIES
        else _unknown("severity", severity, "info"),
        type=str(item.get("type") or ""),
        device_id=str(item.get("device_id") or ""),
        device_name=str(item.get("device_name") or ""),
        description=str(item.get("description") or ""),
        problem_id=str(item.get("problem_id") or ""),
    )


def parse_office365_problem(
    company_id: str, item: dict[str, Any]
) -> records.Office365Problem:
    """A current Office 365 problem of a company."""
    kind = str(item.get("kind", ""))
    if kind not in records.O365_KINDS:
        # Its id still says when it clears, so the order it opened can close.
        kind = _unknown("Office 365 problem kind", kind, records.O365_LICENSE)
    return records.Office365Problem(
        tenant_id=company_id,
        id=_text(item, "id"),
        kind=kind,
        description=str(item.get("description") or ""),
        mailbox=str(item.get("mailbox") or ""),
        since=parse_time(item.get("since")),
    )


def _text(item: dict[str, Any], name: str) -> str:
    """A field that must be there and not blank (ids are strings or numbers)."""
    value = item[name]
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise ValueError(f"{name} is blank or not text")
    return str(value)


def _word(what: str, table: dict[str, str], word: Any, default: str) -> str:
    """``table[word]``, or ``default`` for a word this version does not know."""
    if isinstance(word, str) and word in table:
        return table[word]
    return _unknown(what, str(word), default)


def _unknown(what: str, word: str, default: str) -> str:
    """Report (once) a word from Business Hub we do not know; use ``default``."""
    if (what, word) not in _reported_words:
        _reported_words.add((what, word))
        logger.warning(
            "Business Hub sent the %s %r, which this agent does not know; it reads "
            "it as %r",
            what,
            word,
            default or "nothing",
        )
    return default
