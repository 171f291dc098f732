"""The Business Hub client against three real emulated servers over HTTPS."""

from __future__ import annotations

import dataclasses
import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.config.settings import Settings
from agent.errors import (
    AccountInactive,
    CertificateNotTrusted,
    ConfigError,
    NothingListening,
    RateLimited,
    ServerError,
    WrongCredentials,
)
from agent.sandbox import seed
from agent.sandbox.certs import TlsIdentity, make_certificate
from agent.sandbox.kbh import ENVIRONMENTS, TOKEN_LIFETIME, Account, KbhEmulator
from agent.sources import records
from agent.sources.kbh import (
    KNOWN_SERVERS,
    CompanyNotFound,
    CursorRefused,
    KbhClient,
    ServerTable,
    clear_registered_servers,
    register_servers,
)
from agent.sources.kbh_servers import SETTING

INTEGRATION_ID = "0b7e4f7a-1c2d-4e3f-9a8b-7c6d5e4f3a2b"
DEVICES = 12


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> TlsIdentity:
    """The sandbox's one self-signed certificate for every Business Hub server."""
    return make_certificate(tmp_path_factory.mktemp("kbh-client"), "kbh")


@pytest.fixture(scope="module")
def servers(cert: TlsIdentity) -> Iterator[dict[str, KbhEmulator]]:
    """Production, beta and test, each with its own small fleet."""
    started: dict[str, KbhEmulator] = {}
    try:
        for environment in ENVIRONMENTS:
            fleet = seed.make_fleet(environment, 5, seed=4, devices=DEVICES)
            started[environment] = KbhEmulator(
                fleet, environment=environment, tls=cert, seed=4
            ).start()
        yield started
    finally:
        for emulator in started.values():
            emulator.stop()


@pytest.fixture
def table(servers: dict[str, KbhEmulator], cert: TlsIdentity) -> ServerTable:
    """The shipped (empty) table with the three sandbox servers registered."""
    made = ServerTable(KNOWN_SERVERS)
    made.register({n: (e.url, str(cert.cert_path)) for n, e in servers.items()})
    return made


@pytest.fixture(autouse=True)
def _reset(servers: dict[str, KbhEmulator]) -> Iterator[None]:
    """Faults, sessions and token lifetime back to normal after each test."""
    yield
    for emulator in servers.values():
        emulator.faults = type(emulator.faults)()
        emulator.token_lifetime = TOKEN_LIFETIME
        emulator.expire_sessions()


class Made:
    """Clients made by a test, the waits they asked for, and their closing."""

    def __init__(self, servers: dict[str, KbhEmulator], table: ServerTable) -> None:
        self.servers = servers
        self.table = table
        self.waits: list[float] = []
        self.clients: list[KbhClient] = []

    def __call__(
        self,
        server: str | Callable[[], str] = "production",
        *,
        account: str = "production",
        email: str | None = None,
        password: str | None = None,
        **kwargs,
    ) -> KbhClient:
        """A client of ``server`` signed in as ``account``'s administrator."""
        info = self.servers[account].describe()
        kwargs.setdefault("table", self.table)
        kwargs.setdefault("timeout", (2.0, 5.0))
        client = KbhClient(
            info["email"] if email is None else email,
            info["password"] if password is None else password,
            server=server,
            integration_id=INTEGRATION_ID,
            sleep=self.waits.append,
            **kwargs,
        )
        self.clients.append(client)
        return client


@pytest.fixture
def make(servers: dict[str, KbhEmulator], table: ServerTable) -> Iterator[Made]:
    """A factory of clients signed in as an environment's administrator."""
    made = Made(servers, table)
    yield made
    for client in made.clients:
        client.close()


@pytest.fixture
def production(servers: dict[str, KbhEmulator]) -> KbhEmulator:
    """The production server."""
    return servers["production"]


