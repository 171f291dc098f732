"""The KSC Open API emulator over HTTPS, checked on the wire with raw requests."""

from __future__ import annotations

import base64
import datetime as dt
import re
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from agent.sandbox import seed
from agent.sandbox.certs import TlsIdentity, make_certificate
from agent.sandbox.ksc import KscEmulator
from agent.sandbox.server import Faults

TIMEOUT = 5
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
NO_ACCESS, NOT_FOUND, BAD_FORMAT, NO_SUCH_CALL = 1184, 1186, 1192, 1194


def b64(text: str) -> str:
    """Base64 of UTF-8 text."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def kscbasic(user: str, password: str, domain: str = "", internal: str = "1") -> str:
    """A KSCBasic Authorization header as KlAkOAPI builds it."""
    return (
        f'KSCBasic user="{b64(user)}", pass="{b64(password)}", '
        f'domain="{domain}", internal="{internal}"'
    )


def unwrap(value: Any) -> Any:
    """A reply value with KSC's type wrappers opened (datetimes stay strings)."""
    if isinstance(value, dict) and set(value) == {"type", "value"}:
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


class Wire:
    """One keep-alive HTTPS connection to the emulator, as KlAkOAPI keeps it."""

    def __init__(self, emulator: KscEmulator, cert: TlsIdentity) -> None:
        self.emulator = emulator
        self.http = requests.Session()
        # Proxy and CA variables of the environment must not reroute these calls.
        self.http.trust_env = False
        self.http.verify = str(cert.cert_path)
        self.http.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=1))

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST to a path of the emulator."""
        kwargs.setdefault("timeout", TIMEOUT)
        return self.http.post(self.emulator.url + path, **kwargs)

    def login(
        self,
        vserver: str = "",
        *,
        password: str | None = None,
        domain: str = "",
    ) -> requests.Response:
        """``POST /api/v1.0/login`` with an empty body, as KlAkOAPI sends it."""
        info = self.emulator.describe()
        headers = {
            "Authorization": kscbasic(
                info["user"], password or info["password"], domain
            ),
            "X-KSC-VServer": b64(vserver),
        }
        return self.post("/api/v1.0/login", headers=headers)

    def call(
        self, method: str, body: dict | None = None, **headers: str
    ) -> requests.Response:
        """One Open API call with a JSON body."""
        return self.post(
            f"/api/v1.0/{method}",
            json=body if body is not None else {},
            headers={k.replace("_", "-"): v for k, v in headers.items()},
        )

    def ok(self, method: str, body: dict | None = None, **headers: str) -> dict:
        """A call that must succeed; its JSON reply."""
        reply = self.call(method, body, **headers)
        assert reply.status_code == 200, reply.text
        payload = reply.json()
        assert "PxgError" not in payload, payload
        return payload

    def error(self, method: str, body: dict | None = None) -> dict:
        """A call that must fail with a PxgError inside a 200 reply."""
        reply = self.call(method, body)
        assert reply.status_code == 200, reply.text
        error = reply.json()["PxgError"]
        assert {"code", "module", "message"} <= set(error)
        return error

    def close(self) -> None:
        """Close the connection."""
        self.http.close()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> TlsIdentity:
    """The server's self-signed certificate (klserver.cer)."""
    return make_certificate(tmp_path_factory.mktemp("ksc"), "klserver")


@pytest.fixture(scope="module")
def emulator(cert: TlsIdentity) -> Iterator[KscEmulator]:
    """A KSC emulator with three virtual servers of 40 devices each."""
    fleet = seed.make_fleet("ksc", 3, seed=7, devices=40)
    server = KscEmulator(fleet, tls=cert, seed=7).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean(emulator: KscEmulator) -> Iterator[None]:
    """Each test starts without faults and with the default idle time."""
    idle = emulator.session_idle_seconds
    yield
    emulator.session_idle_seconds = idle
    emulator.faults = Faults()


@pytest.fixture
def wire(emulator: KscEmulator, cert: TlsIdentity) -> Iterator[Wire]:
    """A fresh connection, not logged in."""
    connection = Wire(emulator, cert)
    yield connection
    connection.close()


@pytest.fixture
def tenant(emulator: KscEmulator) -> seed.Tenant:
    """The first virtual server."""
    return emulator.fleet.tenants[0]


