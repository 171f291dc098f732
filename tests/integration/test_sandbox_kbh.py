"""The Business Hub emulator over HTTPS: sign-in, companies, paging, events, faults."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from agent.sandbox import seed
from agent.sandbox.certs import TlsIdentity, make_certificate
from agent.sandbox.kbh import ENVIRONMENTS, MAX_LIMIT, TOKEN_LIFETIME, KbhEmulator

INTEGRATION_ID = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
TIMEOUT = 5
#: A cursor that never moves on must fail the test, not loop until the timeout.
MAX_PAGES = 100


class Client:
    """Raw HTTPS calls to one emulator, trusting its self-signed certificate."""

    def __init__(self, emulator: KbhEmulator, cert: TlsIdentity) -> None:
        self.emulator = emulator
        self.http = requests.Session()
        # The environment's CA bundle variables would override a session's verify.
        self.http.trust_env = False
        self.verify = str(cert.cert_path)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request to a path of the emulator."""
        kwargs.setdefault("timeout", TIMEOUT)
        kwargs.setdefault("verify", self.verify)
        return self.http.request(method, self.emulator.url + path, **kwargs)

    def sign_in(self, email: str | None = None, password: str | None = None) -> str:
        """Sign in (as the environment's administrator by default); the token."""
        info = self.emulator.describe()
        body = {
            "email": email or info["email"],
            "password": password or info["password"],
        }
        reply = self.call("POST", "/api/v1/session", json=body)
        assert reply.status_code == 200, reply.text
        return reply.json()["token"]

    def get(
        self,
        path: str,
        token: str,
        integration_id: str | None = INTEGRATION_ID,
        **params,
    ) -> requests.Response:
        """A data call with the token and, unless None, the integration id."""
        headers = {"Authorization": f"Bearer {token}"}
        if integration_id is not None:
            headers["X-Integration-Id"] = integration_id
        return self.call("GET", path, headers=headers, params=params)

    def read_all(self, path: str, token: str, limit: int) -> list[dict]:
        """Every item of an offset-paged list, checking that totals agree."""
        items: list[dict] = []
        total = None
        while total is None or len(items) < total:
            reply = self.get(path, token, offset=len(items), limit=limit)
            assert reply.status_code == 200, reply.text
            page = reply.json()
            assert total in (None, page["total"])
            total = page["total"]
            assert page["items"], "a page came back empty before the total"
            assert len(page["items"]) <= limit
            items += page["items"]
        assert len(items) == total
        return items

    def read_events(self, company: str, token: str, after: str | None, limit: int):
        """One page of events after a cursor: (items, cursor)."""
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        reply = self.get(f"/api/v1/companies/{company}/events", token, **params)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        assert set(page) == {"items", "cursor"}
        assert isinstance(page["cursor"], str) and page["cursor"]
        return page["items"], page["cursor"]

    def read_new_events(
        self, company: str, token: str, after: str | None, limit: int
    ) -> tuple[list[dict], str]:
        """Every event after a cursor, page by page: (items, the last cursor)."""
        items: list[dict] = []
        for _ in range(MAX_PAGES):
            page, after = self.read_events(company, token, after, limit)
            if not page:
                assert after is not None
                return items, after
            items += page
        raise AssertionError(f"the events never ran out after {MAX_PAGES} pages")

    def sandbox(self, name: str, payload: dict) -> dict:
        """POST to one of the sandbox's own endpoints."""
        reply = self.call("POST", f"/_sandbox/{name}", json=payload)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def state(self) -> dict:
        """What the emulator holds."""
        return self.call("GET", "/_sandbox/state").json()


def assert_error(reply: requests.Response, status: int, code: str) -> str:
    """The reply is the JSON error shape with that status and code; its message."""
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


def parse_utc(text: str) -> dt.datetime:
    """An ISO 8601 UTC time ending in Z."""
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text[:-1] + "+00:00")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> TlsIdentity:
    """One self-signed identity for every test server."""
    return make_certificate(tmp_path_factory.mktemp("kbh"), "kbh")