def calls(emulator: KbhEmulator, method: str, path: str) -> int:
    """How often the emulator has been asked ``method path``."""
    return emulator.calls[f"{method} {path}"]


def devices_path(tenant: seed.Tenant) -> str:
    """The device list path of a company."""
    return f"/api/v1/companies/{tenant.uid}/devices"


def closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Reading.


def test_check_signs_in_and_lists_the_first_page(make: Made, production) -> None:
    client = make(page_size=2)
    sign_ins = calls(production, "POST", "/api/v1/session")

    first = client.check()

    fleet = production.fleet.tenants
    assert [t.id for t in first] == [t.uid for t in fleet[:2]]
    assert all(t.source == records.KBH for t in first)
    assert calls(production, "POST", "/api/v1/session") == sign_ins + 1
    assert INTEGRATION_ID in production.state()["integration_ids"]


def test_companies_page_through_the_whole_account(make: Made, production) -> None:
    client = make(page_size=2)
    before = calls(production, "GET", "/api/v1/companies")

    companies = list(client.companies())

    fleet = production.fleet.tenants
    assert companies == [
        records.Tenant(records.KBH, t.uid, t.name, tuple(t.workspaces)) for t in fleet
    ]
    assert any("office365" in c.workspaces for c in companies)
    assert calls(production, "GET", "/api/v1/companies") - before == 3


def test_devices_are_records_read_lazily_page_by_page(make: Made, production) -> None:
    client = make(page_size=5)
    tenant = production.fleet.tenants[0]
    before = calls(production, "GET", devices_path(tenant))

    devices = client.devices(tenant.uid)
    first = next(devices)
    after_one = calls(production, "GET", devices_path(tenant)) - before
    rest = list(devices)

    assert after_one == 1
    listed = [first, *rest]
    assert [d.id for d in listed] == [d.id for d in tenant.devices]
    for device, seeded in zip(listed, tenant.devices, strict=True):
        assert device.tenant_id == tenant.uid
        assert (device.name, device.kind) == (seeded.name, seeded.kind)
        assert device.status == seeded.status
        assert device.problems == frozenset(seeded.problems)
        assert device.last_seen == seeded.last_seen
        assert device.last_seen.tzinfo is not None
    assert calls(production, "GET", devices_path(tenant)) - before == 3


def test_device_problems_are_our_words(make: Made, production) -> None:
    tenant = production.fleet.tenants[1]
    device = tenant.devices[0]
    production.add_events(
        {
            "problems": [
                {
                    "tenant": tenant.uid,
                    "device": device.id,
                    "add": ["not_protected", "databases_outdated", "not_seen"],
                }
            ]
        }
    )

    listed = next(make().devices(tenant.uid))

    assert listed.id == device.id
    assert {
        records.NOT_PROTECTED,
        records.DATABASES_OUTDATED,
        records.NOT_SEEN,
    } <= listed.problems
    assert listed.status == "critical"


def test_license_usage_names_the_devices_on_each_license(
    make: Made, production
) -> None:
    tenant = next(t for t in production.fleet.tenants if "office365" in t.workspaces)
    client = make(page_size=5)

    usage = client.license_usage(tenant.uid)

    assert [u.license_id for u in usage] == [lic.serial for lic in tenant.licenses]
    for used, lic in zip(usage, tenant.licenses, strict=True):
        assert used.tenant_id == tenant.uid
        assert (used.product, used.kind, used.state) == (
            lic.product,
            lic.kind,
            lic.state,
        )
        assert (used.seats, used.expires) == (lic.seats, lic.expires)
        assert used.device_ids == tuple(d.id for d in tenant.devices_using(lic.serial))
        assert used.mailboxes == lic.mailboxes_used
    assert any(u.mailboxes > 0 for u in usage)
    kinds = {d.id: d.kind for d in tenant.devices}
    billed = {kinds[i] for u in usage if u.billable() for i in u.device_ids}
    assert {"workstation", "server"} <= billed


