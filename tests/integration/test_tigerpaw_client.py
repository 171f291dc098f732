"""Contract tests of the Tigerpaw client: everything the sync reads and writes.

Accounts, agreements and charges, the price book, master tables, custom fields and
service orders, against the real emulator over sockets.
"""

from __future__ import annotations

import logging

import pytest

from agent.errors import RecordNotFound
from agent.sandbox.seed import client_names
from agent.sandbox.tigerpaw import TigerpawEmulator
from agent.tigerpaw.models import ACCOUNTS, SERVICE_ORDERS, Criterion
from tests.integration.tigerpaw_support import (
    NAMES,
    client_fixture,
    emulator_fixture,
    make_client,
    post_events,
    secrets_of,
    state,
)

tigerpaw = emulator_fixture(seed=11)
client = client_fixture()


def agreement_of(tigerpaw: TigerpawEmulator, account: int) -> int:
    """The first running agreement of an account, from the emulator's state."""
    return next(
        g["number"]
        for g in state(tigerpaw)["agreements"]
        if g["account"] == account and g["active"]
    )


# Checks and accounts.


def test_check_passes_with_full_rights_and_lists_what_it_found(client) -> None:
    found = client.check()

    assert found.rep_name == "Kaspersky Integration"
    assert found.database_version == "18.2.1"
    assert found.account_count == len(NAMES)
    assert [a.number for a in found.not_cross_referenced] == [
        1000 + len(NAMES) - 1,
        1000 + len(NAMES),
    ]


def test_check_rights_finds_nothing_missing(client) -> None:
    assert client.check_rights() == []


def test_list_accounts_says_which_are_cross_referenced(client, tigerpaw) -> None:
    accounts = client.list_accounts()

    assert [a.name for a in accounts] == NAMES
    linked = {a.number for a in accounts if a.cross_referenced}
    assert linked == set(state(tigerpaw)["cross_referenced"])
    assert accounts[0].external_id == "KL-1001"
    assert accounts[-1].cross_referenced is False


def test_the_wsdl_is_read_once_per_client(client, tigerpaw) -> None:
    before = tigerpaw.calls["GET /api/rmm/tsiWS.asmx"]

    client.list_accounts()
    client.list_accounts()

    assert tigerpaw.calls["GET /api/rmm/tsiWS.asmx"] == before + 1


def test_search_and_get_accounts(client) -> None:
    found = list(client.search_accounts(NAMES[2].split()[0], match="StartsWith"))
    assert NAMES[2] in [a.name for a in found]

    account = client.get_account(1003)
    assert (account.number, account.name) == (1003, NAMES[2])
    assert account.status == "Active"

    with pytest.raises(RecordNotFound) as caught:
        client.get_account(9999)
    assert "Account 9999" in str(caught.value)


def test_account_custom_fields_read_and_write(client) -> None:
    fields = client.account_custom_fields(1001)
    assert {(f.category, f.label) for f in fields} >= {("General", "Contract Notes")}

    written = client.set_account_custom_fields(
        1001, {("Security", "Backup Vendor"): "Acme Backup"}
    )

    value = {f.label: f.value for f in written}["Backup Vendor"]
    assert value == "Acme Backup"
    again = {f.label: f.value for f in client.account_custom_fields(1001)}
    assert again["Backup Vendor"] == "Acme Backup"


# Agreements and additional charges.


def test_agreements_of_an_account_and_only_running_ones(client) -> None:
    every = client.agreements_of_account(1002)
    running = client.agreements_of_account(1002, active_only=True)

    assert "Legacy Antivirus" in [g.type for g in every]
    assert "Legacy Antivirus" not in [g.type for g in running]
    assert all(g.account_number == 1002 for g in every)
    assert client.get_agreement(every[0].number).type == every[0].type


def test_setting_a_quantity_creates_then_updates_the_line(client, tigerpaw) -> None:
    agreement = agreement_of(tigerpaw, 1004)

    created = client.set_charge_quantity(agreement, "KL-KESB-WS", 25)
    updated = client.set_charge_quantity(agreement, "KL-KESB-WS", 31)

    assert (created.action, created.before, created.after) == ("created", None, 25)
    assert (updated.action, updated.before, updated.after) == ("updated", 25, 31)
    assert updated.detail_id == created.detail_id
    lines = [
        c
        for g in state(tigerpaw)["agreements"]
        if g["number"] == agreement
        for c in g["charges"]
        if c["item_id"] == "KL-KESB-WS"
    ]
    assert [(c["detail_id"], c["quantity"]) for c in lines] == [(created.detail_id, 31)]