@pytest.fixture(scope="module")
def servers(cert: TlsIdentity) -> Iterator[dict[str, KbhEmulator]]:
    """The three Business Hub servers, each with its own fleet, as the runner does."""
    started = {}
    try:
        for environment in ENVIRONMENTS:
            fleet = seed.make_fleet(environment, 5, seed=3, devices=12)
            started[environment] = KbhEmulator(
                fleet, environment=environment, tls=cert, seed=3
            ).start()
        yield started
    finally:
        for emulator in started.values():
            emulator.stop()


@pytest.fixture
def clients(
    servers: dict[str, KbhEmulator], cert: TlsIdentity
) -> Iterator[dict[str, Client]]:
    """A client per environment; faults and token lifetime are reset afterwards."""
    made = {name: Client(emulator, cert) for name, emulator in servers.items()}
    yield made
    for name, client in made.items():
        client.sandbox("faults", {"reset": True})
        servers[name].token_lifetime = TOKEN_LIFETIME
        client.http.close()


@pytest.fixture
def kbh(clients: dict[str, Client]) -> Client:
    """The production server's client."""
    return clients["production"]


def first_company(kbh: Client) -> seed.Tenant:
    """The first company of the server's fleet."""
    return kbh.emulator.fleet.tenants[0]


def test_sign_in_gives_a_bearer_token(kbh: Client) -> None:
    info = kbh.emulator.describe()
    reply = kbh.call(
        "POST",
        "/api/v1/session",
        json={"email": info["email"], "password": info["password"]},
    )

    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"token", "expires_in"}
    assert body["expires_in"] == TOKEN_LIFETIME
    assert kbh.get("/api/v1/companies", body["token"]).status_code == 200
    assert info["email"].endswith(".example")


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"email": "admin@production.msp.example", "password": "wrong"}, 401, None),
        ({"email": "nobody@production.msp.example", "password": "x"}, 401, None),
        ({"email": "admin@production.msp.example"}, 400, "invalid_request"),
        (["not", "an", "object"], 400, "invalid_request"),
    ],
)
def test_sign_in_refuses_bad_credentials(kbh: Client, body, status, code) -> None:
    reply = kbh.call("POST", "/api/v1/session", json=body)

    assert_error(reply, status, code or "invalid_credentials")


def test_sign_in_refuses_broken_json(kbh: Client) -> None:
    reply = kbh.call("POST", "/api/v1/session", data=b"{not json")

    assert_error(reply, 400, "invalid_request")


def test_disabled_account_is_refused_with_403(kbh: Client) -> None:
    info = kbh.emulator.describe()
    body = {"email": info["disabled_email"], "password": info["disabled_password"]}

    reply = kbh.call("POST", "/api/v1/session", json=body)

    message = assert_error(reply, 403, "account_disabled")
    assert info["disabled_email"] in message
    wrong = {"email": info["disabled_email"], "password": "guess"}
    wrong_reply = kbh.call("POST", "/api/v1/session", json=wrong)
    assert_error(wrong_reply, 401, "invalid_credentials")


def test_data_calls_need_a_known_token(kbh: Client) -> None:
    no_token = kbh.call(
        "GET", "/api/v1/companies", headers={"X-Integration-Id": INTEGRATION_ID}
    )
    unknown = kbh.get("/api/v1/companies", "made-up-token")

    assert_error(no_token, 401, "unauthorized")
    assert_error(unknown, 401, "unauthorized")


def test_token_expires_after_its_lifetime(kbh: Client) -> None:
    kbh.emulator.token_lifetime = 0.4
    token = kbh.sign_in()
    assert kbh.get("/api/v1/companies", token).status_code == 200

    time.sleep(0.5)
    reply = kbh.get("/api/v1/companies", token)

    assert_error(reply, 401, "token_expired")
    assert kbh.get("/api/v1/companies", kbh.sign_in()).status_code == 200