@pytest.fixture
def vs_wire(wire: Wire, tenant: seed.Tenant) -> Wire:
    """A connection logged into the first virtual server."""
    assert wire.login(tenant.name).status_code == 200
    return wire


def find_hosts(wire: Wire, filter_text: str = "", **extra: Any) -> tuple[int, str]:
    """FindHosts; (count, accessor)."""
    body = {
        "wstrFilter": filter_text,
        "vecFieldsToReturn": extra.pop("fields", ["KLHST_WKS_HOSTNAME"]),
        "vecFieldsToOrder": extra.pop("order", []),
        "pParams": {"KLGRP_FIND_FROM_CUR_VS_ONLY": True},
        "lMaxLifeTime": extra.pop("lifetime", 600),
    }
    reply = wire.ok("HostGroup.FindHosts", body)
    return reply["PxgRetVal"], reply["strAccessor"]


def read_hosts(wire: Wire, accessor: str, step: int) -> list[dict]:
    """Every row of an accessor, in chunks of ``step``."""
    total = wire.ok("ChunkAccessor.GetItemsCount", {"strAccessor": accessor})
    rows: list[dict] = []
    while len(rows) < total["PxgRetVal"]:
        body = {"strAccessor": accessor, "nStart": len(rows), "nCount": step}
        reply = wire.ok("ChunkAccessor.GetItemsChunk", body)
        chunk = reply["pChunk"]["KLCSP_ITERATOR_ARRAY"]
        assert chunk and reply["PxgRetVal"] == len(chunk) <= step
        assert all(item["type"] == "params" for item in chunk)
        rows += [item["value"] for item in chunk]
    return rows


# Logins.


def test_login_is_bound_to_the_connection(
    emulator: KscEmulator, cert: TlsIdentity, vs_wire: Wire, tenant: seed.Tenant
) -> None:
    """A login holds for its connection only, not for another or a new one."""
    count, _ = find_hosts(vs_wire)
    assert count == len(tenant.devices)

    other = Wire(emulator, cert)
    try:
        reply = other.call("HostGroup.FindHosts", {"wstrFilter": ""})
        assert reply.status_code == 401
        assert "login" in reply.json()["PxgError"]["message"]
    finally:
        other.close()

    # The same client on a new TCP connection is not logged in either.
    vs_wire.http.close()
    assert vs_wire.call("Session.Ping").status_code == 401


def test_login_refusals(wire: Wire, emulator: KscEmulator) -> None:
    """Wrong password, unknown or unreadable VS, and no login are 401s."""
    assert wire.call("Session.Ping").status_code == 401

    bad = wire.login(password="not-the-password")
    assert bad.status_code == 401
    assert bad.json()["PxgError"]["code"] == 1453

    unknown = wire.login("No Such Company")
    assert unknown.status_code == 401
    assert "No Such Company" in unknown.json()["PxgError"]["message"]

    headers = {
        "Authorization": kscbasic(emulator.user, emulator.password),
        "X-KSC-VServer": "%%%not base64",
    }
    assert wire.post("/api/v1.0/login", headers=headers).status_code == 401
    assert wire.call("Session.Ping").status_code == 401


def test_login_accepts_the_domain_raw_and_base64(wire: Wire) -> None:
    """The KSCBasic domain may be raw or base64; another domain is refused."""
    login = wire.login(domain="SANDBOX")
    assert login.status_code == 200 and login.json() == {}
    assert wire.login(domain=b64("SANDBOX")).status_code == 200
    assert wire.login(domain="OTHERDOMAIN").status_code == 401


def test_main_server_login_sees_every_virtual_server(
    wire: Wire, emulator: KscEmulator
) -> None:
    """GetVServers lists every tenant; GetVServerInfo returns the asked fields."""
    assert wire.login("").status_code == 200

    servers = wire.ok("VServers.GetVServers", {"lParentGroup": -1})["PxgRetVal"]
    assert all(item["type"] == "params" for item in servers)
    names = [item["value"]["KLVSRV_DN"] for item in servers]
    assert names == emulator.describe()["vserver_names"]
    assert DATETIME.match(servers[0]["value"]["KLVSRV_CREATED"]["value"])

    first = emulator.fleet.tenants[0]
    info = wire.ok(
        "VServers.GetVServerInfo",
        {"lVServer": first.number, "pFields2Return": ["KLVSRV_DN", "KLVSRV_UID"]},
    )["PxgRetVal"]
    assert info == {"KLVSRV_DN": first.name, "KLVSRV_UID": first.uid}


