"""The records both consoles yield, so sync never cares whether KSC or KBH sent them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

KSC, KBH = "ksc", "kbh"

#: Device problems, in the words the sync and the page use.
NOT_PROTECTED = "not_protected"
DATABASES_OUTDATED = "databases_outdated"
THREATS_NOT_CURED = "threats_not_cured"
NOT_SEEN = "not_seen"

#: How the page and service orders describe each problem, as consoles word them.
PROBLEM_DESCRIPTIONS = {
    NOT_PROTECTED: "Protection is not running",
    DATABASES_OUTDATED: "Databases are out of date",
    THREATS_NOT_CURED: "Threats were not cured",
    NOT_SEEN: "Device has not been seen for a long time",
}

#: Device classes, as "Bill devices by category" splits them.
WORKSTATION, SERVER, MOBILE, OTHER = "workstation", "server", "mobile", "other"

#: Event severities, most severe first.
SEVERITIES = ("critical", "functional_failure", "warning", "info")

#: Kinds of Office 365 problem (Business Hub only): the subscription, or a mailbox.
O365_LICENSE, O365_MAILBOX = "license", "mailbox"
O365_KINDS = (O365_LICENSE, O365_MAILBOX)


@dataclass(frozen=True)
class Tenant:
    """A KSC virtual server or a Business Hub company."""

    source: str
    id: str
    name: str
    workspaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Device:
    """A managed device and what is wrong with it; ``id`` is stable."""

    tenant_id: str
    id: str
    name: str
    kind: str
    status: str  # ok, warning or critical
    problems: frozenset[str] = frozenset()
    last_seen: dt.datetime | None = None
    os_name: str = ""
    threats: int = 0


@dataclass(frozen=True)
class LicenseUsage:
    """One license key or subscription and the devices (or mailboxes) using it."""

    tenant_id: str
    license_id: str
    product: str
    kind: str  # commercial or trial
    state: str  # active, expired or suspended
    seats: int
    expires: dt.datetime | None
    device_ids: tuple[str, ...] = ()
    mailboxes: int = 0

    def billable(self, now: dt.datetime | None = None) -> bool:
        """Whether it counts for billing: commercial, active and not expired."""
        now = now or dt.datetime.now(dt.UTC)
        unexpired = self.expires is None or self.expires > now
        return self.kind == "commercial" and self.state == "active" and unexpired


@dataclass(frozen=True)
class SecurityEvent:
    """An event a console raised on a device."""

    tenant_id: str
    id: str
    time: dt.datetime
    severity: str
    type: str
    device_id: str
    device_name: str
    description: str
    threat: str | None = None
    #: The Office 365 problem the event raised (Business Hub only); "" for others.
    problem_id: str = ""


@dataclass(frozen=True)
class Office365Problem:
    """An Office 365 problem Business Hub lists as current for a company."""

    tenant_id: str
    id: str
    kind: str  # license or mailbox
    description: str
    mailbox: str = ""
    since: dt.datetime | None = None


@dataclass(frozen=True)
class EventPage:
    """Events read after a cursor, and the cursor to read from next time."""

    events: list[SecurityEvent] = field(default_factory=list)
    cursor: str = ""
