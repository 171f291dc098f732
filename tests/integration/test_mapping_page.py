"""The mapping page with more rows than one page holds, over a real Tigerpaw emulator.

The page is asked through Flask's test client with the launch token, as the browser
asks it; Tigerpaw is the sandbox's emulator on 127.0.0.1, seeded with more accounts
than companies, the last of them not cross-referenced to the SOAP user's product.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html

from agent.app import Agent
from agent.sandbox import seed, tigerpaw_seed
from agent.sandbox.tigerpaw import TigerpawEmulator
from agent.setup_grid import PAGE_SIZE
from agent.store import Tenant
from agent.web import create_app
from tests.integration.agent_support import agent_with_stored_integration

ROOT = Path(__file__).resolve().parents[2]
PORT = 47998
HOST = {"Host": f"127.0.0.1:{PORT}"}
#: Companies in the integration: two and a half pages.
COMPANIES = PAGE_SIZE * 2 + PAGE_SIZE // 2
#: Tigerpaw accounts beyond the companies' own (the last ones lack the product).
SPARE_ACCOUNTS = 6


@dataclass
class Grid:
    """An agent with one integration of many companies, and its page."""

    agent: Agent
    tigerpaw: TigerpawEmulator
    integration: str
    tenants: list[Tenant]
    client: Any
    accounts: list[str]

    @property
    def path(self) -> str:
        """The mapping page's address."""
        return f"/integrations/{self.integration}/accounts"

    def get(self, query: str = "") -> Any:
        """The page (with a query string)."""
        return self.client.get(self.path + query, headers=HOST)

    def post(self, form: dict[str, Any], query: str = "") -> Any:
        """Send the grid's form with the session's CSRF token."""
        page = self.get(query).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page[:2000]
        data = {"csrf_token": token.group(1), **form}
        return self.client.post(self.path, data=data, headers=HOST)

    def tenant(self, name: str) -> Tenant:
        """A company of the integration as the store holds it now."""
        store = self.agent.store
        assert store is not None
        return next(t for t in store.list_tenants(self.integration) if t.name == name)


@pytest.fixture
def grid(tmp_path: Path, no_os_keyring: None) -> Iterator[Grid]:
    """250 companies, their namesakes in Tigerpaw and a few spare accounts."""
    names = seed.client_names(COMPANIES)
    accounts = seed.client_names(COMPANIES + SPARE_ACCOUNTS)
    tigerpaw = TigerpawEmulator(accounts, seed=1).start()
    described = tigerpaw.describe()

    agent, integration_id, tenants = agent_with_stored_integration(
        tmp_path, described, names
    )
    store = agent.store

    client = create_app(agent, PORT).test_client()
    assert client.get(f"/?token={agent.token}", headers=HOST).status_code == 302
    yield Grid(agent, tigerpaw, integration_id, tenants, client, accounts)

    store.close()
    tigerpaw.stop()


def rows_of(page: str) -> list[int]:
    """The tenant ids of the grid's rows, in order."""
    return [int(n) for n in re.findall(r'<input id="account-(\d+)"', page)]


def guesses_of(page: str) -> dict[int, str]:
    """Each row's best guess, as its "Use ..." button would fill it in."""
    found = re.findall(r'data-fill="#account-(\d+)" data-value="([^"]+)"', page)
    return {int(row): html.unescape(value) for row, value in found}


def choices(guesses: dict[int, str], rows: list[int]) -> dict[str, str]:
    """The form of a page where the guessed rows take their guess (service orders
    on, billing off) and the others stay blank."""
    form = {f"account-{row}": guesses.get(row, "") for row in rows}
    form.update({f"orders-{row}": "on" for row in rows})
    return form


def test_a_page_holds_a_hundred_rows_and_search_finds_any(grid: Grid) -> None:
    page = grid.get().get_data(as_text=True)
    ordered = sorted(grid.tenants, key=lambda t: (t.name.casefold(), t.id))
    assert rows_of(page) == [t.id for t in ordered[:PAGE_SIZE]]
    assert f"{COMPANIES} companies, showing 1 to {PAGE_SIZE}." in page
    assert "Page 1 of 3" in page and 'value="next"' in page
    assert 'value="previous"' not in page
    assert "data-filter=" not in page, "a filter of one page would miss the rest"
    waiting = re.search(r'<ul id="unmapped-tenants">(.*?)</ul>', page)
    assert waiting and waiting.group(1).count("<li>") == COMPANIES
    assert f"<summary>Show the {COMPANIES} companies</summary>" in page, "folded"

    wanted = ordered[PAGE_SIZE + 30]
    found = grid.get(f"?q={wanted.name.upper()}").get_data(as_text=True)
    assert wanted.id in rows_of(found)
    assert all(wanted.name in t.name for t in grid.tenants if t.id in rows_of(found))
    assert f"found for &ldquo;{wanted.name.upper()}&rdquo;" in found

    linked = grid.get(f"?tenant={wanted.id}").get_data(as_text=True)
    assert "Page 2 of 3" in linked and wanted.id in rows_of(linked)
    nothing = grid.get("?q=no-such-company").get_data(as_text=True)
    assert rows_of(nothing) == [] and "No company matches this search" in nothing


