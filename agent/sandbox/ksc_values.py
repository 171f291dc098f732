"""KSC's typed JSON values ("params"): reading both forms, writing the wrapped one.

A KSC client may send a value bare (``5``, ``{"Name": "x"}``) or wrapped
(``{"type": "long", "value": 5}``, ``{"type": "params", "value": {...}}``); the
emulator reads both. Replies follow what KSC sends: top-level arguments and return
values bare where they can be, and every value inside a params container or an array
wrapped when its type is not a plain JSON one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

WRAPPER_TYPES = frozenset(
    {"long", "datetime", "date", "binary", "float", "double", "params"}
)
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class BadValue(ValueError):
    """A typed value cannot be read."""


class Long(int):
    """An integer KSC types as ``paramLong`` (64-bit), wrapped inside containers."""


def format_datetime(moment: dt.datetime) -> str:
    """UTC, whole seconds and a ``Z``: the only form KlAkOAPI's parser accepts."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime(DATETIME_FORMAT)


def parse_datetime(text: str) -> dt.datetime | None:
    """A datetime sent by a client; ``""`` is KSC's empty datetime."""
    if text == "":
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise BadValue(f"'{text}' is not a datetime like 2024-05-01T12:00:00Z") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def is_wrapper(value: Any) -> bool:
    """Whether ``value`` is a ``{"type": ..., "value": ...}`` wrapper."""
    return (
        isinstance(value, dict)
        and set(value) == {"type", "value"}
        and value["type"] in WRAPPER_TYPES
    )


def decode(value: Any) -> Any:
    """A client's value as Python: wrappers opened, containers read recursively."""
    if is_wrapper(value):
        return _decode_wrapper(value["type"], value["value"])
    if isinstance(value, dict):
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


def _decode_wrapper(kind: str, inner: Any) -> Any:
    """The Python value inside one typed wrapper."""
    if kind == "long":
        return Long(_integer(inner, kind))
    if kind in ("float", "double"):
        if isinstance(inner, bool) or not isinstance(inner, int | float):
            raise BadValue(f"A {kind} value must be a number, not {inner!r}")
        return float(inner)
    if kind == "datetime":
        return parse_datetime(_text(inner, kind))
    if kind == "date":
        text = _text(inner, kind)
        try:
            return dt.date.fromisoformat(text) if text else None
        except ValueError as err:
            raise BadValue(f"'{text}' is not a date like 2024-05-01") from err
    if kind == "binary":
        try:
            return base64.b64decode(_text(inner, kind), validate=True)
        except binascii.Error as err:
            raise BadValue("A binary value must be base64") from err
    if not isinstance(inner, dict):
        raise BadValue("A params value must be a JSON object")
    return decode(inner)


def _integer(inner: Any, kind: str) -> int:
    """An integer from a long wrapper's value."""
    if isinstance(inner, bool):
        raise BadValue(f"A {kind} value must be an integer, not {inner!r}")
    if isinstance(inner, int):
        return inner
    if isinstance(inner, str) and inner.strip().lstrip("-").isdigit():
        return int(inner)
    raise BadValue(f"A {kind} value must be an integer, not {inner!r}")


def _text(inner: Any, kind: str) -> str:
    """A string from a wrapper's value."""
    if not isinstance(inner, str):
        raise BadValue(f"A {kind} value must be a string, not {inner!r}")
    return inner


def encode(value: Any) -> Any:
    """A value inside a params container or array, in KSC's wrapped form."""
    if isinstance(value, Long):
        return {"type": "long", "value": int(value)}
    if isinstance(value, dt.datetime):
        return {"type": "datetime", "value": format_datetime(value)}
    if isinstance(value, dt.date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, bytes):
        return {"type": "binary", "value": base64.b64encode(value).decode("ascii")}
    if isinstance(value, float):
        return {"type": "double", "value": value}
    if isinstance(value, dict):
        return {"type": "params", "value": encode_params(value)}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    return value


def encode_params(values: dict[str, Any]) -> dict[str, Any]:
    """The inside of a params container; absent (None) values are left out."""
    return {key: encode(item) for key, item in values.items() if item is not None}


def encode_top(value: Any) -> Any:
    """A return value or output parameter: longs and params bare, the rest wrapped."""
    if isinstance(value, Long):
        return int(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return encode_params(value)
    return encode(value)
