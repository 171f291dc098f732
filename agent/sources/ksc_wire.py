"""KSC Open API values and errors: typed "params" values, PxgError, KSC's refusals.

KSC sends some values bare (strings, 32-bit integers, booleans) and the rest wrapped
as ``{"type": "long", "value": 5}``, ``{"type": "datetime", "value": "...Z"}`` or
``{"type": "params", "value": {...}}`` (specs/ksc-open-api.md, section 1). A failed
method answers HTTP 200 with ``{"PxgError": {...}}``; :func:`method_error` turns it
into one of the agent's typed errors, carrying KSC's own words.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

from agent.errors import (
    AuthError,
    PermissionDenied,
    ProtocolError,
    RecordNotFound,
    RemoteError,
    RequestRejected,
    ServerError,
)

SYSTEM = "KSC"
API = "/api/v1.0/"
#: The longest server text we put into a message of our own.
MAX_DETAIL = 300

# PxgError codes the client acts on (numbers from KSC's "Some error definitions").
NO_ACCESS = 1184  # STDE_NOACCESS
NOT_FOUND = 1186  # STDE_NOTFOUND: also an accessor or iterator that is gone
BAD_FORMAT = 1192  # STDE_BADFORMAT
NOT_PERMITTED = 1193  # STDE_NOTPERM
NO_SUCH_CALL = 1194  # GCR_NO_SUCH_CALL
LOGON_FAILED = 1453  # ERR_LOGON_IFAILED

_PLACEHOLDER = re.compile(r"%(\d+)")


class PxgError(Exception):
    """A ``PxgError`` reply: KSC's module, code and message for a failed call."""

    def __init__(self, code: int, module: str, message: str, subcode: int = 0):
        super().__init__(f"{module} {code}: {message}")
        self.code = code
        self.module = module
        self.message = message
        self.subcode = subcode

    @classmethod
    def of(cls, payload: Any) -> PxgError | None:
        """The PxgError a reply holds, or None when it holds none."""
        if not isinstance(payload, dict) or not isinstance(
            payload.get("PxgError"), dict
        ):
            return None
        error = payload["PxgError"]
        code = error.get("code")
        subcode = error.get("subcode")
        return cls(
            code if isinstance(code, int) else 0,
            str(error.get("module") or ""),
            _error_text(error),
            subcode if isinstance(subcode, int) else 0,
        )


def _error_text(error: dict[str, Any]) -> str:
    """KSC's message, with the %1..%N of its localisation data filled in."""
    text = str(error.get("message") or "")
    locdata = unwrap(error.get("locdata"))
    if isinstance(locdata, dict) and isinstance(locdata.get("format"), str):
        args = locdata.get("args")
        args = [str(arg) for arg in args] if isinstance(args, list) else []

        def fill(match: re.Match[str]) -> str:
            """The argument a %N stands for (left as is when there is none)."""
            index = int(match.group(1)) - 1
            return args[index] if 0 <= index < len(args) else match.group(0)

        text = _PLACEHOLDER.sub(fill, locdata["format"]) or text
    return " ".join(text.split())[:MAX_DETAIL]


class ResultSetGone(Exception):
    """An accessor or iterator the client held no longer exists on the server.

    Internal to the client: readers catch it and open the result set again.
    """


class VirtualServerLoginFailed(AuthError):
    """KSC refused the login to one virtual server; ``vserver`` names it."""

    def __init__(self, message: str, *, vserver: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.vserver = vserver


# Values.


def unwrap(value: Any) -> Any:
    """A reply value as Python: wrappers opened, datetimes parsed, longs as int."""
    if isinstance(value, dict) and set(value) == {"type", "value"}:
        kind, inner = value["type"], value["value"]
        if kind == "params":
            return unwrap(inner)
        if kind == "datetime":
            return parse_datetime(inner)
        if kind == "date":
            return dt.date.fromisoformat(inner) if inner else None
        if kind == "binary":
            return base64.b64decode(inner) if isinstance(inner, str) else b""
        if kind == "long" and isinstance(inner, str):
            return int(inner)
        return inner
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def parse_datetime(value: Any) -> dt.datetime | None:
    """A KSC datetime (``2024-05-01T12:00:00Z``; ``""`` is none) as aware UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        moment = dt.datetime.fromisoformat(value.strip())
    else:
        raise ValueError(f"not a datetime: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def params(values: dict[str, Any]) -> dict[str, Any]:
    """A params container inside an array, in the wrapped form KSC documents."""
    return {"type": "params", "value": values}


def order_by(*names: str) -> list[dict[str, Any]]:
    """``vecFieldsToOrder`` for ascending order on ``names``."""
    return [params({"Name": name, "Asc": True}) for name in names]


def rows_of(container: Any, key: str) -> list[dict[str, Any]]:
    """The records of ``{"KLCSP_ITERATOR_ARRAY": [...]}`` (or another array key)."""
    opened = unwrap(container)
    if not isinstance(opened, dict):
        raise ValueError(f"the reply holds no {key}")
    rows = opened.get(key, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{key} is not a list of records")
    return rows


def filter_text(value: str) -> str:
    """A string literal for KSC's search filter (inner quotes doubled)."""
    return '"' + value.replace('"', '""') + '"'


# Errors.


def method_error(pxg: PxgError, method: str, where: str, user: str) -> RemoteError:
    """The typed error a PxgError stands for, saying what to do about it."""
    said = f"KSC error {pxg.module} {pxg.code}: {pxg.message}"
    if pxg.code in (NO_ACCESS, NOT_PERMITTED):
        return PermissionDenied(
            f"KSC refused {method} to the account {user} on {where} ({said}): give "
            "the account the rights it needs in KSC (read access to the virtual "
            "server's devices, license keys and events), or use another account",
            system=SYSTEM,
            field="user",
            right=method,
        )
    if pxg.code == NO_SUCH_CALL:
        return ProtocolError(
            f"The KSC Administration Server does not know {method} ({said}): check "
            "that the address is the Administration Server's Open API (port 13299) "
            "and that KSC is version 13 or later",
            system=SYSTEM,
            field="address",
        )
    if pxg.code == NOT_FOUND:
        return RecordNotFound(
            f"KSC did not find what {method} asked for on {where} ({said})",
            system=SYSTEM,
        )
    if pxg.code == BAD_FORMAT:
        return RequestRejected(
            f"KSC could not use the agent's {method} request on {where} ({said}): "
            "send the agent's log to support",
            system=SYSTEM,
        )
    return ServerError(
        f"KSC failed on {method} on {where} ({said}); the agent tries again later",
        system=SYSTEM,
    )