def test_expire_sessions_fault_ends_every_token(kbh: Client) -> None:
    tokens = [kbh.sign_in(), kbh.sign_in()]
    assert kbh.state()["active_tokens"] >= 2

    kbh.sandbox("faults", {"expire_sessions": True})

    for token in tokens:
        assert_error(kbh.get("/api/v1/companies", token), 401, "token_expired")
    assert kbh.state()["active_tokens"] == 0


@pytest.mark.parametrize(
    "integration_id, code",
    [(None, "missing_integration_id"), ("integration-1", "invalid_integration_id")],
)
def test_data_calls_need_an_integration_uuid(kbh: Client, integration_id, code) -> None:
    token = kbh.sign_in()

    reply = kbh.get("/api/v1/companies", token, integration_id=integration_id)

    assert "X-Integration-Id" in assert_error(reply, 400, code)


def test_state_records_the_integration_ids_seen(kbh: Client) -> None:
    token = kbh.sign_in()
    new_id = str(uuid.uuid4())

    assert kbh.get("/api/v1/companies", token, integration_id=new_id.upper()).ok

    assert new_id in kbh.state()["integration_ids"]


def test_companies_page_up_to_the_whole_fleet(kbh: Client) -> None:
    token = kbh.sign_in()

    companies = kbh.read_all("/api/v1/companies", token, limit=2)

    fleet = kbh.emulator.fleet.tenants
    assert [c["id"] for c in companies] == [t.uid for t in fleet]
    assert [c["name"] for c in companies] == [t.name for t in fleet]
    for company, tenant in zip(companies, fleet, strict=True):
        assert set(company) == {"id", "name", "workspaces"}
        assert company["workspaces"] == tenant.workspaces
    assert {"kes_cloud", "office365"} <= {w for c in companies for w in c["workspaces"]}


def test_devices_page_up_with_their_problems(kbh: Client) -> None:
    token = kbh.sign_in()
    tenant = first_company(kbh)

    devices = kbh.read_all(f"/api/v1/companies/{tenant.uid}/devices", token, limit=5)

    assert [d["id"] for d in devices] == [d.id for d in tenant.devices]
    for device, seeded in zip(devices, tenant.devices, strict=True):
        assert set(device) == {
            "id",
            "name",
            "kind",
            "status",
            "problems",
            "last_seen",
            "license_id",
        }
        assert device["license_id"] == seeded.license_serial
        assert device["kind"] in ("workstation", "server", "mobile")
        assert device["status"] == seeded.status
        assert device["problems"] == sorted(seeded.problems)
        assert parse_utc(device["last_seen"]) == seeded.last_seen


def test_devices_name_the_licenses_the_licenses_count(kbh: Client) -> None:
    token = kbh.sign_in()
    tenant = first_company(kbh)
    path = f"/api/v1/companies/{tenant.uid}"

    devices = kbh.read_all(f"{path}/devices", token, limit=7)
    licenses = kbh.get(f"{path}/licenses", token).json()["items"]

    serials = {lic["id"] for lic in licenses}
    named = [d["license_id"] for d in devices if d["license_id"] is not None]
    assert named and set(named) <= serials
    for lic in licenses:
        assert named.count(lic["id"]) == lic["devices_used"]
    kinds = {d["kind"] for d in devices if d["license_id"] == licenses[0]["id"]}
    assert "workstation" in kinds


def test_device_problems_change_through_the_sandbox(kbh: Client) -> None:
    token = kbh.sign_in()
    tenant = first_company(kbh)
    device = tenant.devices[0]
    path = f"/api/v1/companies/{tenant.uid}/devices"

    kbh.sandbox(
        "events",
        {
            "problems": [
                {"tenant": tenant.uid, "device": device.id, "add": ["not_protected"]}
            ]
        },
    )
    listed = kbh.get(path, token, limit=1).json()["items"][0]
    kbh.sandbox(
        "events",
        {
            "problems": [
                {"tenant": tenant.uid, "device": device.id, "clear": ["not_protected"]}
            ]
        },
    )

    assert listed["status"] == "critical"
    assert "not_protected" in listed["problems"]
    assert (
        "not_protected"
        not in kbh.get(path, token, limit=1).json()["items"][0]["problems"]
    )