def test_setting_the_same_quantity_twice_writes_once(client, tigerpaw) -> None:
    agreement = agreement_of(tigerpaw, 1005)
    submits = "POST /api/rmm/tsiWS.asmx"

    first = client.set_charge_quantity(agreement, "KL-KSWS", 7)
    after_first = tigerpaw.calls[submits]
    second = client.set_charge_quantity(agreement, "kl-ksws", 7)

    assert first.action == "created"
    assert (second.action, second.before, second.after) == ("unchanged", 7, 7)
    assert second.detail_id == first.detail_id
    assert tigerpaw.calls[submits] == after_first
    charges = client.agreement_charges(agreement)
    assert [(c.item_id, c.quantity) for c in charges if c.item_id == "KL-KSWS"] == [
        ("KL-KSWS", 7)
    ]


def test_charges_read_back_and_delete(client, tigerpaw) -> None:
    agreement = agreement_of(tigerpaw, 1006)
    change = client.set_charge_quantity(agreement, "KL-KSO365", 40)

    line = client.get_charge(agreement, change.detail_id)
    assert (line.item_id, line.quantity, line.source) == ("KL-KSO365", 40, 1)

    client.delete_charge(agreement, change.detail_id)

    assert "KL-KSO365" not in [c.item_id for c in client.agreement_charges(agreement)]


def test_quantity_zero_is_set_not_deleted(client, tigerpaw) -> None:
    agreement = agreement_of(tigerpaw, 1007)
    client.set_charge_quantity(agreement, "KL-KESB-SRV", 3)

    change = client.set_charge_quantity(agreement, "KL-KESB-SRV", 0)

    assert (change.before, change.after) == (3, 0)
    assert client.get_charge(agreement, change.detail_id).quantity == 0


# Price book and master tables.


def test_price_book_search_get_and_find(client) -> None:
    security = list(client.search_price_book("Kaspersky"))
    assert "KL-KESB-WS" in [i.item_id for i in security]

    item = client.find_price_book_item("kl-kav-old")
    assert item is not None and item.inactive
    assert client.get_price_book_item(item.number).item_id == "KL-KAV-OLD"
    assert client.find_price_book_item("NO-SUCH-ITEM") is None

    services = list(
        client.search_price_book(criteria=[Criterion("ItemType", "S", "Equal")])
    )
    assert "LAB-REMOTE" not in [i.item_id for i in services]


def test_master_tables(client) -> None:
    priorities = client.priorities()
    statuses = client.service_order_statuses()
    types = client.service_order_types()

    assert [p.value for p in priorities if p.is_default] == ["3 - Normal"]
    assert {"New", "Closed"} <= {s.value for s in statuses}
    assert {t.value: t.priority for t in types}["Security Alert"] == "2 - High"
    assert {b.id: b.value for b in client.dispatch_boards()}[2] == (
        "Security Operations"
    )
    assert "Alert" in [t.value for t in client.note_topics()]
    assert [s.value for s in client.severities()][0] == "Critical"
    assert "Kaspersky Security Integration" in [
        e.value for e in client.external_products()
    ]
    active = {r.number for r in client.reps()}
    assert 1 in active and 6 not in active
    assert 6 in {r.number for r in client.reps(active_only=False)}


# Custom field definitions.


def test_custom_field_categories_and_definitions(client) -> None:
    before = {c.name for c in client.custom_field_categories(SERVICE_ORDERS)}
    assert "Site Access" in before

    client.create_custom_field_category(SERVICE_ORDERS, "Bootstrap Test")
    made = client.create_text_custom_field(
        SERVICE_ORDERS, "Bootstrap Test", "Ticket Key", max_length=80
    )

    categories = {c.name: c for c in client.custom_field_categories(SERVICE_ORDERS)}
    field = categories["Bootstrap Test"].field("ticket key")
    assert field is not None and field.id == made.id
    assert (field.field_type, field.max_length) == ("text", 80)
    accounts = {c.name for c in client.custom_field_categories(ACCOUNTS)}
    assert "Bootstrap Test" not in accounts


def test_ensuring_the_key_field_twice_gives_the_same_field(client) -> None:
    first = client.ensure_service_order_key_field("Kaspersky Agent", "Agent Key")
    second = client.ensure_service_order_key_field("Kaspersky Agent", "Agent Key")

    assert first == second
    assert (first.category, first.label) == ("Kaspersky Agent", "Agent Key")


