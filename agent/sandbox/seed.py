"""Deterministic seed data: the MSP's client companies, their devices, keys and events.

The same ``seed`` always gives the same companies, devices, keys and events (times are
relative to the moment of seeding); Business Hub's Office 365 companies also start with
an unprotected mailbox (see :mod:`agent.sandbox.office365`), and some companies hold a
cancelled subscription (see :func:`make_fleet`). The KSC emulator shows a
:class:`Fleet` as virtual servers, the Business Hub emulator as companies; the
Tigerpaw emulator opens an account for every company name of
:func:`tigerpaw_account_names`. ``POST /_sandbox/events`` changes a fleet through
:func:`apply_changes`.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

from agent.sandbox import changes, office365
from agent.sandbox.fleet import (
    ACTIVE,
    CANCELLED,
    CRITICAL_PROBLEMS,
    DATABASES_OUTDATED,
    ENDPOINT_PRODUCT,
    EVENT_TEMPLATES,
    EXPIRED,
    LICENSE_STATES,
    MOBILE,
    NOT_PROTECTED,
    NOT_SEEN,
    OFFICE365_PRODUCT,
    SERVER,
    SERVER_PRODUCT,
    SUSPENDED,
    THREATS_NOT_CURED,
    WORKSTATION,
    Device,
    Event,
    Fleet,
    License,
    Tenant,
    _utcnow,
)

#: The records come from :mod:`agent.sandbox.fleet`; callers find them here too.
__all__ = [
    "ACTIVE",
    "CANCELLED",
    "CONSOLES",
    "CRITICAL_PROBLEMS",
    "DATABASES_OUTDATED",
    "Device",
    "ENDPOINT_PRODUCT",
    "EVENT_TEMPLATES",
    "EXPIRED",
    "Event",
    "FIRST_WORDS",
    "Fleet",
    "LICENSE_STATES",
    "License",
    "MOBILE",
    "NOT_PROTECTED",
    "NOT_SEEN",
    "OFFICE365_PRODUCT",
    "SECOND_WORDS",
    "SERVER",
    "SERVER_PRODUCT",
    "SUSPENDED",
    "THREATS_NOT_CURED",
    "Tenant",
    "WORKSTATION",
    "apply_changes",
    "client_names",
    "make_fleet",
    "name_offset",
    "tenant_count",
    "tigerpaw_account_names",
]

FIRST_WORDS = (
    "Contoso",
    "Northwind",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Adventure",
    "Alpine",
    "Blue Yonder",
    "Coho",
    "Wide World",
    "Woodgrove",
    "Proseware",
    "Lucerne",
    "Margie's",
    "Trey",
    "Humongous",
    "Fourth Coffee",
    "Graphic",
    "Southridge",
    "Wingtip",
    "City Power",
    "Consolidated",
    "Datum",
    "Relecloud",
    "Bellows",
)
SECOND_WORDS = (
    "Dental",
    "Traders",
    "Legal",
    "Logistics",
    "Clinic",
    "Accounting",
    "Builders",
    "Bakery",
    "Insurance",
    "Architects",
    "Motors",
    "Realty",
    "Pharmacy",
    "Studio",
    "Veterinary",
    "Florists",
    "Engineering",
    "Hotels",
    "Schools",
    "Farms",
)


def client_names(count: int, offset: int = 0) -> list[str]:
    """``count`` distinct company names, the same for the same arguments."""
    names = []
    pairs = len(FIRST_WORDS) * len(SECOND_WORDS)
    for index in range(offset, offset + count):
        first = FIRST_WORDS[index % len(FIRST_WORDS)]
        second = SECOND_WORDS[(index // len(FIRST_WORDS)) % len(SECOND_WORDS)]
        round_number = index // pairs
        suffix = f" {round_number + 1}" if round_number else ""
        names.append(f"{first} {second}{suffix}")
    return names


#: The consoles in the order their companies take names from :func:`client_names`, so
#: that the KSC server and each Business Hub server manage different companies.
CONSOLES = ("ksc", "production", "beta", "test")


def tenant_count(console: str, tenants: int) -> int:
    """How many tenants a console holds: beta and test Business Hub hold a few."""
    return tenants if console in ("ksc", "production") else min(tenants, 4)


def name_offset(console: str, tenants: int) -> int:
    """Where the names of ``console``'s companies start in :func:`client_names`."""
    offset = 0
    for other in CONSOLES:
        if other == console:
            return offset
        offset += tenant_count(other, tenants)
    raise ValueError(f"Unknown console '{console}'")


