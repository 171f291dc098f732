"""Sandbox changes that billing depends on: renamed and moved devices, cancelled keys
and subscriptions, read back through the agent's own KSC and Business Hub clients.

Each test starts its own emulators, changes them through ``POST /_sandbox/events``
and replays the same changes on a copy of the fleet made with the same seed; the
agent's clients and its license counter must then see what the copy says.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from agent.sandbox import ksc_const, office365, seed
from agent.sandbox.certs import TlsIdentity, make_certificate
from agent.sandbox.changes import ChangeError
from agent.sandbox.kbh import KbhEmulator
from agent.sandbox.ksc import KscEmulator
from agent.sources.kbh import KbhClient
from agent.sources.ksc import KscClient
from agent.sync.licenses import WORKSTATIONS, LicenseCounter, UsageCounts
from tests.integration.emulator_support import signed_in_client
from tests.integration.ksc_client_support import make_client
from tests.integration.test_sandbox_ksc import Wire, unwrap

TENANTS, SEED = 5, 11
INTEGRATION_ID = "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
ENDPOINT = seed.ENDPOINT_PRODUCT


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> TlsIdentity:
    """One self-signed certificate for the emulators of the module."""
    return make_certificate(tmp_path_factory.mktemp("changes"), "klserver")


@pytest.fixture
def ksc(cert: TlsIdentity) -> Iterator[KscEmulator]:
    """A KSC emulator with the default (varying) device counts."""
    server = KscEmulator(seed.make_fleet("ksc", TENANTS, SEED), tls=cert).start()
    yield server
    server.stop()


@pytest.fixture
def ksc_client(ksc: KscEmulator, cert: TlsIdentity) -> Iterator[KscClient]:
    """The agent's KSC client, logged into the emulator's main server."""
    with make_client(ksc, certificate=cert.cert_path, page_size=5) as client:
        client.check()
        yield client


@pytest.fixture
def kbh(cert: TlsIdentity) -> Iterator[KbhEmulator]:
    """A production Business Hub emulator with the default device counts."""
    fleet = seed.make_fleet("production", TENANTS, SEED)
    server = KbhEmulator(fleet, environment="production", tls=cert).start()
    yield server
    server.stop()


@pytest.fixture
def kbh_client(kbh: KbhEmulator, cert: TlsIdentity) -> Iterator[KbhClient]:
    """The agent's Business Hub client, signed in to the emulator."""
    with signed_in_client(kbh, cert, INTEGRATION_ID) as client:
        yield client


def post(
    emulator: KscEmulator | KbhEmulator, cert: TlsIdentity, payload: Any
) -> requests.Response:
    """``POST /_sandbox/events`` over HTTPS."""
    with requests.Session() as http:
        http.trust_env = False
        return http.post(
            f"{emulator.url}/_sandbox/events",
            json=payload,
            verify=str(cert.cert_path),
            timeout=5,
        )


def replay(
    emulator: KscEmulator | KbhEmulator,
    cert: TlsIdentity,
    fleet: seed.Fleet,
    payload: dict[str, Any],
) -> dict[str, Any]:
    """Send changes to an emulator and to a copy of its fleet; both must agree."""
    reply = post(emulator, cert, payload)
    assert reply.status_code == 200, reply.text
    assert seed.apply_changes(fleet, payload) == reply.json()
    return dict(reply.json())


def counted(client: KscClient | KbhClient, tenant: seed.Tenant) -> UsageCounts:
    """What the agent's counter bills for a tenant, read through its client."""
    kinds = {device.id: device.kind for device in client.devices(tenant.uid)}
    usage = client.license_usage(tenant.uid)
    return LicenseCounter(dt.datetime.now(dt.UTC)).count(usage, kinds)


def billed_workstation(tenant: seed.Tenant) -> seed.Device:
    """A workstation of the tenant on its active commercial endpoint key."""
    key = next(
        lic for lic in tenant.licenses if lic.product == ENDPOINT and lic.billable
    )
    return next(
        d for d in tenant.devices_using(key.serial) if d.kind == seed.WORKSTATION
    )