def test_vserver_calls_need_the_main_server(vs_wire: Wire) -> None:
    """A virtual-server login may not list virtual servers."""
    error = vs_wire.error("VServers.GetVServers", {"lParentGroup": -1})
    assert error["code"] == NO_ACCESS


# Token sessions.


def test_session_token_works_on_any_connection(
    emulator: KscEmulator, cert: TlsIdentity, wire: Wire, tenant: seed.Tenant
) -> None:
    """A token from StartSession works elsewhere until EndSession, then 403."""
    headers = {
        "Authorization": kscbasic(emulator.user, emulator.password),
        "X-KSC-VServer": b64(tenant.name),
    }
    started = wire.post("/api/v1.0/Session.StartSession", json={}, headers=headers)
    assert started.status_code == 200
    token = started.json()["PxgRetVal"]
    assert isinstance(token, str) and token

    other = Wire(emulator, cert)
    try:
        assert other.ok("Session.Ping", X_KSC_Session=token) == {}
        body = {"wstrFilter": "", "vecFieldsToReturn": ["KLHST_WKS_DN"]}
        found = other.ok("HostGroup.FindHosts", body, X_KSC_Session=token)
        assert found["PxgRetVal"] == len(tenant.devices)

        assert other.ok("Session.EndSession", X_KSC_Session=token) == {}
        assert other.call("Session.Ping", X_KSC_Session=token).status_code == 403
        gone = other.call(
            "ChunkAccessor.GetItemsCount",
            {"strAccessor": found["strAccessor"]},
            X_KSC_Session=token,
        )
        assert gone.status_code == 403
    finally:
        other.close()


def test_idle_session_expires_with_403(emulator: KscEmulator, vs_wire: Wire) -> None:
    """An unused token expires after the idle time and gets 403."""
    emulator.session_idle_seconds = 0.4
    token = vs_wire.ok("Session.StartSession")["PxgRetVal"]
    assert vs_wire.call("Session.Ping", X_KSC_Session=token).status_code == 200

    time.sleep(0.6)
    expired = vs_wire.call("Session.Ping", X_KSC_Session=token)
    assert expired.status_code == 403
    assert "expired" in expired.json()["PxgError"]["message"]


# Method errors.


def test_unknown_method_is_a_pxgerror(vs_wire: Wire) -> None:
    """An unknown method is a PxgError inside a 200 reply."""
    error = vs_wire.error("HostGroup.NoSuchMethod", {})
    assert error["code"] == NO_SUCH_CALL and error["module"] == "KLCONN"
    assert "NoSuchMethod" in error["message"]


def test_expired_and_released_accessors_are_pxgerrors(vs_wire: Wire) -> None:
    """Reading an expired, released or made-up accessor is a PxgError."""
    _, short = find_hosts(vs_wire, lifetime=1)
    assert vs_wire.ok("ChunkAccessor.GetItemsCount", {"strAccessor": short})
    time.sleep(1.2)
    body = {"strAccessor": short, "nStart": 0, "nCount": 5}
    assert vs_wire.error("ChunkAccessor.GetItemsChunk", body)["code"] == NOT_FOUND

    _, accessor = find_hosts(vs_wire)
    assert vs_wire.ok("ChunkAccessor.Release", {"strAccessor": accessor}) == {}
    error = vs_wire.error("ChunkAccessor.GetItemsCount", {"strAccessor": accessor})
    assert error["code"] == NOT_FOUND
    assert vs_wire.error("ChunkAccessor.GetItemsCount", {"strAccessor": "made-up"})


# Hosts.


