"""The KSC client against the real KSC emulator over HTTPS: every read of the sync."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator

import pytest

from agent.errors import (
    PermissionDenied,
    ProtocolError,
    ServerError,
    SetupError,
)
from agent.sandbox import seed
from agent.sandbox.certs import TlsIdentity, make_certificate
from agent.sandbox.ksc import KscEmulator
from agent.sources import records
from agent.sources.kbh_wire import CursorRefused
from agent.sources.ksc import KscClient
from agent.sources.ksc_route import Route
from agent.sources.ksc_session import MAIN, KscSession, KscTransport
from agent.sources.ksc_tls import TlsPolicy, parse_address
from tests.integration.emulator_support import fail_next
from tests.integration.ksc_client_support import (
    calls,
    clear_calls,
    make_client,
    post_events,
    reset,
)

DEVICES = 40
KINDS = {seed.WORKSTATION: "workstation", seed.SERVER: "server", seed.MOBILE: "mobile"}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> TlsIdentity:
    """The emulator's klserver.cer."""
    return make_certificate(tmp_path_factory.mktemp("ksc-client"), "klserver")


@pytest.fixture(scope="module")
def emulator(cert: TlsIdentity) -> Iterator[KscEmulator]:
    """Five virtual servers of 40 devices (the fifth has a paused subscription)."""
    fleet = seed.make_fleet("ksc", 5, seed=7, devices=DEVICES)
    server = KscEmulator(fleet, tls=cert, seed=7).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean(emulator: KscEmulator) -> Iterator[None]:
    """Each test starts with no faults, sessions or counted calls."""
    reset(emulator)
    yield
    reset(emulator)


@pytest.fixture
def client(emulator: KscEmulator, cert: TlsIdentity) -> Iterator[KscClient]:
    """A client pinned to klserver.cer, reading 7 devices per chunk."""
    made = make_client(emulator, certificate=cert.cert_path, page_size=7)
    yield made
    made.close()


def tenant_of(emulator: KscEmulator, number: int) -> seed.Tenant:
    """The seed tenant behind virtual server ``number``."""
    return emulator.fleet.tenants[number - 1]


# Virtual servers.


def test_check_lists_every_virtual_server(
    client: KscClient, emulator: KscEmulator
) -> None:
    """check() logs in to the main server and lists its virtual servers as tenants."""
    tenants = client.check()

    expected = [
        records.Tenant(source="ksc", id=t.uid, name=t.name)
        for t in emulator.fleet.tenants
    ]
    assert tenants == expected
    assert client.vservers() == expected
    assert calls(emulator, "Session.StartSession") == 1


def test_methods_take_a_tenant_its_id_or_its_name(
    client: KscClient, emulator: KscEmulator
) -> None:
    """Each read names the tenant by its KLVSRV_UID, whatever the caller passed."""
    tenant = client.check()[1]
    wanted = {d.id for d in tenant_of(emulator, 2).devices}

    for key in (tenant, tenant.id, tenant.name):
        devices = list(client.devices(key))
        assert {d.id for d in devices} == wanted
        assert {d.tenant_id for d in devices} == {tenant.id}


# Devices.


def test_devices_match_the_fleet(client: KscClient, emulator: KscEmulator) -> None:
    """Ids, names, kinds, statuses, problems and times as the seed holds them."""
    fleet_tenant = tenant_of(emulator, 1)
    devices = list(client.devices(fleet_tenant.uid))

    assert [d.id for d in devices] == sorted(d.id for d in fleet_tenant.devices)
    by_id = {d.id: d for d in fleet_tenant.devices}
    for device in devices:
        source = by_id[device.id]
        assert device.tenant_id == fleet_tenant.uid
        assert device.name == source.name
        assert device.kind == KINDS[source.kind]
        assert device.status == source.status
        assert device.problems == frozenset(source.problems)
        assert device.last_seen == source.last_seen
        assert device.os_name == source.os_name
        assert device.threats == source.uncured_count
    assert {d.kind for d in devices} == {"workstation", "server", "mobile"}
    assert any(d.problems for d in devices)
    assert emulator.state()["accessors"] == 0