def endpoint_devices(usage: UsageCounts) -> int:
    """How many devices the counter bills for the endpoint product, any category."""
    return sum(n for (product, _), n in usage.counts.items() if product == ENDPOINT)


def cancelled_key(tenant: seed.Tenant) -> seed.License:
    """The tenant's seeded cancelled subscription."""
    [lic] = [lic for lic in tenant.licenses if lic.state == seed.CANCELLED]
    return lic


def host_row(wire: Wire, device_id: str, fields: list[str]) -> dict[str, Any]:
    """One host's attributes, found by its id through HostGroup.FindHosts."""
    body = {
        "wstrFilter": f'(KLHST_WKS_HOSTNAME = "{device_id}")',
        "vecFieldsToReturn": fields,
        "vecFieldsToOrder": [],
        "pParams": {},
        "lMaxLifeTime": 60,
    }
    found = wire.ok("HostGroup.FindHosts", body)
    assert found["PxgRetVal"] == 1
    chunk = {"strAccessor": found["strAccessor"], "nStart": 0, "nCount": 5}
    [row] = wire.ok("ChunkAccessor.GetItemsChunk", chunk)["pChunk"][
        "KLCSP_ITERATOR_ARRAY"
    ]
    return dict(unwrap(row))


def key_rows(wire: Wire, fields: list[str]) -> dict[str, dict[str, Any]]:
    """Every key of the logged-in virtual server, by serial."""
    body = {"pFields": fields, "pFieldsToOrder": [], "pOptions": {}, "lTimeoutSec": 60}
    opened = wire.ok("LicenseKeys.EnumKeys", body)
    step = {"szwIterator": opened["wstrIterator"], "nCount": 100}
    reply = wire.ok("GroupSyncIterator.GetNextItems", step)
    assert reply["bEOF"] is True
    rows = [unwrap(item) for item in reply["pData"]["KLCSP_ITERATOR_ARRAY"]]
    return {row["KLLIC_SERIAL"]: row for row in rows}


# The seed.


def test_seeded_cancelled_keys_are_extra_records_only() -> None:
    """Tenants 2, 6, ... of a varying fleet get a cancelled endpoint subscription with
    workstations of their own; no seeded event names them; fixed fleets get none."""
    for console in seed.CONSOLES:
        fleet = seed.make_fleet(console, 7, SEED)
        again = seed.make_fleet(console, 7, SEED)
        for tenant, same in zip(fleet.tenants, again.tenants, strict=True):
            assert [d.id for d in tenant.devices] == [d.id for d in same.devices]
            assert [lic.serial for lic in tenant.licenses] == [
                lic.serial for lic in same.licenses
            ]
            states = [lic.state for lic in tenant.licenses]
            if tenant.number % 4 != 2:
                assert seed.CANCELLED not in states, tenant.name
                continue
            lic = cancelled_key(tenant)
            assert tenant.licenses[-1] is lic
            assert (lic.product, lic.kind) == (ENDPOINT, "commercial")
            assert lic.expires > dt.datetime.now(dt.UTC) and not lic.billable
            users = tenant.devices_using(lic.serial)
            assert 2 <= len(users) <= 4
            assert tenant.devices[-len(users) :] == users
            assert all(d.kind == seed.WORKSTATION and not d.problems for d in users)
            assert not {e.device_id for e in tenant.events} & {d.id for d in users}
            assert len({d.name for d in tenant.devices}) == len(tenant.devices)

        fixed = seed.make_fleet(console, 7, SEED, devices=9)
        for tenant in fixed.tenants:
            assert len(tenant.devices) == 9
            assert seed.CANCELLED not in {lic.state for lic in tenant.licenses}


# KSC.


