"""The mapping grid's pages, searches and account index, on plain values."""

from __future__ import annotations

import datetime as dt

from agent.setup_grid import (
    GridQuery,
    cross_reference_advice,
    index_accounts,
    number_in_label,
    page_of,
)
from agent.store.records import AccountMapping, Tenant
from agent.tigerpaw.models import Account

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def tenant(number: int, name: str, *, mapped: bool = False) -> Tenant:
    """A company of an integration, mapped to account 5000 + number if asked."""
    mapping = (
        AccountMapping(
            tenant_id=number,
            account_number=5000 + number,
            account_name=name,
            agreement_number=None,
            agreement_name="",
            billing=False,
            service_orders=True,
            billing_approved=False,
            mapped_at=NOW,
            updated_at=NOW,
        )
        if mapped
        else None
    )
    return Tenant(
        id=number,
        integration_id="i",
        source="kbh",
        source_id=f"c{number}",
        name=name,
        added_at=NOW,
        mapping=mapping,
    )


TENANTS = [tenant(n, f"Company {n:03}", mapped=n % 2 == 0) for n in range(1, 26)]


def test_pages_split_the_rows_and_name_their_neighbours() -> None:
    first = page_of(TENANTS, GridQuery(), size=10)
    assert [t.id for t in first.rows] == list(range(1, 11))
    assert (first.number, first.pages, first.matching, first.total) == (1, 3, 25, 25)
    assert (first.first, first.last) == (1, 10)
    assert first.previous_anchor is None and first.next_anchor == 11

    last = page_of(TENANTS, GridQuery(page=3), size=10)
    assert [t.id for t in last.rows] == list(range(21, 26))
    assert (last.first, last.last) == (21, 25)
    assert last.previous_anchor == 20 and last.next_anchor is None


def test_a_page_past_the_end_or_before_the_start_is_the_nearest() -> None:
    assert page_of(TENANTS, GridQuery(page=99), size=10).number == 3
    assert page_of(TENANTS, GridQuery(page=0), size=10).number == 1


def test_a_tenant_asked_for_picks_its_page() -> None:
    assert page_of(TENANTS, GridQuery(tenant=17), size=10).number == 2
    unknown = page_of(TENANTS, GridQuery(page=3, tenant=999), size=10)
    assert unknown.number == 3, "a row not found leaves the page as asked"


def test_search_by_part_of_the_name_ignores_case_and_spaces() -> None:
    found = page_of(TENANTS, GridQuery(text="  company   01"), size=10)
    assert [t.name for t in found.rows] == [f"Company {n:03}" for n in range(10, 20)]
    assert found.searched and found.matching == 10
    assert page_of(TENANTS, GridQuery(text="COMPANY 007")).matching == 1


def test_only_those_without_an_account() -> None:
    waiting = page_of(TENANTS, GridQuery(unmapped_only=True), size=10)
    assert waiting.matching == 13
    assert all(t.mapping is None for t in waiting.rows)
    assert waiting.searched


def test_nothing_found_is_one_empty_page() -> None:
    empty = page_of(TENANTS, GridQuery(text="nobody"), size=10)
    assert (empty.rows, empty.number, empty.pages, empty.first, empty.last) == (
        [],
        1,
        1,
        0,
        0,
    )


def test_the_account_index_marks_what_billing_cannot_reach() -> None:
    accounts = [
        Account(1001, "Contoso", cross_referenced=True),
        Account(1002, "Northwind", cross_referenced=False),
        Account(1003, "Fabrikam"),
    ]
    index = index_accounts(accounts)
    assert [c.number for c in index.candidates] == [1001, 1002, 1003]
    assert index.labels[1002] == "Northwind (1002)"
    assert index.not_cross_referenced == {1002}, "unknown is not a warning"


def test_the_number_of_a_choice_box_text() -> None:
    assert number_in_label("Northwind (1002)") == 1002
    assert number_in_label(" 1002 ") == 1002
    assert number_in_label("Northwind") is None
    assert number_in_label("") is None


def test_the_advice_names_the_account_the_user_and_the_fix() -> None:
    advice = cross_reference_advice("Northwind (1002)", "kaspersky")
    assert advice.startswith("Northwind (1002) is not cross-referenced")
    assert "SOAP user 'kaspersky'" in advice
    assert "Assign External Products to an Account" in advice