def test_chunked_host_reads_add_up(vs_wire: Wire, tenant: seed.Tenant) -> None:
    """Chunks cover every host exactly once, with the asked fields in wrapped form."""
    fields = [
        "KLHST_WKS_HOSTNAME",
        "KLHST_WKS_DN",
        "KLHST_WKS_STATUS_ID",
        "KLHST_WKS_LAST_VISIBLE",
        "KLHST_WKS_VIRUS_COUNT",
    ]
    count, accessor = find_hosts(vs_wire, fields=fields)
    rows = read_hosts(vs_wire, accessor, step=7)

    assert count == len(rows) == len(tenant.devices)
    assert {row["KLHST_WKS_HOSTNAME"] for row in rows} == {
        device.id for device in tenant.devices
    }
    assert all(set(row) == set(fields) for row in rows)
    assert all(row["KLHST_WKS_LAST_VISIBLE"]["type"] == "datetime" for row in rows)
    assert all(DATETIME.match(row["KLHST_WKS_LAST_VISIBLE"]["value"]) for row in rows)
    assert all(row["KLHST_WKS_VIRUS_COUNT"]["type"] == "long" for row in rows)

    beyond = {"strAccessor": accessor, "nStart": count, "nCount": 10}
    empty = vs_wire.ok("ChunkAccessor.GetItemsChunk", beyond)
    assert empty["pChunk"]["KLCSP_ITERATOR_ARRAY"] == [] and empty["PxgRetVal"] == 0


def test_host_status_follows_the_seed_problems(
    vs_wire: Wire, tenant: seed.Tenant
) -> None:
    """Status, mask bits, counts, OS and computer type follow the seed."""
    fields = [
        "KLHST_WKS_HOSTNAME",
        "KLHST_WKS_STATUS_ID",
        "KLHST_WKS_STATUS_MASK",
        "KLHST_WKS_UNCURED_COUNT",
        "KLHST_WKS_CTYPE",
        "KLHST_WKS_OS_NAME",
    ]
    _, accessor = find_hosts(vs_wire, fields=fields)
    rows = {row["KLHST_WKS_HOSTNAME"]: row for row in read_hosts(vs_wire, accessor, 50)}

    for device in tenant.devices:
        row = rows[device.id]
        mask = row["KLHST_WKS_STATUS_MASK"]
        assert (
            row["KLHST_WKS_STATUS_ID"]
            == {"ok": 0, "critical": 1, "warning": 2}[device.status]
        )
        assert bool(mask & (1 << 7)) == (seed.DATABASES_OUTDATED in device.problems)
        assert bool(mask & (1 << 8)) == (seed.NOT_SEEN in device.problems)
        assert bool(mask & (1 << 10)) == (seed.THREATS_NOT_CURED in device.problems)
        not_protected = bool(mask & ((1 << 1) | (1 << 5)))
        assert not_protected == (seed.NOT_PROTECTED in device.problems)
        assert row["KLHST_WKS_UNCURED_COUNT"]["value"] == device.uncured_count
        assert row["KLHST_WKS_OS_NAME"] == device.os_name
        server = bool(row["KLHST_WKS_CTYPE"] & 0x2)
        assert server == (device.kind == seed.SERVER)
        assert (row["KLHST_WKS_CTYPE"] == 0) == (device.kind == seed.MOBILE)


def test_filters_select_hosts(
    emulator: KscEmulator, vs_wire: Wire, tenant: seed.Tenant
) -> None:
    """The search filter selects the right hosts; bad filters are PxgErrors."""
    # Make sure there is at least one critical host, through the sandbox endpoint.
    change = {"problems": [{"tenant": tenant.name, "device": "PC-001", "add": []}]}
    change["problems"][0]["add"] = [seed.THREATS_NOT_CURED]
    assert vs_wire.post("/_sandbox/events", json=change).status_code == 200

    def count(filter_text: str) -> int:
        """The number of hosts a filter finds."""
        return find_hosts(vs_wire, filter_text)[0]

    devices = tenant.devices
    critical = [d for d in devices if d.status == "critical"]
    assert critical
    assert count("(KLHST_WKS_STATUS_ID = 1)") == len(critical)
    assert count("(&(KLHST_WKS_STATUS_ID <> 1)(KLHST_WKS_STATUS_ID <> 2))") == len(
        [d for d in devices if d.status == "ok"]
    )
    outdated = [d for d in devices if seed.DATABASES_OUTDATED in d.problems]
    assert count("(KLHST_WKS_STATUS_MASK & 128 <> 0)") == len(outdated)
    assert count("(KLHST_WKS_STATUS_MASK_7 = 1)") == len(outdated)
    assert count('(|(KLHST_WKS_DN = "pc-00?")(KLHST_WKS_DN = "SRV-*"))') == len(
        [d for d in devices if re.fullmatch(r"PC-00\d|SRV-.*", d.name)]
    )
    assert count('(!(KLHST_WKS_DN = "PC-*"))') == len(
        [d for d in devices if not d.name.startswith("PC-")]
    )
    unseen = [d for d in devices if seed.NOT_SEEN in d.problems]
    assert count("(KLHST_WKS_LAST_VISIBLE < CURTIME(-604800))") == len(unseen)
    assert count("") == len(devices)

    bad = {"wstrFilter": "(KLHST_WKS_NOPE = 1)", "vecFieldsToReturn": []}
    assert vs_wire.error("HostGroup.FindHosts", bad)["code"] == BAD_FORMAT
    bad["wstrFilter"] = "(KLHST_WKS_DN = PC-001)"
    assert vs_wire.error("HostGroup.FindHosts", bad)["code"] == BAD_FORMAT