def test_ksc_rename_and_group_move_keep_the_host_and_its_count(
    ksc: KscEmulator, ksc_client: KscClient, cert: TlsIdentity
) -> None:
    """A renamed host, then one moved to new groups, keeps its id and key; the agent
    counts it once, under that id, as before."""
    fleet = seed.make_fleet("ksc", TENANTS, SEED)
    tenant = fleet.tenants[2]
    device = billed_workstation(tenant)
    old_name, serial = device.name, device.license_serial
    before = counted(ksc_client, tenant)

    done = replay(
        ksc,
        cert,
        fleet,
        {
            "rename_devices": [
                {"tenant": tenant.name, "device": device.id, "name": "FRONT-DESK"}
            ],
            "move_devices": [
                {"tenant": tenant.uid, "device": "FRONT-DESK", "group": "Reception"},
                {"tenant": tenant.number, "device": device.id, "group": "Lab"},
            ],
        },
    )

    assert done["renamed"] == [
        {
            "tenant": tenant.name,
            "device": device.id,
            "old": old_name,
            "name": "FRONT-DESK",
        }
    ]
    first, second = done["moved"]
    assert (first["group"], second["group"]) == ("Reception", "Lab")
    assert first["device"] == second["device"] == device.id
    assert first["tenant"] == first["from"] == tenant.name
    assert len({first["group_id"], second["group_id"]}) == 2
    assert second["license"] == serial
    assert tenant.groups == ["Reception", "Lab"]

    listed = {d.id: d for d in ksc_client.devices(tenant.uid)}
    assert listed[device.id].name == "FRONT-DESK"
    assert [d.name for d in listed.values()].count("FRONT-DESK") == 1
    assert counted(ksc_client, tenant) == before

    wire = Wire(ksc, cert)
    try:
        assert wire.login(tenant.name).status_code == 200
        row = host_row(wire, device.id, ["KLHST_WKS_DN", "KLHST_WKS_GROUPID"])
        assert row == {
            "KLHST_WKS_DN": "FRONT-DESK",
            "KLHST_WKS_GROUPID": second["group_id"],
        }
    finally:
        wire.close()

    # Back to the managed-devices group, by its name.
    move = {"tenant": tenant.name, "device": device.id, "group": ksc_const.GROUP_NAME}
    done = replay(ksc, cert, fleet, {"move_devices": [move]})
    assert done["moved"][0]["group_id"] == ksc_const.vserver_groups(tenant.number)[1]
    assert counted(ksc_client, tenant) == before


def test_ksc_host_moved_to_another_virtual_server_counts_there_once(
    ksc: KscEmulator, ksc_client: KscClient, cert: TlsIdentity
) -> None:
    """A host moved to another virtual server keeps its id, takes that server's key
    of the same kind, and counts once: one less where it was, one more where it is."""
    fleet = seed.make_fleet("ksc", TENANTS, SEED)
    source, target = fleet.tenants[0], fleet.tenants[3]
    device = billed_workstation(source)
    key = (ENDPOINT, WORKSTATIONS)
    before = {t.uid: counted(ksc_client, t).counts[key] for t in (source, target)}

    done = replay(
        ksc,
        cert,
        fleet,
        {"move_devices": [{"tenant": source.name, "device": device.id, "vserver": 4}]},
    )

    [moved] = done["moved"]
    new_key = billed_workstation(target).license_serial
    assert moved == {
        "tenant": target.name,
        "from": source.name,
        "device": device.id,
        "name": device.name,
        "group": ksc_const.GROUP_NAME,
        "group_id": ksc_const.vserver_groups(target.number)[1],
        "license": new_key,
    }
    assert device.id not in {d.id for d in ksc_client.devices(source.uid)}
    assert device.id in {d.id for d in ksc_client.devices(target.uid)}
    usage = {u.license_id: u for u in ksc_client.license_usage(target.uid)}
    assert device.id in usage[str(new_key)].device_ids
    assert counted(ksc_client, source).counts[key] == before[source.uid] - 1
    assert counted(ksc_client, target).counts[key] == before[target.uid] + 1