def test_licenses_count_the_devices_using_them(kbh: Client) -> None:
    token = kbh.sign_in()
    tenant = next(t for t in kbh.emulator.fleet.tenants if "office365" in t.workspaces)

    reply = kbh.get(f"/api/v1/companies/{tenant.uid}/licenses", token)

    assert reply.status_code == 200
    licenses = reply.json()["items"]
    assert [lic["id"] for lic in licenses] == [lic.serial for lic in tenant.licenses]
    for lic, seeded in zip(licenses, tenant.licenses, strict=True):
        assert set(lic) == {
            "id",
            "product",
            "kind",
            "state",
            "seats",
            "expires",
            "devices_used",
            "mailboxes_used",
        }
        assert lic["kind"] in ("commercial", "trial")
        assert lic["state"] == seeded.state in seed.LICENSE_STATES
        assert lic["devices_used"] == len(tenant.devices_using(seeded.serial))
        assert parse_utc(lic["expires"]) == seeded.expires
    assert sum(lic["devices_used"] for lic in licenses) > 0
    assert any(lic["mailboxes_used"] > 0 for lic in licenses)


def test_events_cursor_reads_only_new_events(kbh: Client) -> None:
    token = kbh.sign_in()
    tenant = first_company(kbh)
    seen, cursor = kbh.read_new_events(tenant.uid, token, None, limit=3)
    assert [e["id"] for e in seen] == [str(e.id) for e in tenant.events]
    for event in seen:
        assert set(event) == {
            "id",
            "time",
            "severity",
            "type",
            "device_id",
            "device_name",
            "description",
            "problem_id",
        }
        assert event["problem_id"] is None
        assert event["severity"] in (
            "critical",
            "functional_failure",
            "warning",
            "info",
        )
        parse_utc(event["time"])

    done = kbh.sandbox(
        "events",
        {"events": [{"tenant": tenant.uid, "severity": "critical", "count": 2}]},
    )
    new, cursor = kbh.read_events(tenant.uid, token, cursor, limit=100)
    again, _ = kbh.read_events(tenant.uid, token, cursor, limit=100)

    assert [e["id"] for e in new] == [str(e["id"]) for e in done["events"]]
    assert all(e["severity"] == "critical" for e in new)
    assert again == []


def test_events_added_between_pages_are_read_once(kbh: Client) -> None:
    token = kbh.sign_in()
    tenant = kbh.emulator.fleet.tenants[1]
    first, cursor = kbh.read_events(tenant.uid, token, None, limit=3)

    kbh.sandbox(
        "events",
        {"events": [{"tenant": tenant.name, "severity": "warning", "count": 4}]},
    )
    rest, _ = kbh.read_new_events(tenant.uid, token, cursor, limit=3)

    ids = [e["id"] for e in first + rest]
    assert len(ids) == len(set(ids))
    assert ids == [str(e.id) for e in tenant.events]


def test_a_foreign_or_broken_cursor_is_refused(kbh: Client) -> None:
    token = kbh.sign_in()
    one, other = kbh.emulator.fleet.tenants[:2]
    _, cursor = kbh.read_events(one.uid, token, None, limit=1)

    foreign = kbh.get(f"/api/v1/companies/{other.uid}/events", token, after=cursor)
    broken = kbh.get(f"/api/v1/companies/{one.uid}/events", token, after="%%%")

    assert "after" in assert_error(foreign, 400, "invalid_cursor")
    assert_error(broken, 400, "invalid_cursor")


