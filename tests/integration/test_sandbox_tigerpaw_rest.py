"""The Tigerpaw emulator's REST API over real sockets, signed here with hmac."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from agent.sandbox.certs import make_certificate
from agent.sandbox.tigerpaw import TigerpawEmulator
from tests.integration.tigerpaw_support import NAMES, emulator_fixture, reset_faults

tigerpaw = emulator_fixture(seed=3)


@pytest.fixture(autouse=True)
def no_faults(tigerpaw: TigerpawEmulator) -> Iterator[None]:
    """Each test starts and ends without injected faults."""
    yield
    reset_faults(tigerpaw)


def signed(
    base: str,
    keys: dict[str, Any],
    method: str,
    path: str,
    body: Any = None,
    *,
    date: dt.datetime | None = None,
    date_header: str = "Date",
    params: dict[str, Any] | None = None,
    verify: Any = True,
) -> requests.Response:
    """A request signed the way Tigerpaw's REST security describes."""
    date_text = email.utils.format_datetime(date or dt.datetime.now(dt.UTC), True)
    message = f"{method}|{path}|{date_text}".lower().encode("utf-8")
    key = str(keys["private_key"]).encode("utf-8")
    signature = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest())
    token = base64.b64encode(f"{keys['public_key']}:".encode() + signature).decode()
    headers = {"Authorization": f"TSI {token}", date_header: date_text}
    return requests.request(
        method,
        base + path,
        json=body,
        params=params,
        headers=headers,
        timeout=10,
        verify=verify,
    )


@pytest.fixture
def api(tigerpaw: TigerpawEmulator):
    """Signed calls with the main, fully entitled keys."""
    keys = tigerpaw.describe()

    def call(method: str, path: str, body: Any = None, **kwargs: Any):
        return signed(tigerpaw.url, keys, method, path, body, **kwargs)

    return call


def state(tigerpaw: TigerpawEmulator) -> dict[str, Any]:
    """The emulator's ``/_sandbox/state``."""
    return requests.get(f"{tigerpaw.url}/_sandbox/state", timeout=5).json()


def new_order(api, account: int = 1001, **fields: Any) -> dict[str, Any]:
    """Open a service order and return its ServiceOrderSummary."""
    body = {"AccountNumber": account, "BriefDescription": "Virus found", **fields}
    reply = api("POST", "/api/ServiceOrders", body)
    assert reply.status_code == 200, reply.text
    return reply.json()["ServiceOrderSummary"]


# Keys and signatures.


def test_validate_user_and_product_information(api) -> None:
    reply = api("GET", "/api/diagnostics/validate/user")
    assert reply.status_code == 200
    assert reply.json()["Success"] is True

    info = api("GET", "/api/diagnostics/productInformation").json()
    assert info["Success"] is True and info["HasValidLicense"] is True
    assert info["DatabaseVersion"]


def test_unknown_public_key_is_refused(tigerpaw: TigerpawEmulator) -> None:
    keys = {**tigerpaw.describe(), "public_key": "00000000-0000-4000-8000-000000000000"}
    reply = signed(tigerpaw.url, keys, "GET", "/api/diagnostics/validate/user")
    assert reply.status_code == 401
    assert reply.json()["Success"] is False
    assert "public key" in reply.json()["Message"]


def test_bad_signature_is_refused(tigerpaw: TigerpawEmulator) -> None:
    keys = {
        **tigerpaw.describe(),
        "private_key": "11111111-1111-4111-8111-111111111111",
    }
    reply = signed(tigerpaw.url, keys, "GET", "/api/diagnostics/validate/user")
    assert reply.status_code == 401
    assert "signature" in reply.json()["Message"]


def test_stale_date_says_the_clock_is_off(api) -> None:
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    reply = api("GET", "/api/diagnostics/validate/user", date=stale)
    assert reply.status_code == 401
    assert "clock is off" in reply.json()["Message"]

    nearly = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=4)
    assert api("GET", "/api/diagnostics/validate/user", date=nearly).status_code == 200


def test_x_tsi_date_wins_over_date(tigerpaw: TigerpawEmulator) -> None:
    keys = tigerpaw.describe()
    reply = signed(
        tigerpaw.url, keys, "GET", "/api/accounts/1001", date_header="X-TSI-Date"
    )
    assert reply.status_code == 200

    # The signed X-TSI-Date is checked even when a Date header is also present.
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    stale_reply = signed(
        tigerpaw.url,
        keys,
        "GET",
        "/api/accounts/1001",
        date=stale,
        date_header="X-TSI-Date",
    )
    assert stale_reply.status_code == 401