def test_choices_are_saved_when_moving_to_the_next_page(grid: Grid) -> None:
    first = grid.get().get_data(as_text=True)
    rows, guesses = rows_of(first), guesses_of(first)
    assert len(guesses) == PAGE_SIZE, "every company has its namesake account"
    picked = {row: guesses[row] for row in rows[:3]}

    moved = grid.post({**choices(picked, rows), "go": "next", "page": "1"})
    assert moved.status_code == 302
    ordered = sorted(grid.tenants, key=lambda t: (t.name.casefold(), t.id))
    assert moved.location.endswith(f"/accounts?tenant={ordered[PAGE_SIZE].id}")
    second = grid.get(moved.location.split("accounts", 1)[1])
    second_page = second.get_data(as_text=True)
    assert "Page 2 of 3" in second_page
    assert "The account mapping is saved: 3 of 250 are mapped." in second_page
    assert set(rows_of(second_page)).isdisjoint(rows)

    store = grid.agent.store
    assert store is not None
    mapped = {t.id: t.mapping for t in store.list_tenants(grid.integration)}
    assert {row for row, m in mapped.items() if m} == set(picked)
    for row, label in picked.items():
        assert f"{mapped[row].account_name} ({mapped[row].account_number})" == label

    back = grid.get().get_data(as_text=True)
    for row, label in picked.items():
        assert (
            f'id="account-{row}" name="account-{row}" list="accounts" value="{label}"'
            in (html.unescape(back))
        ), "page 1 shows what was saved there"

    # Saving page 2 leaves page 1's mappings alone, and an unchanged page writes
    # nothing (so nothing is logged or re-approved).
    again = grid.post({**choices({}, rows_of(second_page)), "go": "previous"})
    assert again.status_code == 302
    after = {t.id: t.mapping for t in store.list_tenants(grid.integration)}
    assert after == mapped


def test_only_those_without_an_account_moves_on_by_row(grid: Grid) -> None:
    query = "?unmapped=1"
    first = grid.get(query).get_data(as_text=True)
    rows, guesses = rows_of(first), guesses_of(first)
    form = {**choices(guesses, rows), "go": "next", "shown_unmapped": "1"}
    moved = grid.post({**form, "unmapped": "1"}, query)
    assert moved.status_code == 302 and "unmapped=1" in moved.location

    second = grid.get(moved.location.split("accounts", 1)[1]).get_data(as_text=True)
    shown = rows_of(second)
    ordered = sorted(grid.tenants, key=lambda t: (t.name.casefold(), t.id))
    assert shown[0] == ordered[PAGE_SIZE].id, "the next row, not the page after it"
    assert "Page 1 of 2" in second and f"{COMPANIES - PAGE_SIZE} of" in second


def test_an_account_held_on_another_page_is_refused(grid: Grid) -> None:
    first = grid.get().get_data(as_text=True)
    rows, guesses = rows_of(first), guesses_of(first)
    holder = rows[0]
    saved = grid.post({**choices({holder: guesses[holder]}, rows), "go": "search"})
    assert saved.status_code == 302 and saved.location.endswith("/accounts")

    second = grid.get("?page=2").get_data(as_text=True)
    other = rows_of(second)
    refused = grid.post(
        {**choices({other[0]: guesses[holder]}, other), "page": "2", "go": "next"},
        "?page=2",
    )
    assert refused.status_code == 400
    text = html.unescape(refused.get_data(as_text=True))
    holder_name = next(t.name for t in grid.tenants if t.id == holder)
    assert f"is mapped to {holder_name}: search for {holder_name}" in text
    assert "Nothing was saved" in text and "Page 2 of 3" in text
    assert rows_of(text) == other, "the same page comes back with the error"
    assert grid.tenant(holder_name).mapping is not None
    store = grid.agent.store
    assert store is not None
    assert store.get_tenant(other[0]).mapping is None