def test_order_takes_wrapped_and_bare_params(
    vs_wire: Wire, tenant: seed.Tenant
) -> None:
    """vecFieldsToOrder works with wrapped and bare params."""
    names = sorted(device.name for device in tenant.devices)
    wrapped = [{"type": "params", "value": {"Name": "KLHST_WKS_DN", "Asc": False}}]
    _, accessor = find_hosts(vs_wire, fields=["KLHST_WKS_DN"], order=wrapped)
    rows = read_hosts(vs_wire, accessor, 100)
    assert [row["KLHST_WKS_DN"] for row in rows] == names[::-1]

    bare = [{"Name": "KLHST_WKS_DN", "Asc": True}]
    _, accessor = find_hosts(vs_wire, fields=["KLHST_WKS_DN"], order=bare)
    assert [row["KLHST_WKS_DN"] for row in read_hosts(vs_wire, accessor, 9)] == names


def test_typed_arguments_bare_and_wrapped(wire: Wire, emulator: KscEmulator) -> None:
    """A long argument may come bare or wrapped; replies wrap inner values."""
    assert wire.login("").status_code == 200
    first = emulator.fleet.tenants[0]

    bare = wire.ok("VServers2.GetVServerStatistic", {"lVsId": first.number})
    wrapped = wire.ok(
        "VServers2.GetVServerStatistic",
        {"lVsId": {"type": "long", "value": first.number}},
    )
    assert bare == wrapped
    statistic = bare["PxgRetVal"]
    assert statistic["KLVSRV_HOSTS"] == len(first.devices)
    licenses = statistic["KLVSRV_LICENSES"]
    assert all(item["type"] == "params" for item in licenses)
    assert {item["value"]["KLLIC_SERIAL"] for item in licenses} == {
        lic.serial for lic in first.licenses
    }
    assert all(
        item["value"]["KLLIC_LIMIT_DATE"]["type"] == "datetime" for item in licenses
    )

    wrong = {"lVsId": {"type": "long", "value": "many"}}
    assert wire.error("VServers2.GetVServerStatistic", wrong)["code"] == BAD_FORMAT


# License keys.