def test_unsigned_and_inactive_rep_are_refused(tigerpaw: TigerpawEmulator) -> None:
    unsigned = requests.get(f"{tigerpaw.url}/api/accounts/1001", timeout=5)
    assert unsigned.status_code == 401
    assert unsigned.json()["Success"] is False

    former = tigerpaw.describe()["test_users"]["rest_inactive_rep"]
    reply = signed(tigerpaw.url, former, "GET", "/api/diagnostics/validate/user")
    assert reply.status_code == 401
    assert "inactive" in reply.json()["Message"]


def test_serves_over_https(tmp_path) -> None:
    identity = make_certificate(tmp_path, "tigerpaw")
    emulator = TigerpawEmulator(NAMES[:4], seed=1, tls=identity).start()
    try:
        assert emulator.url.startswith("https://")
        reply = signed(
            emulator.url,
            emulator.describe(),
            "GET",
            "/api/diagnostics/validate/user",
            verify=str(identity.cert_path),
        )
        assert reply.status_code == 200
    finally:
        emulator.stop()


# Rights, limits and the envelope.


def test_missing_right_is_named(tigerpaw: TigerpawEmulator) -> None:
    users = tigerpaw.describe()["test_users"]
    helpdesk = users["rest_no_service_order_create"]
    body = {"AccountNumber": 1001, "BriefDescription": "Test"}
    reply = signed(tigerpaw.url, helpdesk, "POST", "/api/ServiceOrders", body)
    assert reply.status_code == 403
    assert reply.json()["Success"] is False
    assert "Service orders: create" in reply.json()["Message"]
    assert signed(tigerpaw.url, helpdesk, "GET", "/api/accounts/1001").ok

    auditor = users["rest_read_only"]
    put = signed(tigerpaw.url, auditor, "PUT", "/api/accounts/1001/customfields", [])
    assert put.status_code == 403
    assert "Accounts: update" in put.json()["Message"]
    create = signed(
        tigerpaw.url,
        auditor,
        "POST",
        "/api/mastertables/externalproducts",
        {"Value": "Acme RMM"},
    )
    assert "Master tables: create" in create.json()["Message"]


def test_rate_limit_answers_429_with_retry_after(tigerpaw: TigerpawEmulator, api):
    faults = {"rate_limit_rate": 1.0, "retry_after": 7, "path_prefix": "/api/"}
    requests.post(f"{tigerpaw.url}/_sandbox/faults", json=faults, timeout=5)
    reply = api("GET", "/api/accounts/1001")
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "7"
    assert reply.json()["Success"] is False
    assert "7 seconds" in reply.json()["Message"]


def test_unknown_route_and_method_use_the_envelope(api) -> None:
    missing = api("GET", "/api/nothing/here")
    assert missing.status_code == 404 and missing.json()["Success"] is False
    wrong = api("DELETE", "/api/accounts/1001")
    assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]
    assert api("GET", "/api/accounts/999999").status_code == 404


# Accounts, paging, agreements, price book, master tables.


def test_paging_adds_up(api) -> None:
    seen: list[int] = []
    start, totals = 1, set()
    while True:
        params = {"pageRequest.pageSize": 4, "pageRequest.startRow": start}
        reply = api("POST", "/api/accounts/search", {"Criteria": []}, params=params)
        page = reply.json()
        assert page["PageSize"] == 4 and len(page["Accounts"]) <= 4
        seen += [account["AccountNumber"] for account in page["Accounts"]]
        totals.add(page["TotalCount"])
        if not page["NextRow"]:
            break
        start = page["NextRow"]

    assert totals == {len(NAMES)}
    assert len(seen) == len(set(seen)) == len(NAMES)
    assert seen == sorted(seen)

    body = {"Criteria": [], "PageSize": 5, "StartRow": 6}
    second = api("POST", "/api/accounts/search", body).json()
    assert [a["AccountNumber"] for a in second["Accounts"]] == seen[5:10]


def test_account_search_and_shortcut(api) -> None:
    criteria = {
        "Criteria": [
            {"SearchType": "AccountName", "MatchType": "Equal", "Criteria": NAMES[2]},
            {"SearchType": "AccountName", "MatchType": "Equal", "Criteria": NAMES[3]},
        ]
    }
    found = api("POST", "/api/accounts/search", criteria).json()
    assert [a["Account"]["Name"] for a in found["Accounts"]] == NAMES[2:4]

    shortcut = api("POST", "/api/accounts/search/accountname", NAMES[0]).json()
    assert NAMES[0] in [a["Account"]["Name"] for a in shortcut["Accounts"]]
    bad = api("POST", "/api/accounts/search", {"Criteria": [{"SearchType": "Shoe"}]})
    assert bad.status_code == 400 and "Shoe" in bad.json()["Message"]