def test_accounts_without_the_external_product_are_warned_of(grid: Grid) -> None:
    spare = grid.accounts[-tigerpaw_seed.NOT_CROSS_REFERENCED :]
    numbers = {
        a.name: a.number
        for a in grid.agent.setup.account_index(grid.integration).candidates
    }
    lacking = f"{spare[0]} ({numbers[spare[0]]})"
    first = grid.get().get_data(as_text=True)
    assert f'data-xref="no" label="{lacking}: not cross-referenced' in first
    note = re.search(r'<p class="xref" id="unmapped-xref">(.*?)</p>', first)
    both = ", ".join(f"{n} ({numbers[n]})" for n in sorted(spare, key=str.casefold))
    assert note and html.unescape(note.group(1)).startswith(
        f"Billing cannot write charges to {both}: they are not cross-referenced"
    )

    row = rows_of(first)[0]
    saved = grid.post({**choices({row: lacking}, rows_of(first)), "go": "search"})
    assert saved.status_code == 302
    calls = sum(grid.tigerpaw.calls.values())
    page = html.unescape(grid.get().get_data(as_text=True))
    warning = re.search(rf'<p class="xref" id="xref-{row}">(.*?)</p>', page)
    assert warning, "the warning sits beside the row's account"
    soap_user = grid.tigerpaw.describe()["soap_user"]
    assert warning.group(1).startswith(f"{lacking} is not cross-referenced")
    assert f"SOAP user '{soap_user}'" in warning.group(1)
    assert "Assign External Products to an Account" in warning.group(1)
    assert f'aria-describedby="xref-{row}"' in page
    assert page.count('class="xref" id="xref-') == 1, "only that row is warned of"
    assert sum(grid.tigerpaw.calls.values()) == calls, "no call to Tigerpaw per row"


def form_of(page: str) -> dict[str, str]:
    """The grid's fields as the browser would send them (boxes ticked as "on")."""
    tree = lxml_html.fromstring(page)
    (form,) = tree.xpath("//form[@data-agreements]")
    fields: dict[str, str] = {}
    for box in form.xpath(".//input[@name]"):
        if box.get("type") == "checkbox" and box.get("checked") is None:
            continue
        fields[box.get("name")] = box.get("value") or (
            "on" if box.get("type") == "checkbox" else ""
        )
    for select in form.xpath(".//select[@name]"):
        chosen = select.xpath("option[@selected]/@value")
        fields[select.get("name")] = chosen[0] if chosen else ""
    return fields


def test_every_best_guess_of_a_page_is_filled_in_but_not_saved(grid: Grid) -> None:
    first = grid.get().get_data(as_text=True)
    rows, guesses = rows_of(first), guesses_of(first)
    assert "Use every best guess on this page" in first
    assert f"Fills the {PAGE_SIZE} rows of this page" in first
    typed = guesses[rows[1]]

    filled = grid.post({**choices({rows[0]: typed}, rows), "go": "guesses"})

    assert filled.status_code == 200
    page = filled.get_data(as_text=True)
    values = form_of(page)
    assert values[f"account-{rows[0]}"] == typed, "what the person typed stays"
    for row in rows[1:]:
        assert values[f"account-{row}"] == guesses[row]
        assert f'id="guessed-{row}"' in page, "each filled row says so"
    assert f'id="guessed-{rows[0]}"' not in page
    assert f"Filled {PAGE_SIZE - 1} rows with their best guess" in page
    assert guesses_of(page) == {}, "no guess is left to offer"
    sole = [row for row in rows[1:] if values[f"agreement-{row}"]]
    assert sole, "an account's only running agreement comes with its guess"
    store = grid.agent.store
    assert store is not None
    assert all(t.mapping is None for t in store.list_tenants(grid.integration))

    # The person fixes the clash on the first row and saves: the guesses are kept.
    values[f"account-{rows[0]}"] = ""
    saved = grid.post({**values, "go": "search"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    mapped = {t.id for t in store.list_tenants(grid.integration) if t.mapping}
    assert mapped == set(rows[1:])


def test_a_row_in_error_is_shown_whatever_was_typed_in_the_search(
    grid: Grid,
) -> None:
    first = grid.get().get_data(as_text=True)
    rows, guesses = rows_of(first), guesses_of(first)
    named = next(t.name for t in grid.tenants if t.id == rows[-1])
    clash = {rows[0]: guesses[rows[0]], rows[1]: guesses[rows[0]]}

    refused = grid.post({**choices(clash, rows), "go": "search", "q": named})

    assert refused.status_code == 400
    page = html.unescape(refused.get_data(as_text=True))
    assert "Nothing was saved" in page and f'href="#account-{rows[1]}"' in page
    assert rows_of(page) == rows
    assert re.search(r'id="mapping-filter" name="q" type="search" value=""', page), (
        "the box shows the search the rows were found by, not one that hides them"
    )
    assert f"{COMPANIES} companies, showing 1 to {PAGE_SIZE}." in page