def test_ksc_cancelled_key_is_a_cancelled_subscription_that_bills_nothing(
    ksc: KscEmulator, ksc_client: KscClient, cert: TlsIdentity
) -> None:
    """The seeded cancelled key and a live one cancelled by a change read as
    cancelled; the charge drops by exactly the devices on the live one."""
    fleet = seed.make_fleet("ksc", TENANTS, SEED)
    tenant = fleet.tenants[1]
    seeded = cancelled_key(tenant)
    before = counted(ksc_client, tenant)

    usage = {u.license_id: u for u in ksc_client.license_usage(tenant.uid)}
    assert usage[seeded.serial].state == "cancelled"
    assert usage[seeded.serial].kind == "commercial"
    assert not usage[seeded.serial].billable()
    assert set(usage[seeded.serial].device_ids) == {
        d.id for d in tenant.devices_using(seeded.serial)
    }
    assert before.excluded[ENDPOINT] >= len(tenant.devices_using(seeded.serial))

    live = next(
        lic for lic in tenant.licenses if lic.product == ENDPOINT and lic.billable
    )
    users = tenant.devices_using(live.serial)
    done = replay(
        ksc,
        cert,
        fleet,
        {"cancel_licenses": [{"tenant": tenant.name, "license": ENDPOINT}]},
    )
    assert done["cancelled"] == [
        {
            "tenant": tenant.name,
            "license": live.serial,
            "product": ENDPOINT,
            "was": "active",
            "devices": len(users),
        }
    ]

    after = counted(ksc_client, tenant)
    assert endpoint_devices(after) == endpoint_devices(before) - len(users)
    assert after.excluded[ENDPOINT] == before.excluded[ENDPOINT] + len(users)
    usage = {u.license_id: u for u in ksc_client.license_usage(tenant.uid)}
    assert usage[live.serial].state == "cancelled"

    wire = Wire(ksc, cert)
    try:
        assert wire.login(tenant.name).status_code == 200
        fields = [
            "KLLIC_SERIAL",
            "KLLIC_KEY_TYPE",
            "KLLIC_LICTYPE_IS_SUBSCRIPTION",
            "KLLIC_SUBSCRINFO_STATE",
            "KLLIC_SUBSCRINFO_ENDDATETYPE",
        ]
        rows = key_rows(wire, fields)
    finally:
        wire.close()
    for serial in (seeded.serial, live.serial):
        assert rows[serial] == {
            "KLLIC_SERIAL": serial,
            "KLLIC_KEY_TYPE": ksc_const.KEY_TYPE_SUBSCRIPTION,
            "KLLIC_LICTYPE_IS_SUBSCRIPTION": True,
            "KLLIC_SUBSCRINFO_STATE": ksc_const.SUBSCRIPTION_HARD_CANCELLED,
            "KLLIC_SUBSCRINFO_ENDDATETYPE": ksc_const.SUBSCRIPTION_END_LIMITED,
        }


# Business Hub.


def test_business_hub_renames_and_cancels_but_does_not_move(
    kbh: KbhEmulator, kbh_client: KbhClient, cert: TlsIdentity
) -> None:
    """A renamed device counts once as before; a cancelled subscription reads as
    cancelled and its devices drop out; moves are KSC's only."""
    fleet = seed.make_fleet("production", TENANTS, SEED)
    tenant = fleet.tenants[1]
    device = billed_workstation(tenant)
    before = counted(kbh_client, tenant)

    replay(
        kbh,
        cert,
        fleet,
        {
            "rename_devices": [
                {"tenant": tenant.uid, "device": device.name, "name": "PC-NEW"}
            ]
        },
    )
    listed = {d.id: d.name for d in kbh_client.devices(tenant.uid)}
    assert listed[device.id] == "PC-NEW"
    assert counted(kbh_client, tenant) == before

    refused = post(
        kbh,
        cert,
        {"move_devices": [{"tenant": tenant.uid, "device": device.id, "group": "A"}]},
    )
    assert refused.status_code == 400
    assert "send moves to the KSC server" in refused.text

    seeded = cancelled_key(tenant)
    usage = {u.license_id: u for u in kbh_client.license_usage(tenant.uid)}
    assert usage[seeded.serial].state == "cancelled"
    assert not usage[seeded.serial].billable()
    live = device.license_serial
    users = tenant.devices_using(str(live))
    replay(
        kbh, cert, fleet, {"cancel_licenses": [{"tenant": tenant.uid, "license": live}]}
    )

    usage = {u.license_id: u for u in kbh_client.license_usage(tenant.uid)}
    assert usage[str(live)].state == "cancelled"
    after = counted(kbh_client, tenant)
    assert endpoint_devices(after) == endpoint_devices(before) - len(users)
    assert after.excluded[ENDPOINT] == before.excluded[ENDPOINT] + len(users)