def test_agreements_and_cross_references(api) -> None:
    first = api("GET", "/api/agreements/account/1001").json()["Agreements"]
    assert first[0]["Agreement"]["Type"] == "Managed Security"

    # Account 1002 has an agreement that has ended; /true leaves it out.
    every = api("GET", "/api/agreements/account/1002").json()["Agreements"]
    running = api("GET", "/api/agreements/account/1002/true").json()["Agreements"]
    assert "Legacy Antivirus" in [g["Agreement"]["Type"] for g in every]
    assert "Legacy Antivirus" not in [g["Agreement"]["Type"] for g in running]

    linked = api("GET", "/api/accounts/1001/service/externalproducts").json()
    assert linked["ExternalProducts"][0]["ExternalId"]
    last = 1000 + len(NAMES)
    unlinked = api("GET", f"/api/accounts/{last}/service/externalproducts").json()
    assert unlinked["ExternalProducts"] == []


def test_price_book_has_kaspersky_items(api) -> None:
    body = {"Criteria": [{"SearchType": "ItemId", "Criteria": "KL-"}]}
    items = api("POST", "/api/pricebook/items/search", body).json()["PriceBookItems"]
    descriptions = [i["Item"]["ItemDescription"] for i in items]
    assert any(d.endswith("Workstation") for d in descriptions)
    assert any(d.endswith("Server") for d in descriptions)
    one = api("GET", f"/api/pricebook/items/{items[0]['PriceBookItemNumber']}").json()
    assert one["PriceBookItemSummary"]["ItemId"] == items[0]["ItemId"]


def test_master_tables(api) -> None:
    priorities = api("GET", "/api/mastertables/priorities").json()["Priorities"]
    assert priorities[0]["Priority"] == "1 - Critical"
    types = api("GET", "/api/mastertables/serviceOrders/types").json()["Types"]
    assert "Security Alert" in [t["Type"] for t in types]
    statuses = api("GET", "/api/mastertables/serviceorders/statuses").json()
    assert {"New", "Closed"} <= {s["Status"] for s in statuses["Statuses"]}
    boards = api("GET", "/api/mastertables/dispatchboards").json()["Entries"]
    assert boards[0]["Id"] == 1 and boards[0]["Value"]
    topics = api("GET", "/api/mastertables/serviceOrder/noteTopics").json()["Entries"]
    assert "General" in [t["Value"] for t in topics]
    reps = api("GET", "/api/mastertables/reps/true").json()["Reps"]
    assert all(r["Active"] for r in reps)


# Service orders.


def test_create_search_update_service_order(api, tigerpaw: TigerpawEmulator) -> None:
    order = new_order(
        api,
        1003,
        Reference="KL-create-1",
        ServiceOrderType="security alert",
        DispatchBoardNumber=2,
    )
    number = order["ServiceOrderNumber"]
    assert order["ServiceOrder"]["ServiceOrderType"] == "Security Alert"
    assert order["ServiceOrder"]["Status"] == "New"
    assert new_order(api)["ServiceOrderNumber"] > number

    criteria = {
        "Criteria": [
            {
                "SearchType": "Reference",
                "MatchType": "Equal",
                "Criteria": "KL-create-1",
            },
            {"SearchType": "AccountNumber", "MatchType": "Equal", "Criteria": "1003"},
        ]
    }
    found = api("POST", "/api/serviceorders/search", criteria).json()
    assert [o["ServiceOrderNumber"] for o in found["ServiceOrders"]] == [number]

    update = api("PUT", f"/api/serviceorders/{number}", {"Status": "Closed"})
    assert update.status_code == 200
    closed = api("GET", f"/api/serviceorders/{number}").json()["ServiceOrderSummary"]
    assert closed["ServiceOrder"]["Status"] == "Closed"
    assert closed["ServiceOrder"]["DateTimeClosed"].endswith("Z")
    orders = {o["number"]: o for o in state(tigerpaw)["service_orders"]}
    assert orders[number]["closed"] and orders[number]["account"] == 1003

    bad = api("PUT", f"/api/serviceorders/{number}", {"Priority": "Urgent!"})
    assert bad.status_code == 400 and "Priority" in bad.json()["Message"]
    missing = api("POST", "/api/ServiceOrders", {"AccountNumber": 1001})
    assert "BriefDescription" in missing.json()["Message"]