def test_events_read_only_what_is_new(make: Made, production) -> None:
    client = make()
    tenant = production.fleet.tenants[0]
    seen: list[records.SecurityEvent] = []
    cursor = ""
    for _ in range(50):
        page = client.events(tenant.uid, cursor, limit=3)
        assert len(page.events) <= 3
        if not page.events:
            assert page.cursor == cursor
            break
        seen += page.events
        cursor = page.cursor
    assert [e.id for e in seen] == [str(e.id) for e in tenant.events]
    assert all(e.time.tzinfo is not None for e in seen)
    assert {e.severity for e in seen} <= set(records.SEVERITIES)

    raised = production.add_events(
        {"events": [{"tenant": tenant.uid, "severity": "critical", "count": 2}]}
    )
    new = client.events(tenant.uid, cursor, limit=100)
    again = client.events(tenant.uid, new.cursor, limit=100)

    assert [e.id for e in new.events] == [str(e["id"]) for e in raised["events"]]
    assert all(e.severity == "critical" for e in new.events)
    assert new.events[0].device_id and new.events[0].description
    assert again.events == [] and again.cursor == new.cursor


# Sessions.


def test_session_expiring_mid_read_loses_and_repeats_no_device(
    make: Made, production, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent")
    client = make(page_size=3)
    tenant = production.fleet.tenants[2]
    sign_ins = calls(production, "POST", "/api/v1/session")

    devices = client.devices(tenant.uid)
    head = [next(devices) for _ in range(4)]
    tokens = list(production.sessions)
    production.expire_sessions()
    tail = list(devices)

    ids = [d.id for d in head + tail]
    assert ids == [d.id for d in tenant.devices]
    assert calls(production, "POST", "/api/v1/session") - sign_ins == 2
    assert "signing in again" in caplog.text
    assert production.describe()["password"] not in caplog.text
    assert not any(token in caplog.text for token in tokens)
    assert not any(token in caplog.text for token in production.sessions)


def test_short_token_lifetime_is_renewed_between_calls(make: Made, production):
    production.token_lifetime = 0.2
    client = make(page_size=4)
    tenant = production.fleet.tenants[3]
    sign_ins = calls(production, "POST", "/api/v1/session")

    usage = client.license_usage(tenant.uid)
    production.expire_sessions()
    again = client.license_usage(tenant.uid)

    assert usage == again
    assert sum(len(u.device_ids) for u in usage) > 0
    assert calls(production, "POST", "/api/v1/session") - sign_ins >= 2


# Refusals.


def test_wrong_password_names_the_field(make: Made, production) -> None:
    email = production.describe()["email"]
    client = make(password="Not-The-Password-42")

    with pytest.raises(WrongCredentials) as caught:
        client.check()

    error = caught.value
    assert error.field == "password"
    assert error.system == "Business Hub"
    assert email in str(error) and "password" in str(error)
    assert "Not-The-Password-42" not in str(error)


def test_an_email_that_is_no_address_is_refused_before_sending(
    make: Made, production
) -> None:
    sign_ins = calls(production, "POST", "/api/v1/session")

    with pytest.raises(WrongCredentials) as caught:
        list(make(email="admin.production.msp.example").companies())

    assert caught.value.field == "email"
    assert "not an email address" in str(caught.value)
    assert calls(production, "POST", "/api/v1/session") == sign_ins


def test_disabled_account_is_account_inactive(make: Made, production) -> None:
    info = production.describe()
    client = make(email=info["disabled_email"], password=info["disabled_password"])

    with pytest.raises(AccountInactive) as caught:
        client.check()

    assert caught.value.field == "email"
    assert info["disabled_email"] in str(caught.value)
    assert "disabled" in str(caught.value) and "administrator" in str(caught.value)
    assert info["disabled_password"] not in str(caught.value)


def test_unknown_kes_cloud_server_is_a_config_error(make: Made) -> None:
    client = make("staging")

    with pytest.raises(ConfigError) as caught:
        client.companies()

    assert caught.value.key == SETTING
    assert "KESCloudServer='staging'" in str(caught.value)
    assert "production, beta or test" in str(caught.value)


def test_the_shipped_table_knows_no_address(make: Made, servers, cert) -> None:
    assert set(KNOWN_SERVERS) == set(ENVIRONMENTS)
    assert not any(KNOWN_SERVERS.values())
    shipped = make("beta", account="beta", table=None)
    only_production = ServerTable(KNOWN_SERVERS)
    only_production.register({"production": (servers["production"].url, None)})

    with pytest.raises(ConfigError) as caught:
        shipped.check()
    with pytest.raises(ConfigError) as partly:
        make("beta", table=only_production).check()

    message = str(caught.value)
    assert caught.value.key == SETTING
    assert message.startswith(
        "No Business Hub address is known for KESCloudServer=beta"
    )
    assert "servers it knows: none" in message
    assert "servers it knows: production" in str(partly.value)
    try:
        register_servers({"beta": (servers["beta"].url, str(cert.cert_path))})
        assert shipped.check()
    finally:
        clear_registered_servers()
    with pytest.raises(ConfigError):
        shipped.check()


def test_unknown_company_names_its_id(make: Made) -> None:
    missing = str(uuid.uuid4())

    with pytest.raises(CompanyNotFound) as caught:
        list(make().devices(missing))

    assert caught.value.company_id == missing
    assert missing in str(caught.value) and SETTING in str(caught.value)
    assert caught.value.field == "tenant"


def test_a_cursor_of_another_company_is_refused(make: Made, production) -> None:
    client = make()
    one, other = production.fleet.tenants[:2]
    cursor = client.events(one.uid, "", limit=1).cursor

    with pytest.raises(CursorRefused) as caught:
        client.events(other.uid, cursor)

    assert other.uid in str(caught.value)


# KESCloudServer.


@pytest.fixture
def shared_account(servers: dict[str, KbhEmulator]) -> Iterator[Account]:
    """One technician with the same email and password on all three servers."""
    saved = {name: emulator.account for name, emulator in servers.items()}
    account = Account("tech@msp.example", "Same-Password-1")
    for emulator in servers.values():
        emulator.account = account
    yield account
    for name, emulator in servers.items():
        emulator.account = saved[name]


def test_a_change_of_kes_cloud_server_is_followed_at_the_next_call(
    make: Made, servers, shared_account, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent.sources")
    settings = [Settings()]
    client = make(
        lambda: settings[0].kes_cloud_server,
        email=shared_account.email,
        password=shared_account.password,
    )
    sign_ins = {n: calls(e, "POST", "/api/v1/session") for n, e in servers.items()}

    first = [t.name for t in client.companies()]
    settings[0] = dataclasses.replace(settings[0], kes_cloud_server="beta")
    second = [t.name for t in client.companies()]
    settings[0] = dataclasses.replace(settings[0], kes_cloud_server="test")
    third = [t.name for t in client.check()]

    for result, name in ((first, "production"), (second, "beta"), (third, "test")):
        assert result == [t.name for t in servers[name].fleet.tenants]
        assert calls(servers[name], "POST", "/api/v1/session") > sign_ins[name]
    assert "Business Hub server changed: production -> beta" in caplog.messages
    assert "Business Hub server changed: beta -> test" in caplog.messages


def test_a_list_being_read_stays_on_its_server(make: Made, servers, shared_account):
    chosen = ["production"]
    client = make(
        lambda: chosen[0],
        email=shared_account.email,
        password=shared_account.password,
        page_size=2,
    )

    companies = client.companies()
    head = next(companies)
    chosen[0] = "beta"
    rest = list(companies)
    now = list(client.companies())

    production = [t.uid for t in servers["production"].fleet.tenants]
    assert [c.id for c in [head, *rest]] == production
    assert [c.id for c in now] == [t.uid for t in servers["beta"].fleet.tenants]


def test_after_a_change_the_other_server_is_signed_in_afresh(make: Made) -> None:
    chosen = ["production"]
    client = make(lambda: chosen[0])
    assert client.check()

    chosen[0] = "beta"
    with pytest.raises(WrongCredentials) as caught:
        list(client.companies())

    assert "Business Hub (beta)" in str(caught.value)
    assert caught.value.field == "password"


# Failures on the way.


def test_a_short_retry_after_is_waited_for(make: Made, production) -> None:
    client = make()
    client.check()
    production.faults.next_errors = 1
    production.faults.error_status = 429

    companies = list(client.companies())

    assert len(companies) == len(production.fleet.tenants)
    assert make.waits == [1.0]


def test_a_long_retry_after_goes_to_the_caller(make: Made, production) -> None:
    client = make()
    client.check()
    production.faults.rate_limit_rate = 1.0
    production.faults.retry_after = 120

    with pytest.raises(RateLimited) as caught:
        list(client.companies())

    assert caught.value.retry_after == 120
    assert "slow down for 120 s" in str(caught.value)
    assert make.waits == []


def test_server_errors_are_retried_and_reported_once(
    make: Made, production, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent.sources")
    client = make(attempts=3)
    tenant = production.fleet.tenants[0]
    client.check()
    production.faults.next_errors = 2
    production.faults.error_status = 503
    before = calls(production, "GET", devices_path(tenant))

    assert len(list(client.devices(tenant.uid))) == DEVICES
    assert calls(production, "GET", devices_path(tenant)) - before == 2 + 1
    production.faults.error_rate = 1.0
    production.faults.path_prefix = "/api/v1/companies"
    for _ in range(2):
        with pytest.raises(ServerError) as caught:
            list(client.devices(tenant.uid))
    production.faults.error_rate = 0.0
    list(client.devices(tenant.uid))

    assert caught.value.status == 503
    assert "HTTP 503" in str(caught.value)
    assert "Service Unavailable (injected fault)" in str(caught.value)
    unreachable = [m for m in caplog.messages if "is unreachable" in m]
    back = [m for m in caplog.messages if m == "Business Hub (production) is back"]
    assert len(unreachable) == 1 and len(back) == 1


def test_a_certificate_not_in_the_table_is_not_trusted(
    make: Made, servers, tmp_path: Path
) -> None:
    other = make_certificate(tmp_path, "other")
    unlisted = ServerTable()
    unlisted.register({"production": (servers["production"].url, None)})
    wrong = ServerTable()
    wrong.register({"production": (servers["production"].url, str(other.cert_path))})

    for table in (unlisted, wrong):
        with pytest.raises(CertificateNotTrusted) as caught:
            make(table=table).check()

        assert caught.value.field == SETTING
        assert "does not trust" in str(caught.value)
        assert "self-signed" in str(caught.value)
    assert make.waits == []


def test_nothing_listening_names_the_server(make: Made) -> None:
    gone = ServerTable()
    gone.register({"test": (f"https://127.0.0.1:{closed_port()}", None)})
    client = make("test", table=gone, attempts=2)

    with pytest.raises(NothingListening) as caught:
        client.check()

    assert caught.value.field == SETTING
    assert "Business Hub (test)" in str(caught.value)
    assert "firewall" in str(caught.value)
    assert len(make.waits) == 1


def test_the_integration_id_must_be_a_uuid() -> None:
    with pytest.raises(ValueError):
        KbhClient("a@b.example", "p", server="production", integration_id="one")


def test_registration_takes_only_known_servers() -> None:
    table = ServerTable()

    with pytest.raises(ValueError):
        table.register({"staging": ("https://127.0.0.1:1", None)})
    with pytest.raises(ValueError):
        table.register({"beta": ("127.0.0.1:1", None)})
    with pytest.raises(ConfigError):
        table.resolve("beta")
