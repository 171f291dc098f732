"""The sandbox's records of what a console manages: companies (tenants), their
devices, keys and events, and the fleet of one console that holds them. The records
only; :mod:`agent.sandbox.seed` makes a deterministic fleet of them."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from agent.sandbox.office365 import Office365Problem

#: Problems a device can have, in Business Hub's words.
NOT_PROTECTED = "not_protected"
DATABASES_OUTDATED = "databases_outdated"
THREATS_NOT_CURED = "threats_not_cured"
NOT_SEEN = "not_seen"
CRITICAL_PROBLEMS = frozenset({NOT_PROTECTED, THREATS_NOT_CURED})

WORKSTATION, SERVER, MOBILE = "workstation", "server", "mobile"

#: The states of a key or subscription; only active ones bill.
ACTIVE, EXPIRED, SUSPENDED, CANCELLED = "active", "expired", "suspended", "cancelled"
LICENSE_STATES = (ACTIVE, EXPIRED, SUSPENDED, CANCELLED)

ENDPOINT_PRODUCT = "Kaspersky Endpoint Security for Business Select"
SERVER_PRODUCT = "Kaspersky Security for Windows Server"
OFFICE365_PRODUCT = "Kaspersky Security for Microsoft Office 365"

#: (severity, event type, description, threat) templates for events.
EVENT_TEMPLATES = (
    ("critical", "GNRL_EV_VIRUS_FOUND", "Virus found", "Trojan.Win32.Agent.xyz"),
    (
        "critical",
        "GNRL_EV_OBJECT_NOTCURED",
        "Object not disinfected",
        "HEUR:Trojan.Script",
    ),
    (
        "critical",
        "GNRL_EV_ATTACK_DETECTED",
        "Network attack detected",
        "Bruteforce.RDP",
    ),
    ("functional_failure", "KLPRCI_TaskState", "Update task failed", None),
    ("functional_failure", "GNRL_EV_LICENSE_EXPIRED", "License expired", None),
    (
        "warning",
        "GNRL_EV_SUSPICIOUS_OBJECT_FOUND",
        "Suspicious object found",
        "PDM:Exploit",
    ),
    (
        "warning",
        "GNRL_EV_OBJECT_QUARANTINED",
        "Object quarantined",
        "not-a-virus:RiskTool",
    ),
    ("info", "GNRL_EV_OBJECT_CURED", "Object disinfected", "EICAR-Test-File"),
)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(slots=True)
class Device:
    """A managed computer or phone; ``id`` never changes for the same device."""

    id: str
    name: str
    kind: str
    os_name: str
    ip: str
    last_seen: dt.datetime
    license_serial: str | None
    problems: set[str] = field(default_factory=set)
    virus_count: int = 0
    uncured_count: int = 0
    bases_time: dt.datetime | None = None
    #: KSC: the administration group below the virtual server's managed-devices
    #: group that holds the device ("" for that group itself).
    group: str = ""

    @property
    def status(self) -> str:
        """ok, warning or critical, from the problems the device has."""
        if self.problems & CRITICAL_PROBLEMS:
            return "critical"
        return "warning" if self.problems else "ok"


@dataclass(slots=True)
class License:
    """A license key (KSC) or subscription (Business Hub)."""

    serial: str
    product: str
    kind: str  # commercial or trial
    state: str  # one of LICENSE_STATES
    seats: int
    expires: dt.datetime
    app_id: int
    mailboxes_used: int = 0

    @property
    def billable(self) -> bool:
        """Whether devices using it count for billing: active, commercial, unexpired."""
        return (
            self.kind == "commercial"
            and self.state == "active"
            and self.expires > _utcnow()
        )


@dataclass(slots=True)
class Event:
    """A security event raised on a device."""

    id: int
    time: dt.datetime
    severity: str  # critical, functional_failure, warning or info
    type: str
    device_id: str
    device_name: str
    description: str
    threat: str | None = None
    #: The Office 365 problem the event raised; None for a device's event.
    problem_id: str | None = None


@dataclass
class Tenant:
    """A client company: a KSC virtual server or a Business Hub company."""

    number: int
    uid: str
    name: str
    devices: list[Device]
    licenses: list[License]
    events: list[Event]
    workspaces: list[str]
    created: dt.datetime
    office365_problems: list[Office365Problem] = field(default_factory=list)
    #: KSC: administration groups made below the managed-devices group, in order.
    groups: list[str] = field(default_factory=list)

    def device(self, device_id: str) -> Device | None:
        """The device with that id, if the tenant has it."""
        return next((d for d in self.devices if d.id == device_id), None)

    def license(self, serial: str) -> License | None:
        """The license with that serial, if the tenant has it."""
        return next((lic for lic in self.licenses if lic.serial == serial), None)

    def office365_subscription(self) -> License | None:
        """The company's Office 365 protection subscription, if it has one."""
        return next(
            (lic for lic in self.licenses if lic.product == OFFICE365_PRODUCT), None
        )

    def devices_using(self, serial: str) -> list[Device]:
        """The devices whose installed key or subscription is ``serial``."""
        return [d for d in self.devices if d.license_serial == serial]

    def billable_usage(self) -> dict[tuple[str, str], int]:
        """Devices on an active commercial license, per (product, device kind).

        Office 365 protection counts protected mailboxes under the kind "mailbox".
        """
        usage: dict[tuple[str, str], int] = {}
        billable = {lic.serial: lic for lic in self.licenses if lic.billable}
        for device in self.devices:
            lic = billable.get(device.license_serial or "")
            if lic is not None:
                key = (lic.product, device.kind)
                usage[key] = usage.get(key, 0) + 1
        for lic in billable.values():
            if lic.mailboxes_used:
                usage[(lic.product, "mailbox")] = lic.mailboxes_used
        return usage


@dataclass
class Fleet:
    """Everything one console (a KSC server, one Business Hub server) manages."""

    tenants: list[Tenant]
    next_event_id: int
    rng: random.Random
    #: ksc, production, beta or test: only Business Hub fleets have Office 365 data.
    console: str = ""
    next_problem_id: int = 1

    def tenant(self, key: str | int) -> Tenant | None:
        """A tenant by number, uid or name."""
        for tenant in self.tenants:
            if key in (tenant.number, tenant.uid, tenant.name):
                return tenant
        return None

    def raise_event(
        self,
        tenant: Tenant,
        severity: str,
        *,
        device: Device | None = None,
        when: dt.datetime | None = None,
    ) -> Event:
        """Add a new event of ``severity`` on a device of the tenant, and return it."""
        templates = [t for t in EVENT_TEMPLATES if t[0] == severity]
        if not templates:
            raise ValueError(f"Unknown event severity '{severity}'")
        _, event_type, description, threat = self.rng.choice(templates)
        device = device or self.rng.choice(tenant.devices)
        return self.record_event(
            tenant,
            severity,
            event_type,
            description,
            device=device,
            when=when,
            threat=threat,
        )

    def record_event(
        self,
        tenant: Tenant,
        severity: str,
        event_type: str,
        description: str,
        *,
        device: Device | None = None,
        when: dt.datetime | None = None,
        threat: str | None = None,
        problem_id: str | None = None,
    ) -> Event:
        """Add an event with the next id (on no device when ``device`` is None)."""
        event = Event(
            id=self.next_event_id,
            time=when or _utcnow(),
            severity=severity,
            type=event_type,
            device_id=device.id if device else "",
            device_name=device.name if device else "",
            description=description,
            threat=threat,
            problem_id=problem_id,
        )
        self.next_event_id += 1
        tenant.events.append(event)
        return event