def test_devices_are_read_in_chunks_and_released(
    client: KscClient, emulator: KscEmulator
) -> None:
    """One FindHosts, 40/7 chunks, one Release; a generator holds one chunk."""
    devices = client.devices(tenant_of(emulator, 3).name)
    assert calls(emulator, "HostGroup.FindHosts") == 0

    first = list(itertools.islice(devices, 3))
    assert len(first) == 3
    assert calls(emulator, "ChunkAccessor.GetItemsChunk") == 1
    assert emulator.state()["accessors"] == 1

    rest = list(devices)
    assert len(first) + len(rest) == DEVICES
    assert calls(emulator, "ChunkAccessor.GetItemsChunk") == math.ceil(DEVICES / 7)
    assert calls(emulator, "ChunkAccessor.Release") == 1
    assert emulator.state()["accessors"] == 0


def test_a_device_list_left_early_is_released(
    client: KscClient, emulator: KscEmulator
) -> None:
    """Closing the generator before the end frees the accessor on the server."""
    devices = client.devices(tenant_of(emulator, 1).name)
    next(devices)
    devices.close()
    assert calls(emulator, "ChunkAccessor.Release") == 1
    assert emulator.state()["accessors"] == 0


def test_session_expiry_mid_read_loses_and_repeats_no_device(
    client: KscClient, emulator: KscEmulator
) -> None:
    """Sessions end twice during a chunked read; every device comes exactly once."""
    fleet_tenant = tenant_of(emulator, 4)
    devices = client.devices(fleet_tenant.name)

    seen = [d.id for d in itertools.islice(devices, 10)]
    emulator.expire_sessions()
    seen += [d.id for d in itertools.islice(devices, 12)]
    emulator.expire_sessions()
    seen += [d.id for d in devices]

    assert len(seen) == DEVICES
    assert set(seen) == {d.id for d in fleet_tenant.devices}
    # Main server (to look the name up), the virtual server, and two renewals.
    assert calls(emulator, "Session.StartSession") == 4
    assert calls(emulator, "HostGroup.FindHosts") == 3
    assert emulator.state()["accessors"] == 0