# Service orders.


def test_service_order_life(client, tigerpaw) -> None:
    number = client.create_service_order(
        1003,
        "Threat found on PC-17",
        order_type="Security Alert",
        dispatch_board=2,
        reference="ksc:1:pc-17:threat",
        work_requested="Trojan.Win32.Generic was not cured.",
    )

    order = client.get_service_order(number)
    assert (order.account_number, order.status, order.priority) == (
        1003,
        "New",
        "2 - High",
    )
    assert (order.order_type, order.dispatch_board) == ("Security Alert", 2)

    note = client.add_service_order_note(number, "Seen again", topic="Alert")
    closed = client.update_service_order(number, status="Closed")

    assert closed.status == "Closed" and closed.closed is not None
    assert [(n.topic, n.text) for n in client.service_order_notes(number)] == [
        ("Alert", "Seen again")
    ]
    assert note.number > 0
    held = next(o for o in state(tigerpaw)["service_orders"] if o["number"] == number)
    assert held["closed"] and held["board"] == 2


def test_service_order_custom_fields_and_searches(client) -> None:
    key_field = client.ensure_service_order_key_field("Kaspersky Agent", "Agent Key")
    number = client.create_service_order(1008, "Databases outdated", reference="r-8")

    client.set_service_order_custom_fields(number, {key_field.id: "kbh:8:dev:db"})

    values = {f.label: f.value for f in client.service_order_custom_fields(number)}
    assert values["Agent Key"] == "kbh:8:dev:db"
    found = client.find_service_orders_by_custom_field(
        "Kaspersky Agent", "Agent Key", "kbh:8:dev:db"
    )
    assert [o.number for o in found] == [number]
    assert [o.number for o in client.find_service_orders_by_reference("r-8")] == [
        number
    ]
    assert number in [o.number for o in client.service_orders_of_account(1008)]
    open_ones = client.service_orders_of_account(1008, statuses=["New"])
    assert number in [o.number for o in open_ones]
    assert number in [o.number for o in client.service_orders_with_status("New")]
    assert number not in [o.number for o in client.service_orders_with_status("Closed")]


def test_a_person_closing_an_order_is_seen(client, tigerpaw) -> None:
    number = client.create_service_order(1009, "Device not protected")

    post_events(tigerpaw, {"close": [number]})

    order = client.get_service_order(number)
    assert order.status == "Closed"
    assert "Closed by Pat Dispatcher." in [
        n.text for n in client.service_order_notes(number)
    ]


# Paging.


def test_pages_are_fetched_lazily_and_completely(client, tigerpaw) -> None:
    paged = make_client(tigerpaw, page_size=4)
    searches = "POST /api/accounts/search"
    before = tigerpaw.calls[searches]

    rows = paged.search_accounts()
    first = next(rows)
    assert tigerpaw.calls[searches] == before + 1
    rest = list(rows)

    numbers = [first.number] + [a.number for a in rest]
    assert numbers == list(range(1001, 1001 + len(NAMES)))
    assert tigerpaw.calls[searches] == before + -(-len(NAMES) // 4)


def test_more_accounts_than_one_default_page() -> None:
    names = client_names(130)
    emulator = TigerpawEmulator(names, seed=2).start()
    try:
        with make_client(emulator) as client:
            found = [a.name for a in client.search_accounts()]
            listed = client.list_accounts()
        assert found == names
        assert len(listed) == 130
        assert emulator.calls["POST /api/accounts/search"] == 2
    finally:
        emulator.stop()


# Logging.


def test_writes_log_one_debug_line_and_no_secret(client, tigerpaw, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    agreement = agreement_of(tigerpaw, 1010)

    number = client.create_service_order(1010, "Logging check")
    client.set_charge_quantity(agreement, "KL-KESB-WS", 12)
    client.list_accounts()

    ours = [r for r in caplog.records if r.name.startswith("agent.tigerpaw")]
    debugs = [r.getMessage() for r in ours if r.levelno == logging.DEBUG]
    assert f"Created service order {number} for account 1010" in debugs
    assert (
        f"Set the quantity of KL-KESB-WS on agreement {agreement} of account 1010 "
        "to 12 (was none)"
    ) in debugs
    # The caller logs each write at INFO, naming the account as people know it.
    assert [r.getMessage() for r in ours if r.levelno >= logging.INFO] == []
    for secret in secrets_of(tigerpaw):
        assert secret not in caplog.text
