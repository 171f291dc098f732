"""The Business Hub emulator's Office 365 problems over HTTPS: seeded, raised again,
cleared, shown on the subscription, and read by the real client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from agent.errors import ProtocolError
from agent.sandbox import office365, seed
from agent.sandbox.certs import TlsIdentity, make_certificate
from agent.sandbox.kbh import KbhEmulator
from agent.sources import records
from agent.sources.kbh import CompanyNotFound, KbhClient
from tests.integration.emulator_support import signed_in_client
from tests.integration.test_sandbox_kbh import (
    INTEGRATION_ID,
    Client,
    assert_error,
    parse_utc,
)

PROBLEM_FIELDS = {"id", "kind", "mailbox", "description", "since"}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> TlsIdentity:
    """The server's self-signed certificate."""
    return make_certificate(tmp_path_factory.mktemp("o365"), "kbh")


@pytest.fixture(scope="module")
def emulator(cert: TlsIdentity) -> Iterator[KbhEmulator]:
    """A production server of six companies; the third and sixth have Office 365."""
    fleet = seed.make_fleet("production", 6, seed=5, devices=4)
    started = KbhEmulator(fleet, environment="production", tls=cert).start()
    yield started
    started.stop()


@pytest.fixture
def kbh(emulator: KbhEmulator, cert: TlsIdentity) -> Iterator[Client]:
    """Raw calls to the server."""
    client = Client(emulator, cert)
    yield client
    client.http.close()


@pytest.fixture
def client(emulator: KbhEmulator, cert: TlsIdentity) -> Iterator[KbhClient]:
    """The agent's Business Hub client, signed in to the server."""
    with signed_in_client(emulator, cert, INTEGRATION_ID) as made:
        yield made


def with_office365(emulator: KbhEmulator) -> list[seed.Tenant]:
    """The companies with the Office 365 workspace."""
    return [t for t in emulator.fleet.tenants if office365.WORKSPACE in t.workspaces]


def problems(kbh: Client, token: str, company: seed.Tenant) -> list[dict]:
    """The company's current Office 365 problems, as the wire lists them."""
    reply = kbh.get(f"/api/v1/companies/{company.uid}/office365/problems", token)
    assert reply.status_code == 200, reply.text
    assert set(reply.json()) == {"items"}
    return list(reply.json()["items"])


def events(kbh: Client, token: str, company: seed.Tenant) -> list[dict]:
    """Every event of the company."""
    found, _ = kbh.read_new_events(company.uid, token, None, limit=100)
    return found


def test_office365_companies_start_with_an_unprotected_mailbox(
    kbh: Client, emulator: KbhEmulator
) -> None:
    token = kbh.sign_in()
    chosen = with_office365(emulator)
    assert [t.number for t in chosen] == [3, 6]

    for company in emulator.fleet.tenants:
        listed = problems(kbh, token, company)
        raised = [e for e in events(kbh, token, company) if e["problem_id"]]
        if company not in chosen:
            assert listed == [] and raised == []
            continue
        (problem,) = listed
        assert set(problem) == PROBLEM_FIELDS
        assert problem["kind"] == "mailbox"
        assert problem["mailbox"].endswith("@" + office365.mailbox_domain(company.name))
        assert problem["mailbox"] in problem["description"]
        (event,) = raised
        assert event["problem_id"] == problem["id"]
        assert event["type"] == "O365_MAILBOX_NOT_PROTECTED"
        assert (event["device_id"], event["device_name"]) == (None, None)
        assert event["severity"] == "warning"
        assert parse_utc(event["time"]) == parse_utc(problem["since"])
        assert dt.datetime.now(dt.UTC) - parse_utc(problem["since"]) < dt.timedelta(
            days=1
        )


def test_event_ids_still_grow_with_time_in_each_company(emulator: KbhEmulator) -> None:
    for company in emulator.fleet.tenants:
        assert [e.time for e in company.events] == sorted(
            e.time for e in company.events
        )
        assert [e.id for e in company.events] == sorted(e.id for e in company.events)


def test_the_ksc_fleet_has_no_office365_problems_and_refuses_them() -> None:
    fleet = seed.make_fleet("ksc", 6, seed=5, devices=4)

    assert all(not t.office365_problems for t in fleet.tenants)
    assert not any(e.problem_id for t in fleet.tenants for e in t.events)
    with pytest.raises(ValueError, match="KSC holds no Office 365 data"):
        seed.apply_changes(fleet, {"office365": [{"tenant": 3, "raise": "license"}]})