def test_license_iterator_runs_to_eof(vs_wire: Wire, tenant: seed.Tenant) -> None:
    """Keys read to bEOF with their types and users; AcquireKeyHosts lists the users."""
    fields = [
        "KLLIC_SERIAL",
        "KLLIC_KEY_TYPE",
        "KLLIC_LIMIT_DATE",
        "KLLIC_NHOSTS_ASCURRENT",
    ]
    body = {"pFields": fields, "pFieldsToOrder": [], "pOptions": {}, "lTimeoutSec": 60}
    opened = vs_wire.ok("LicenseKeys.EnumKeys", body)
    assert "PxgRetVal" not in opened
    assert opened["lKeyCount"] == len(tenant.licenses)

    keys: list[dict] = []
    while True:
        step = {"szwIterator": opened["wstrIterator"], "nCount": 2}
        reply = vs_wire.ok("GroupSyncIterator.GetNextItems", step)
        keys += [unwrap(item) for item in reply["pData"]["KLCSP_ITERATOR_ARRAY"]]
        if reply["bEOF"]:
            break
    release = {"szwIterator": opened["wstrIterator"]}
    assert vs_wire.ok("GroupSyncIterator.ReleaseIterator", release) == {}
    step = {"szwIterator": opened["wstrIterator"], "nCount": 2}
    assert vs_wire.error("GroupSyncIterator.GetNextItems", step)["code"] == NOT_FOUND

    by_serial = {key["KLLIC_SERIAL"]: key for key in keys}
    assert set(by_serial) == {lic.serial for lic in tenant.licenses}
    for lic in tenant.licenses:
        key = by_serial[lic.serial]
        subscription = lic.state in (seed.SUSPENDED, seed.CANCELLED)
        expected = 3 if lic.kind == "trial" else (6 if subscription else 1)
        assert key["KLLIC_KEY_TYPE"] == expected
        assert DATETIME.match(key["KLLIC_LIMIT_DATE"])
        users = len(tenant.devices_using(lic.serial)) + lic.mailboxes_used
        assert key["KLLIC_NHOSTS_ASCURRENT"] == users

    active = next(lic for lic in tenant.licenses if lic.billable)
    body = {
        "pInData": {"KLLIC_SERIAL": active.serial},
        "pFields": ["KLLICSRV_HOSTNAME", "KLLICSRV_HOSTDN"],
        "pFieldsToOrder": [],
        "pOptions": {},
        "lTimeoutSec": 60,
    }
    hosts = vs_wire.ok("LicenseKeys.AcquireKeyHosts", body)
    step = {"szwIterator": hosts["wstrIterator"], "nCount": 1000}
    reply = vs_wire.ok("GroupSyncIterator.GetNextItems", step)
    assert reply["bEOF"] is True
    using = [
        item["value"]["KLLICSRV_HOSTNAME"]
        for item in reply["pData"]["KLCSP_ITERATOR_ARRAY"]
    ]
    assert hosts["lKeyCount"] == len(using)
    assert set(using) == {d.id for d in tenant.devices_using(active.serial)}


# Events.


def read_events(wire: Wire, pfilter: dict, step: int = 3) -> list[dict]:
    """Every event an iterator holds, read in ranges of ``step``."""
    body = {
        "pFilter": pfilter,
        "vecFieldsToReturn": [],
        "vecFieldsToOrder": [],
        "lifetimeSec": 600,
    }
    iterator = wire.ok("EventProcessingFactory.CreateEventProcessing2", body)
    handle = {"strIteratorId": iterator["strIteratorId"]}
    count = wire.ok("EventProcessing.GetRecordCount", handle)["PxgRetVal"]
    events: list[dict] = []
    while len(events) < count:
        span = {**handle, "nStart": len(events), "nEnd": len(events) + step}
        reply = wire.ok("EventProcessing.GetRecordRange", span)
        part = reply["pParamsEvents"]["KLEVP_EVENT_RANGE_ARRAY"]
        assert part and len(part) <= step
        events += [item["value"] for item in part]
    past = {**handle, "nStart": count, "nEnd": count + 50}
    tail = wire.ok("EventProcessing.GetRecordRange", past)
    assert tail["pParamsEvents"]["KLEVP_EVENT_RANGE_ARRAY"] == []
    assert wire.ok("EventProcessing.ReleaseIterator", handle) == {}
    return events


def test_events_after_a_known_id(
    emulator: KscEmulator, vs_wire: Wire, tenant: seed.Tenant
) -> None:
    """Events read in ranges; the RFC 2254 filter returns only the newer ones."""
    events = read_events(vs_wire, {})
    assert len(events) == len(tenant.events)
    assert all(event["event_db_id"]["type"] == "long" for event in events)
    assert all(DATETIME.match(event["rise_time"]["value"]) for event in events)
    last = max(event["event_db_id"]["value"] for event in events)

    change = {"events": [{"tenant": tenant.name, "severity": "critical", "count": 2}]}
    added = vs_wire.post("/_sandbox/events", json=change)
    assert added.status_code == 200
    added_ids = [item["id"] for item in added.json()["events"]]

    after = {"KLEVP_RFC2254_FILTER": f"(event_db_id > {last})"}
    new = read_events(vs_wire, after, step=1)
    assert [event["event_db_id"]["value"] for event in new] == added_ids
    assert min(added_ids) > last
    device_ids = {device.id for device in tenant.devices}
    for event in new:
        assert event["GNRL_EA_SEVERITY"] == 4
        assert event["hostname"] in device_ids
        assert event["hostdn"] and event["GNRL_EA_DESCRIPTION"]
        assert event["GNRL_EA_PARAM_5"] and event["event_type"].startswith("GNRL_EV_")

    day_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    recent = read_events(vs_wire, {"KLEVP_EVENT_RISE_TIME_LAST_DAYS": 1})
    assert len(recent) == len([e for e in tenant.events if e.time >= day_ago])

    severities = {e.severity for e in tenant.events}
    assert {"critical", "functional_failure", "warning", "info"} <= severities
    infos = read_events(vs_wire, {"GNRL_EA_SEVERITY": 1})
    assert len(infos) == len([e for e in tenant.events if e.severity == "info"])

    bad = {"pFilter": {"KLEVP_NOT_A_FILTER": 1}}
    error = vs_wire.error("EventProcessingFactory.CreateEventProcessing2", bad)
    assert error["code"] == BAD_FORMAT