def test_devices_removed_during_a_renewed_read_are_not_repeated(
    client: KscClient, emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """The renewed search starts after the last device read, not at a position."""
    fleet_tenant = tenant_of(emulator, 5)
    devices = client.devices(fleet_tenant.name)
    seen = [d.id for d in itertools.islice(devices, 9)]

    gone = sorted(d.id for d in fleet_tenant.devices)[:3]
    post_events(
        emulator,
        cert,
        {"remove_devices": [{"tenant": fleet_tenant.name, "device": d} for d in gone]},
    )
    emulator.expire_sessions()
    seen += [d.id for d in devices]

    assert len(seen) == len(set(seen)) == DEVICES
    assert set(seen) == set(gone) | {d.id for d in fleet_tenant.devices}


def test_a_call_refused_after_a_new_login_gives_up(
    client: KscClient, emulator: KscEmulator
) -> None:
    """401 twice: one new login, one resend, then a clear error; no storm."""
    name = tenant_of(emulator, 1).name
    fail_next(emulator, "/api/v1.0/HostGroup.FindHosts", 401, 2)

    with pytest.raises(ProtocolError) as caught:
        list(client.devices(name))

    assert "did not accept the session it had just opened" in str(caught.value)
    # Main server (to look the name up), the virtual server, and one renewal.
    assert calls(emulator, "Session.StartSession") == 3
    assert calls(emulator, "HostGroup.FindHosts") == 2


def test_a_403_after_a_new_login_names_the_call(
    client: KscClient, emulator: KscEmulator
) -> None:
    """403 twice is a missing right, named by the refused call."""
    fail_next(emulator, "/api/v1.0/VServers.GetVServers", 403, 2)

    with pytest.raises(PermissionDenied) as caught:
        client.check()

    assert caught.value.right == "VServers.GetVServers"
    assert caught.value.field == "user"
    assert calls(emulator, "Session.StartSession") == 2


def test_a_result_set_lost_twice_in_a_row_ends_the_read(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """Accessors that expire before every chunk end the read, not loop forever."""
    emulator.faults.path_prefix = "/api/v1.0/ChunkAccessor.GetItemsChunk"
    emulator.faults.latency_ms = 1100
    with make_client(
        emulator, certificate=cert.cert_path, result_lifetime=1
    ) as short_lived:
        with pytest.raises(ServerError) as caught:
            list(short_lived.devices(tenant_of(emulator, 2).name))

    assert "twice in a row" in str(caught.value)
    assert calls(emulator, "HostGroup.FindHosts") == 2
    assert calls(emulator, "Session.StartSession") == 2


def test_a_session_that_ended_between_calls_is_renewed_once(
    client: KscClient, emulator: KscEmulator
) -> None:
    """An expired login is renewed on the next call, with one StartSession."""
    client.check()
    emulator.expire_sessions()

    assert len(client.vservers()) == len(emulator.fleet.tenants)
    assert calls(emulator, "Session.StartSession") == 2
    assert calls(emulator, "VServers.GetVServers") == 3


# License keys.


def test_license_usage_matches_the_fleet(
    client: KscClient, emulator: KscEmulator
) -> None:
    """Key, product, kind, state, seats, expiry and devices of every key."""
    now = dt.datetime.now(dt.UTC)
    for fleet_tenant in emulator.fleet.tenants:
        usage = client.license_usage(fleet_tenant.uid)

        assert sorted(u.license_id for u in usage) == sorted(
            lic.serial for lic in fleet_tenant.licenses
        )
        for item in usage:
            lic = fleet_tenant.license(item.license_id)
            assert lic is not None
            assert item.tenant_id == fleet_tenant.uid
            assert item.product == lic.product
            assert item.kind == lic.kind
            assert item.state == lic.state
            assert item.seats == lic.seats
            assert item.expires == lic.expires
            using = {d.id for d in fleet_tenant.devices_using(lic.serial)}
            assert set(item.device_ids) == using
            assert len(item.device_ids) == len(using)
            assert item.mailboxes == lic.mailboxes_used
            assert item.billable(now) == lic.billable
    assert emulator.state()["iterators"] == 0


def test_the_fleet_has_every_kind_of_key() -> None:
    """The fixture's fleet holds trial, expired, suspended and Office 365 keys."""
    fleet = seed.make_fleet("ksc", 5, seed=7, devices=DEVICES)
    keys = [lic for tenant in fleet.tenants for lic in tenant.licenses]
    assert {lic.state for lic in keys} == {"active", "expired", "suspended"}
    assert {lic.kind for lic in keys} == {"commercial", "trial"}
    assert any(lic.mailboxes_used for lic in keys)


def test_license_read_survives_a_lost_iterator(
    client: KscClient, emulator: KscEmulator
) -> None:
    """A session refused during GetNextItems reads the keys again, once."""
    fleet_tenant = tenant_of(emulator, 3)
    expected = client.license_usage(fleet_tenant.name)
    clear_calls(emulator)

    fail_next(emulator, "/api/v1.0/GroupSyncIterator.GetNextItems", 403, 1)
    assert client.license_usage(fleet_tenant.name) == expected
    assert calls(emulator, "LicenseKeys.EnumKeys") == 2
    # The first iterator stays with the session the injected 403 only pretended to
    # end; every iterator of the new session is released.
    assert emulator.state()["iterators"] == 1


# Events.


def test_events_page_through_a_cursor_and_see_new_ones(
    client: KscClient, emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """Pages of 3 from the start, then only the events raised after the cursor."""
    fleet_tenant = tenant_of(emulator, 2)
    seen: list[records.SecurityEvent] = []
    cursor = ""
    while True:
        page = client.events(fleet_tenant.uid, cursor, limit=3)
        if not page.events:
            assert page.cursor == cursor
            break
        assert len(page.events) <= 3
        seen += page.events
        cursor = page.cursor
        assert cursor == page.events[-1].id

    by_id = {str(e.id): e for e in fleet_tenant.events}
    assert [e.id for e in seen] == sorted(by_id, key=int)
    severities = {"critical", "functional_failure", "warning", "info"}
    assert {e.severity for e in seen} == severities
    for event in seen:
        source = by_id[event.id]
        assert event.tenant_id == fleet_tenant.uid
        assert (event.severity, event.type) == (source.severity, source.type)
        assert (event.device_id, event.device_name) == (
            source.device_id,
            source.device_name,
        )
        assert event.time == source.time
        assert event.threat == source.threat
        assert source.description in event.description

    done = post_events(
        emulator,
        cert,
        {"events": [{"tenant": fleet_tenant.name, "severity": "critical", "count": 4}]},
    )
    new_ids = [str(item["id"]) for item in done["events"]]
    page = client.events(fleet_tenant.uid, cursor, limit=3)
    assert [e.id for e in page.events] == new_ids[:3]
    assert {e.severity for e in page.events} == {"critical"}
    page = client.events(fleet_tenant.uid, page.cursor, limit=3)
    assert [e.id for e in page.events] == new_ids[3:]
    assert client.events(fleet_tenant.uid, page.cursor).events == []
    assert emulator.state()["event_iterators"] == 0


def test_events_survive_a_lost_iterator(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """A session refused mid-page reopens the events; none lost or repeated."""
    name = tenant_of(emulator, 1).name
    with make_client(emulator, certificate=cert.cert_path, page_size=2) as reader:
        expected = reader.events(name, "", limit=7)
        clear_calls(emulator)

        fail_next(emulator, "/api/v1.0/EventProcessing.GetRecordRange", 403, 1)
        assert reader.events(name, "", limit=7) == expected
    assert len(expected.events) == 7
    assert calls(emulator, "EventProcessingFactory.CreateEventProcessing2") == 2


def test_events_read_on_after_the_last_one_when_the_iterator_expires(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """An iterator that expires after some pages is reopened after the last event."""
    name = tenant_of(emulator, 3).name
    with make_client(emulator, certificate=cert.cert_path, page_size=2) as reader:
        expected = reader.events(name, "", limit=7)
        clear_calls(emulator)

        # Each iterator lives 1 s; ranges take 0.4 s: two pages, then it is gone.
        emulator.faults.path_prefix = "/api/v1.0/EventProcessing.GetRecordRange"
        emulator.faults.latency_ms = 400
        with make_client(
            emulator, certificate=cert.cert_path, page_size=2, result_lifetime=1
        ) as slow:
            assert slow.events(name, "", limit=7) == expected
    assert calls(emulator, "EventProcessingFactory.CreateEventProcessing2") == 2


def test_a_cursor_the_agent_did_not_write_is_refused(
    client: KscClient, emulator: KscEmulator
) -> None:
    """A cursor that is no event_db_id asks for a reset rather than guessing."""
    tenant = tenant_of(emulator, 1)
    with pytest.raises(CursorRefused) as caught:
        client.events(tenant.uid, "kbh1|production|x")
    assert caught.value.company_id == tenant.uid


# One virtual server, PxgErrors, closing.


def test_a_client_for_one_virtual_server(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """vserver= logs in to that server only; it is the one tenant, by name."""
    name = tenant_of(emulator, 2).name
    with make_client(emulator, certificate=cert.cert_path, vserver=name) as scoped:
        assert scoped.check() == [records.Tenant("ksc", name, name)]
        assert len(list(scoped.devices(name))) == DEVICES
        with pytest.raises(SetupError) as caught:
            scoped.devices(tenant_of(emulator, 3).name)
        assert caught.value.field == "vserver"
    assert calls(emulator, "VServers.GetVServers") == 0


def test_pxg_errors_become_typed_errors_with_ksc_words(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """An unknown method and a refused one carry KSC's message and the field."""
    route = Route(
        parse_address(emulator.url), TlsPolicy(cert.cert_path, None), None, 2.0
    )
    transport = KscTransport(route, timeout=(2.0, 5.0), sleep=lambda _: None)
    info = emulator.describe()
    session = KscSession(transport, info["user"], info["password"])
    vs_name = tenant_of(emulator, 1).name
    try:
        with pytest.raises(ProtocolError) as unknown:
            session.call(MAIN, "HostGroup.NoSuchMethod")
        assert "No such method 'HostGroup.NoSuchMethod'" in str(unknown.value)
        assert unknown.value.field == "address"

        with pytest.raises(PermissionDenied) as refused:
            session.call(vs_name, "VServers.GetVServers", {"lParentGroup": -1})
        assert "main server" in str(refused.value)
        assert refused.value.right == "VServers.GetVServers"
        assert refused.value.field == "user"
    finally:
        session.end_all()
        transport.close()


def test_close_ends_every_session(client: KscClient, emulator: KscEmulator) -> None:
    """Closing the client ends its sessions on the server."""
    tenants = client.check()
    list(client.devices(tenants[0]))
    assert emulator.state()["sessions"] == 2

    client.close()
    assert emulator.state()["sessions"] == 0