def test_locked_order_refuses_until_unlocked(api, tigerpaw: TigerpawEmulator) -> None:
    number = new_order(api)["ServiceOrderNumber"]
    events = f"{tigerpaw.url}/_sandbox/events"
    requests.post(events, json={"lock": [number]}, timeout=5)

    refused = api("PUT", f"/api/serviceorders/{number}", {"Status": "Closed"})
    assert refused.status_code == 423
    assert refused.json()["Success"] is False
    assert "locked" in refused.json()["Message"]
    note = api("POST", f"/api/serviceorders/{number}/notes", {"Note": "Still bad"})
    assert note.status_code == 423
    fields = api("PUT", f"/api/serviceorders/{number}/customfields", [])
    assert fields.status_code == 423
    read = api("GET", f"/api/serviceorders/{number}").json()["ServiceOrderSummary"]
    assert read["ServiceOrderLock"]["LockingRepName"] == "Pat Dispatcher"
    assert {o["number"]: o for o in state(tigerpaw)["service_orders"]}[number]["locked"]

    requests.post(events, json={"unlock": [number]}, timeout=5)
    accepted = api("PUT", f"/api/serviceorders/{number}", {"Status": "Closed"})
    assert accepted.status_code == 200


def test_notes(api) -> None:
    number = new_order(api)["ServiceOrderNumber"]
    body = {"Topic": "Alert", "Note": "Seen again on PC-01"}
    added = api("POST", f"/api/serviceorders/{number}/notes", body)
    assert added.status_code == 200
    notes = api("GET", f"/api/serviceorders/{number}/notes").json()["Notes"]
    assert [(n["Topic"], n["Note"]) for n in notes] == [
        ("Alert", "Seen again on PC-01")
    ]
    assert notes[0]["RepName"] == "Kaspersky Integration"

    bad = api("POST", f"/api/serviceorders/{number}/notes", {"Topic": "X", "Note": "y"})
    assert bad.status_code == 400 and "Topic" in bad.json()["Message"]


def test_service_order_custom_field_search(api, tigerpaw: TigerpawEmulator) -> None:
    category = {"CategoryName": "Kaspersky Agent", "AvailableInGui": True}
    path = "/api/mastertables/customfields/categories/serviceorders"
    assert api("POST", path, category).status_code == 200
    field = {"CategoryName": "Kaspersky Agent", "CustomFieldLabel": "Integration Key"}
    definition = api("POST", "/api/mastertables/customfields/definitions/text", field)
    assert definition.status_code == 200, definition.text
    listed = api("GET", "/api/mastertables/customfields/serviceorders").json()
    names = {c["CategoryName"]: c for c in listed["Categories"]}
    assert (
        names["Kaspersky Agent"]["Fields"][0]["CustomFieldLabel"] == "Integration Key"
    )

    first, second = (new_order(api)["ServiceOrderNumber"] for _ in range(2))
    for number, key in ((first, "ksc:1:dev-a:virus"), (second, "ksc:1:dev-b:virus")):
        value = [
            {"Category": "Kaspersky Agent", "Label": "Integration Key", "Value": key}
        ]
        put = api("PUT", f"/api/serviceorders/{number}/customfields", value)
        assert put.status_code == 200, put.text

    criteria = {
        "Criteria": [
            {
                "SearchType": "CustomField",
                "CategoryName": "Kaspersky Agent",
                "CustomFieldName": "Integration Key",
                "MatchType": "Equal",
                "Criteria": "ksc:1:dev-b:virus",
            }
        ]
    }
    found = api("POST", "/api/serviceorders/search", criteria).json()
    assert [o["ServiceOrderNumber"] for o in found["ServiceOrders"]] == [second]
    orders = {o["number"]: o for o in state(tigerpaw)["service_orders"]}
    assert orders[first]["custom_fields"] == {
        "Kaspersky Agent/Integration Key": "ksc:1:dev-a:virus"
    }


def test_a_person_closes_an_order(api, tigerpaw: TigerpawEmulator) -> None:
    number = new_order(api)["ServiceOrderNumber"]
    requests.post(f"{tigerpaw.url}/_sandbox/events", json={"lock": [number]}, timeout=5)
    reply = requests.post(
        f"{tigerpaw.url}/_sandbox/events", json={"close": [number]}, timeout=5
    )
    assert reply.json()["close"] == [number]

    order = {o["number"]: o for o in state(tigerpaw)["service_orders"]}[number]
    assert order["status"] == "Closed" and not order["locked"]
    assert "Closed by Pat Dispatcher" in order["notes"][-1]["text"]