# Transport, faults and the sandbox endpoints.


def test_gzip_when_asked(vs_wire: Wire) -> None:
    """Replies are gzipped only when the client asks."""
    zipped = vs_wire.call("Session.Ping", Accept_Encoding="gzip")
    assert zipped.headers.get("Content-Encoding") == "gzip"
    assert zipped.json() == {}
    plain = vs_wire.call("Session.Ping", Accept_Encoding="identity")
    assert "Content-Encoding" not in plain.headers and plain.json() == {}


def test_serves_tls_12_at_most(emulator: KscEmulator, cert: TlsIdentity) -> None:
    """TLS 1.2 is served; a TLS 1.3-only client is refused."""
    context = ssl.create_default_context(cafile=str(cert.cert_path))
    with socket.create_connection((emulator.host, emulator.port), TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == "TLSv1.2"

    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection((emulator.host, emulator.port), TIMEOUT) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="localhost")


def test_rate_limit_and_down_faults(vs_wire: Wire) -> None:
    """A 429 fault carries Retry-After; down drops the connection and its login."""
    faults = {"rate_limit_rate": 1.0, "retry_after": 7}
    assert vs_wire.post("/_sandbox/faults", json=faults).status_code == 200
    limited = vs_wire.call("Session.Ping")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.headers["Content-Type"].startswith("text/html")

    assert vs_wire.post("/_sandbox/faults", json={"reset": True}).status_code == 200
    assert vs_wire.call("Session.Ping").status_code == 200

    assert vs_wire.post("/_sandbox/faults", json={"down": True}).status_code == 200
    with pytest.raises(requests.ConnectionError):
        vs_wire.call("Session.Ping")
    assert vs_wire.post("/_sandbox/faults", json={"reset": True}).status_code == 200
    # The dropped connection took its login with it.
    assert vs_wire.call("Session.Ping").status_code == 401


def test_expire_sessions_fault_ends_logins_and_tokens(vs_wire: Wire) -> None:
    """The expire_sessions fault logs connections out and ends tokens."""
    token = vs_wire.ok("Session.StartSession")["PxgRetVal"]
    expire = vs_wire.post("/_sandbox/faults", json={"expire_sessions": True})
    assert expire.status_code == 200
    assert vs_wire.call("Session.Ping").status_code == 401
    assert vs_wire.call("Session.Ping", X_KSC_Session=token).status_code == 403


def test_state_and_bad_changes(vs_wire: Wire, tenant: seed.Tenant) -> None:
    """The state endpoint counts hosts and sessions; bad changes are 400."""
    token = vs_wire.ok("Session.StartSession")["PxgRetVal"]
    find_hosts(vs_wire)

    state = vs_wire.http.get(vs_wire.emulator.url + "/_sandbox/state", timeout=TIMEOUT)
    assert state.status_code == 200
    payload = state.json()
    first = payload["vservers"][0]
    assert first["name"] == tenant.name and first["hosts"] == len(tenant.devices)
    assert payload["sessions"] >= 1 and payload["accessors"] >= 1
    assert payload["connection_logins"] >= 1
    assert payload["events"] == sum(v["events"] for v in payload["vservers"])

    bad = vs_wire.post("/_sandbox/events", json={"events": [{"tenant": "nobody"}]})
    assert bad.status_code == 400 and "nobody" in bad.json()["error"]
    assert vs_wire.ok("Session.EndSession", X_KSC_Session=token) == {}
