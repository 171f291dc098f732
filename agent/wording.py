"""How the agent words counts and times for people, alike in its pages, its log and
what it writes to Tigerpaw: "1 device", "3 devices"; "UTC+01:00"."""

from __future__ import annotations

import datetime as dt

#: Nouns the agent counts, with their plurals (others take an "s").
COUNTED_NOUNS = {
    "device": "devices",
    "server": "servers",
    "workstation": "workstations",
    "other device": "other devices",
    "mailbox": "mailboxes",
    "account": "accounts",
    "tenant": "tenants",
    "write": "writes",
    "company": "companies",
    "virtual server": "virtual servers",
    "service order": "service orders",
}


def plural(count: int, singular: str, many: str | None = None) -> str:
    """A count with its noun in the right number: "1 server", "2 servers"."""
    if count == 1:
        return f"{count} {singular}"
    return f"{count} {many or COUNTED_NOUNS.get(singular, singular + 's')}"


def utc_offset(moment: dt.datetime) -> str:
    """The offset of an aware time from UTC, as "UTC+01:00" (or "UTC")."""
    offset = moment.utcoffset() or dt.timedelta(0)
    if not offset:
        return "UTC"
    sign = "+" if offset > dt.timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def zone_label(moment: dt.datetime) -> str:
    """The zone of an aware local time with its name where it has one: "UTC",
    "CET (UTC+01:00)"."""
    utc = utc_offset(moment)
    name = (moment.tzname() or "").strip()
    # Some zones have no abbreviation and give their offset ("+03") instead.
    if not name or name[0] in "+-" or name in ("UTC", utc):
        return utc
    return f"{name} ({utc})"