def tigerpaw_account_names(tenants: int) -> list[str]:
    """Tigerpaw account names: every company of every console, then a few more."""
    total = sum(tenant_count(console, tenants) for console in CONSOLES)
    return client_names(total + max(3, tenants // 4))


def make_fleet(
    console: str, tenants: int, seed: int = 1, devices: int | None = None
) -> Fleet:
    """Seed the fleet of ``console`` (ksc, production, beta or test).

    ``devices`` fixes the number of devices per tenant; by default it varies from 6
    to 30, and tenants 2, 6, 10, ... also hold a cancelled subscription with a few
    workstations of their own on it (see :func:`_seed_cancelled`).
    """
    rng = random.Random(f"{console}:{seed}")
    now = _utcnow()
    count = tenant_count(console, tenants)
    names = client_names(count, name_offset(console, tenants))
    fleet = Fleet(tenants=[], next_event_id=1, rng=rng, console=console)
    for number, name in enumerate(names, start=1):
        fleet.tenants.append(_make_tenant(fleet, rng, now, number, name, devices))
    return fleet


def _make_tenant(
    fleet: Fleet,
    rng: random.Random,
    now: dt.datetime,
    number: int,
    name: str,
    device_count: int | None,
) -> Tenant:
    count = device_count if device_count is not None else rng.randint(6, 30)
    licenses = _make_licenses(rng, now, count, number)
    tenant = Tenant(
        number=number,
        uid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        name=name,
        devices=[],
        licenses=licenses,
        events=[],
        workspaces=["kes_cloud", "office365"] if number % 3 == 0 else ["kes_cloud"],
        created=now - dt.timedelta(days=400 - number % 300),
    )
    tenant.devices = [
        _make_device(rng, now, index, count, licenses) for index in range(count)
    ]
    _seed_events(fleet, tenant, now)
    if device_count is None and number % 4 == 2:
        _seed_cancelled(tenant, now)
    return tenant


def _seed_cancelled(tenant: Tenant, now: dt.datetime) -> None:
    """Add a cancelled endpoint subscription and the workstations still on it.

    Its own random generator (from the tenant's uid) leaves the fleet's draws, and
    so every other seeded value, as they were before cancelled keys existed; the
    workstations come after the seeded events, so no seeded event names them.
    """
    rng = random.Random(f"cancelled:{tenant.uid}")
    count = rng.randint(2, 4)
    lic = License(
        _serial(rng),
        ENDPOINT_PRODUCT,
        "commercial",
        CANCELLED,
        count + 2,
        now + dt.timedelta(days=rng.randint(30, 200)),
        1103,
    )
    tenant.licenses.append(lic)
    first = len(tenant.devices)
    for index in range(first, first + count):
        tenant.devices.append(
            Device(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                name=f"PC-{index + 1:03d}",
                kind=WORKSTATION,
                os_name="Windows 11 Pro",
                ip=f"10.{index // 250 % 250}.{index % 250}.{rng.randint(2, 250)}",
                last_seen=now - dt.timedelta(minutes=rng.randint(1, 600)),
                license_serial=lic.serial,
                bases_time=now - dt.timedelta(hours=rng.randint(1, 20)),
            )
        )


def _serial(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(72):018X}"
    return f"{digits[:4]}-{digits[4:10]}-{digits[10:]}"


def _make_licenses(
    rng: random.Random, now: dt.datetime, devices: int, number: int
) -> list[License]:
    day = dt.timedelta(days=1)
    licenses = [
        License(
            _serial(rng),
            ENDPOINT_PRODUCT,
            "commercial",
            "active",
            devices + 5,
            now + 300 * day,
            1103,
        ),
        License(
            _serial(rng),
            ENDPOINT_PRODUCT,
            "commercial",
            "expired",
            10,
            now - 30 * day,
            1103,
        ),
        License(
            _serial(rng), ENDPOINT_PRODUCT, "trial", "active", 5, now + 20 * day, 1103
        ),
        License(
            _serial(rng),
            SERVER_PRODUCT,
            "commercial",
            "active",
            4,
            now + 200 * day,
            1949,
        ),
    ]
    if number % 5 == 0:
        licenses.append(
            License(
                _serial(rng),
                SERVER_PRODUCT,
                "commercial",
                "suspended",
                2,
                now + 100 * day,
                1949,
            )
        )
    if number % 3 == 0:
        licenses.append(
            License(
                _serial(rng),
                OFFICE365_PRODUCT,
                "commercial",
                "active",
                50,
                now + 250 * day,
                2301,
                mailboxes_used=rng.randint(5, 40),
            )
        )
    return licenses


def _make_device(
    rng: random.Random,
    now: dt.datetime,
    index: int,
    count: int,
    licenses: list[License],
) -> Device:
    endpoint, expired, trial, server_key = licenses[:4]
    suspended = next((lic for lic in licenses if lic.state == SUSPENDED), None)

    roll = rng.random()
    if index % 10 == 9:
        kind, name = SERVER, f"SRV-{index + 1:03d}"
        serial = server_key.serial if roll < 0.7 else endpoint.serial
        if suspended is not None and roll > 0.9:
            serial = suspended.serial
    elif index % 17 == 16:
        kind, name, serial = MOBILE, f"MOB-{index + 1:03d}", endpoint.serial
    else:
        kind, name = WORKSTATION, f"PC-{index + 1:03d}"
        serial = endpoint.serial
        if roll < 0.08:
            serial = expired.serial
        elif roll < 0.14:
            serial = trial.serial
        elif roll > 0.97:
            serial = None

    device = Device(
        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        name=name,
        kind=kind,
        os_name="Windows Server 2022"
        if kind == SERVER
        else ("Android 14" if kind == MOBILE else "Windows 11 Pro"),
        ip=f"10.{index // 250 % 250}.{index % 250}.{rng.randint(2, 250)}",
        last_seen=now - dt.timedelta(minutes=rng.randint(1, 600)),
        license_serial=serial,
        bases_time=now - dt.timedelta(hours=rng.randint(1, 20)),
    )
    _give_problems(rng, now, device)
    return device


def _give_problems(rng: random.Random, now: dt.datetime, device: Device) -> None:
    roll = rng.random()
    if roll < 0.08:
        device.problems.add(DATABASES_OUTDATED)
        device.bases_time = now - dt.timedelta(days=rng.randint(8, 30))
    elif roll < 0.12:
        device.problems.add(NOT_PROTECTED)
    elif roll < 0.16:
        device.problems.add(THREATS_NOT_CURED)
        device.virus_count = rng.randint(1, 4)
        device.uncured_count = device.virus_count
    elif roll < 0.19:
        device.problems.add(NOT_SEEN)
        device.last_seen = now - dt.timedelta(days=rng.randint(8, 60))


def _seed_events(fleet: Fleet, tenant: Tenant, now: dt.datetime) -> None:
    """Two events of each severity, one from the last hours and one days old; and, in
    Business Hub, an unprotected mailbox of each Office 365 company.

    Ids grow with time, as a console's event database numbers them.
    """
    moments = []
    for severity in ("critical", "functional_failure", "warning", "info"):
        moments.append(
            (now - dt.timedelta(minutes=fleet.rng.randint(5, 600)), severity)
        )
        moments.append((now - dt.timedelta(days=fleet.rng.randint(2, 6)), severity))
    ordered = [(when, 0, severity) for when, severity in moments]
    if fleet.console != "ksc":
        mailboxes = office365.seeded_mailboxes(tenant, now)
        ordered += [(when, 1, mailbox) for when, mailbox in mailboxes]
    for when, origin, what in sorted(ordered):
        if origin:
            office365.raise_problem(
                fleet, tenant, office365.MAILBOX, mailbox=what, when=when
            )
        else:
            fleet.raise_event(tenant, what, when=when)


def apply_changes(fleet: Fleet, payload: dict) -> dict:
    """Apply new events, device changes and Office 365 problems to a fleet; return
    what was done (see :func:`agent.sandbox.changes.apply_changes`)."""
    return changes.apply_changes(fleet, payload)