def test_cancelled_office365_subscription_stays_cancelled_when_a_problem_clears() -> (
    None
):
    """Clearing an Office 365 license problem puts the subscription back to
    cancelled when it was cancelled meanwhile, and its mailboxes bill nothing."""
    fleet = seed.make_fleet("production", 6, SEED)
    tenant = next(t for t in fleet.tenants if office365.WORKSPACE in t.workspaces)
    subscription = tenant.office365_subscription()
    assert subscription is not None and subscription.billable

    seed.apply_changes(
        fleet,
        {
            "office365": [
                {"tenant": tenant.name, "raise": "license", "reason": "suspended"}
            ]
        },
    )
    assert subscription.state == seed.SUSPENDED
    done = seed.apply_changes(
        fleet,
        {"cancel_licenses": [{"tenant": tenant.name, "license": subscription.serial}]},
    )
    assert done["cancelled"][0]["was"] == seed.SUSPENDED
    seed.apply_changes(
        fleet, {"office365": [{"tenant": tenant.name, "clear": "license"}]}
    )

    assert subscription.state == seed.CANCELLED
    assert (seed.OFFICE365_PRODUCT, "mailbox") not in tenant.billable_usage()


# Refusals.


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (
            {"rename_devices": [{"tenant": 1, "device": "nobody", "name": "X"}]},
            "No device",
        ),
        (
            {"rename_devices": [{"tenant": 1, "device": "PC-001", "name": "  "}]},
            "'name'",
        ),
        (
            {"rename_devices": [{"tenant": 1, "device": "PC-001", "name": "X" * 101}]},
            "longer",
        ),
        ({"move_devices": [{"tenant": 1, "device": "PC-001"}]}, "'group', 'vserver'"),
        (
            {"move_devices": [{"tenant": 1, "device": "PC-001", "vserver": 99}]},
            "No tenant",
        ),
        ({"move_devices": [{"tenant": 1, "device": "PC-001", "group": 5}]}, "'group'"),
        ({"cancel_licenses": [{"tenant": 1, "license": "NO-SUCH-KEY"}]}, "No key"),
        (
            {"cancel_licenses": [{"tenant": 2, "license": seed.OFFICE365_PRODUCT}]},
            "No key",
        ),
        ({"cancel_devices": []}, "Unknown change kinds"),
    ],
)
def test_bad_changes_are_refused(payload: dict[str, Any], words: str) -> None:
    """A change naming something missing, or malformed, says what is wrong."""
    fleet = seed.make_fleet("ksc", TENANTS, SEED)

    with pytest.raises(ChangeError, match=words):
        seed.apply_changes(fleet, copy.deepcopy(payload))


def test_cancelling_twice_is_refused_over_http(
    ksc: KscEmulator, cert: TlsIdentity
) -> None:
    """The emulator answers a bad change with 400 and its reason."""
    tenant = ksc.fleet.tenants[1]
    serial = cancelled_key(tenant).serial

    reply = post(ksc, cert, {"cancel_licenses": [{"tenant": 2, "license": serial}]})

    assert reply.status_code == 400
    assert "is cancelled" in reply.text