@pytest.mark.parametrize(
    "params, name",
    [
        ({"limit": 0}, "limit"),
        ({"limit": MAX_LIMIT + 1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": "1_0"}, "offset"),
    ],
)
def test_bad_paging_is_refused_naming_the_parameter(kbh: Client, params, name) -> None:
    token = kbh.sign_in()

    reply = kbh.get("/api/v1/companies", token, **params)

    assert name in assert_error(reply, 400, "invalid_parameter")


def test_unknown_company_path_and_method(kbh: Client) -> None:
    token = kbh.sign_in()
    headers = {"Authorization": f"Bearer {token}", "X-Integration-Id": INTEGRATION_ID}

    company = kbh.get(f"/api/v1/companies/{uuid.uuid4()}/devices", token)
    path = kbh.get("/api/v1/contracts", token)
    method = kbh.call("DELETE", "/api/v1/companies", headers=headers)
    session_get = kbh.call("GET", "/api/v1/session")

    assert_error(company, 404, "company_not_found")
    assert_error(path, 404, "not_found")
    assert_error(method, 405, "method_not_allowed")
    assert method.headers["Allow"] == "GET"
    assert_error(session_get, 405, "method_not_allowed")


def test_environments_hold_their_own_companies_and_accounts(
    clients: dict[str, Client],
) -> None:
    tokens = {name: client.sign_in() for name, client in clients.items()}
    names = {
        name: {
            c["name"] for c in client.read_all("/api/v1/companies", tokens[name], 50)
        }
        for name, client in clients.items()
    }
    production, beta = clients["production"], clients["beta"]
    other = production.emulator.describe()

    assert names["production"].isdisjoint(names["beta"])
    assert names["beta"].isdisjoint(names["test"])
    assert names["production"].isdisjoint(names["test"])
    emails = {c.emulator.describe()["email"] for c in clients.values()}
    passwords = {c.emulator.describe()["password"] for c in clients.values()}
    assert len(emails) == len(passwords) == 3
    assert_error(
        beta.get("/api/v1/companies", tokens["production"]), 401, "unauthorized"
    )
    refused = beta.call(
        "POST",
        "/api/v1/session",
        json={"email": other["email"], "password": other["password"]},
    )
    assert_error(refused, 401, "invalid_credentials")


def test_rate_limit_fault_answers_429_with_retry_after(kbh: Client) -> None:
    token = kbh.sign_in()
    kbh.sandbox("faults", {"rate_limit_rate": 1.0, "retry_after": 7})

    reply = kbh.get("/api/v1/companies", token)

    assert_error(reply, 429, "rate_limited")
    assert reply.headers["Retry-After"] == "7"


def test_injected_server_errors_keep_the_error_shape(kbh: Client) -> None:
    token = kbh.sign_in()
    kbh.sandbox("faults", {"next_errors": 1, "error_status": 503})

    failed = kbh.get("/api/v1/companies", token)
    recovered = kbh.get("/api/v1/companies", token)

    assert_error(failed, 503, "service_unavailable")
    assert recovered.status_code == 200


def test_state_counts_what_each_company_holds(kbh: Client) -> None:
    state = kbh.state()

    fleet = kbh.emulator.fleet.tenants
    assert state["environment"] == "production"
    assert [c["id"] for c in state["companies"]] == [t.uid for t in fleet]
    for company, tenant in zip(state["companies"], fleet, strict=True):
        assert company["devices"] == len(tenant.devices)
        assert company["device_names"] == [d.name for d in tenant.devices]
        assert company["licenses"] == len(tenant.licenses)
        assert company["events"] == len(tenant.events)


def test_sandbox_refuses_changes_to_unknown_companies(kbh: Client) -> None:
    reply = kbh.call(
        "POST", "/_sandbox/events", json={"events": [{"tenant": "No Such Company"}]}
    )

    assert reply.status_code == 400
    assert "No Such Company" in reply.json()["error"]


def test_a_thousand_companies_page_quickly(cert: TlsIdentity) -> None:
    fleet = seed.make_fleet("production", 1000, seed=2, devices=2)
    emulator = KbhEmulator(fleet, environment="production", tls=cert).start()
    client = Client(emulator, cert)
    try:
        token = client.sign_in()
        started = time.monotonic()

        companies = client.read_all("/api/v1/companies", token, limit=MAX_LIMIT)

        assert len({c["id"] for c in companies}) == 1000
        assert time.monotonic() - started < 5
    finally:
        client.http.close()
        emulator.stop()