def test_raising_again_repeats_the_problem_and_clearing_ends_it(
    kbh: Client, emulator: KbhEmulator
) -> None:
    token = kbh.sign_in()
    company = with_office365(emulator)[0]
    before = {p["id"] for p in problems(kbh, token, company)}
    _, cursor = kbh.read_new_events(company.uid, token, None, limit=100)
    mailbox = f"new.hire@{office365.mailbox_domain(company.name)}"
    change = {"tenant": company.name, "raise": "mailbox", "mailbox": mailbox}

    first = kbh.sandbox("events", {"office365": [change]})["office365"][0]
    again = kbh.sandbox("events", {"office365": [{**change, "severity": "critical"}]})
    again = again["office365"][0]

    assert first["state"] == "raised" and again["state"] == "repeated"
    assert first["problem"] == again["problem"] and first["problem"] not in before
    assert again["event"] > first["event"]
    listed = {p["id"]: p for p in problems(kbh, token, company)}
    assert set(listed) == before | {first["problem"]}
    assert listed[first["problem"]]["mailbox"] == mailbox
    new, cursor = kbh.read_new_events(company.uid, token, cursor, limit=100)
    assert [(e["id"], e["problem_id"], e["severity"]) for e in new] == [
        (str(first["event"]), first["problem"], "warning"),
        (str(again["event"]), first["problem"], "critical"),
    ]

    cleared = kbh.sandbox(
        "events", {"office365": [{"tenant": company.uid, "clear": mailbox}]}
    )

    assert cleared["office365"] == [
        {
            "tenant": company.name,
            "problem": first["problem"],
            "kind": "mailbox",
            "mailbox": mailbox,
            "event": None,
            "state": "cleared",
        }
    ]
    assert {p["id"] for p in problems(kbh, token, company)} == before
    assert kbh.read_events(company.uid, token, cursor, limit=100)[0] == []
    state = next(c for c in kbh.state()["companies"] if c["id"] == company.uid)
    assert set(state["office365_problems"]) == before


@pytest.mark.parametrize(
    ("reason", "state", "over"),
    [("suspended", "suspended", 0), ("expired", "expired", 0),
     ("seats_exceeded", "active", office365.SEATS_OVER)],
)  # fmt: skip
def test_a_license_problem_shows_on_the_subscription_until_cleared(
    kbh: Client, emulator: KbhEmulator, reason: str, state: str, over: int
) -> None:
    token = kbh.sign_in()
    company = with_office365(emulator)[1]
    path = f"/api/v1/companies/{company.uid}/licenses"
    subscription = company.office365_subscription()
    assert subscription is not None

    def listed() -> dict:
        items = kbh.get(path, token).json()["items"]
        return next(lic for lic in items if lic["id"] == subscription.serial)

    before = listed()
    change = {"tenant": company.number, "raise": "license", "reason": reason}
    done = kbh.sandbox("events", {"office365": [change]})["office365"][0]
    during = listed()
    (problem,) = [p for p in problems(kbh, token, company) if p["kind"] == "license"]
    kbh.sandbox("events", {"office365": [{"tenant": company.uid, "clear": "license"}]})

    assert problem["id"] == done["problem"] and problem["mailbox"] is None
    assert problem["description"] == office365.LICENSE_REASONS[reason][1]
    assert during["state"] == state
    if over:
        assert during["mailboxes_used"] == during["seats"] + over
    assert listed() == before
    assert [p["kind"] for p in problems(kbh, token, company)] == ["mailbox"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"tenant": 1, "raise": "license"}, "has no Office 365 workspace"),
        ({"tenant": 3, "raise": "calendar"}, "Raise one of"),
        ({"tenant": 3, "raise": "mailbox"}, "needs the mailbox's address"),
        ({"tenant": 3, "raise": "license", "reason": "late"}, "Unknown license"),
        ({"tenant": 3, "raise": "license", "severity": "dire"}, "Unknown event"),
        ({"tenant": 3, "clear": "o365-999"}, "No current Office 365 problem"),
    ],
)
def test_bad_office365_changes_are_refused(kbh: Client, change, words) -> None:
    reply = kbh.call("POST", "/_sandbox/events", json={"office365": [change]})

    assert reply.status_code == 400
    assert words in reply.json()["error"]


def test_an_unknown_company_has_no_problem_list(kbh: Client) -> None:
    token = kbh.sign_in()

    reply = kbh.get("/api/v1/companies/nobody/office365/problems", token)

    assert_error(reply, 404, "company_not_found")


def test_the_client_reads_problems_and_the_events_that_raised_them(
    client: KbhClient, emulator: KbhEmulator
) -> None:
    company = with_office365(emulator)[0]
    plain = next(t for t in emulator.fleet.tenants if t not in with_office365(emulator))

    read = client.office365_problems(company.uid)
    page = client.events(company.uid, "", limit=100)

    assert read == [
        records.Office365Problem(
            tenant_id=company.uid,
            id=p.id,
            kind=p.kind,
            description=p.description,
            mailbox=p.mailbox or "",
            since=p.since,
        )
        for p in company.office365_problems
    ]
    raised = [e for e in page.events if e.problem_id]
    # Earlier tests raised and cleared problems here too; their events stay.
    assert {p.id for p in read} <= {e.problem_id for e in raised}
    assert all(e.device_id == "" and e.device_name == "" for e in raised)
    assert all(e.problem_id == "" for e in page.events if e.device_id)
    assert client.office365_problems(plain.uid) == []
    with pytest.raises(CompanyNotFound):
        client.office365_problems("no-such-company")


def test_an_unreadable_problem_is_a_protocol_error(
    client: KbhClient, emulator: KbhEmulator
) -> None:
    company = with_office365(emulator)[0]
    problem = company.office365_problems[0]
    kept = problem.id
    problem.id = ""
    try:
        with pytest.raises(ProtocolError, match="cannot read"):
            client.office365_problems(company.uid)
    finally:
        problem.id = kept
