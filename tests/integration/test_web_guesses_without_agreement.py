"""The setup pages against a real Tigerpaw emulator, through Flask's test client:
a best guess never ticks billing for an account without an agreement (nor does a new
mapping get billing there), and the Connect page says when no Business Hub address
is known for the KESCloudServer in use.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html

from agent.app import Agent
from agent.sandbox.tigerpaw import TigerpawEmulator
from agent.sources.kbh import clear_registered_servers, register_servers
from agent.web import create_app
from tests.integration.agent_support import agent_with_stored_integration

ROOT = Path(__file__).resolve().parents[2]
PORT = 47996
HOST = {"Host": f"127.0.0.1:{PORT}"}
#: Tigerpaw's accounts; the companies are named after the first three.
ACCOUNTS = ["Adventure Dental", "Alpine Dental", "Blue Yonder Dental", "Coho Dental"]
#: The account whose agreements are taken away.
LACKING = "Adventure Dental"
NOTE = "No agreement in Tigerpaw: billing off until one is added"


@dataclass
class Setup:
    """An agent with one Business Hub integration of three companies."""

    agent: Agent
    tigerpaw: TigerpawEmulator
    integration: str
    client: Any

    @property
    def path(self) -> str:
        """The mapping page's address."""
        return f"/integrations/{self.integration}/accounts"

    def post(self, path: str, form: dict[str, Any]) -> Any:
        """Send a form with the session's CSRF token."""
        page = self.client.get(path, headers=HOST).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page[:2000]
        return self.client.post(
            path, data={"csrf_token": token.group(1), **form}, headers=HOST
        )

    def ids(self) -> dict[str, int]:
        """The companies' tenant ids by name."""
        store = self.agent.store
        assert store is not None
        return {t.name: t.id for t in store.list_tenants(self.integration)}


@pytest.fixture
def setup(tmp_path: Path, no_os_keyring: None) -> Iterator[Setup]:
    """The agent, its page and a Tigerpaw whose Adventure Dental has no agreement."""
    tigerpaw = TigerpawEmulator(ACCOUNTS, seed=1).start()
    world = tigerpaw.world
    with tigerpaw.lock:
        lacking = next(a for a in world.accounts if a.name == LACKING)
        world.agreements = [
            a for a in world.agreements if a.account_number != lacking.number
        ]
    described = tigerpaw.describe()

    agent, integration_id, _ = agent_with_stored_integration(
        tmp_path, described, ACCOUNTS[:3]
    )
    store = agent.store

    client = create_app(agent, PORT).test_client()
    assert client.get(f"/?token={agent.token}", headers=HOST).status_code == 302
    yield Setup(agent, tigerpaw, integration_id, client)

    store.close()
    tigerpaw.stop()


def blank_rows(ids: dict[str, int]) -> dict[str, str]:
    """The grid's form as a browser sends it at first: no account, billing and
    service orders ticked (the page's default for a new row)."""
    form: dict[str, str] = {}
    for tenant_id in ids.values():
        form |= {
            f"account-{tenant_id}": "",
            f"agreement-{tenant_id}": "",
            f"billing-{tenant_id}": "on",
            f"orders-{tenant_id}": "on",
        }
    return form


def guessed(setup: Setup, ids: dict[str, int]) -> lxml_html.HtmlElement:
    """The grid after "Use every best guess on this page" on blank rows."""
    reply = setup.post(setup.path, {**blank_rows(ids), "go": "guesses"})
    assert reply.status_code == 200
    return lxml_html.fromstring(reply.get_data(as_text=True))


def test_every_best_guess_leaves_billing_off_without_agreement(setup: Setup) -> None:
    ids = setup.ids()
    page = guessed(setup, ids)

    lacking = ids[LACKING]
    billing = page.get_element_by_id(f"billing-{lacking}")
    assert billing.get("checked") is None, "billing is left off"
    assert billing.get("aria-describedby") == f"no-agreement-{lacking}"
    assert page.get_element_by_id(f"no-agreement-{lacking}").text_content() == NOTE
    for name in ACCOUNTS[1:3]:
        row = ids[name]
        assert page.get_element_by_id(f"billing-{row}").get("checked") is not None
        assert page.get_element_by_id(f"agreement-{row}").value, "sole agreement"
        assert not page.xpath(f'//*[@id="no-agreement-{row}"]')
        # The chosen agreement is named as the drop-down names it, not "Agreement N".
        shown = page.xpath(f'//select[@id="agreement-{row}"]/option[@selected]')
        assert re.fullmatch(r"Managed Security \d+", shown[0].text_content())

    # The page as filled saves at once: nothing asks for an agreement.
    filled = {
        name: value
        for name, value in page.xpath("//form[@data-agreements]")[0].form_values()
        if name != "csrf_token"
    }
    saved = setup.post(setup.path, {**filled, "go": "done"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    store = setup.agent.store
    assert store is not None
    mapping = store.get_tenant(lacking).mapping
    assert mapping is not None and not mapping.billing and not mapping.agreement_number


def test_a_guess_with_several_agreements_leaves_a_row_that_saves(
    setup: Setup,
) -> None:
    """An account with two running agreements: the guess cannot pick one, so the
    row's billing is left off, the note says to choose, the drop-down lists the
    agreements at once, and Proceed saves the page as filled."""
    ids = setup.ids()
    several = ACCOUNTS[1]
    world = setup.tigerpaw.world
    with setup.tigerpaw.lock:
        account = next(a for a in world.accounts if a.name == several)
        first = world.agreements_of(account.number)[0]
        world.agreements.append(
            dataclasses.replace(
                first, number=first.number + 900, type="Backup Services", charges=[]
            )
        )
    page = guessed(setup, ids)

    row = ids[several]
    billing = page.get_element_by_id(f"billing-{row}")
    assert billing.get("checked") is None, "billing is left off"
    assert billing.get("aria-describedby") == f"choose-agreement-{row}"
    said = page.get_element_by_id(f"choose-agreement-{row}").text_content()
    assert said == (
        "2 agreements in Tigerpaw: choose the one that carries the Kaspersky "
        "charges, then tick Billing"
    )
    shown = [
        o.text_content() for o in page.xpath(f'//select[@id="agreement-{row}"]/option')
    ]
    assert shown[0] == "Choose an agreement"
    assert any(t.startswith("Backup Services") for t in shown[1:]), shown
    assert len(shown) == 1 + len(world.agreements_of(account.number))
    # No row of the page shows "(none)" for a list that is merely not loaded.
    assert "(none)" not in lxml_html.tostring(page, encoding="unicode")

    filled = {
        name: value
        for name, value in page.xpath("//form[@data-agreements]")[0].form_values()
        if name != "csrf_token"
    }
    saved = setup.post(setup.path, {**filled, "go": "done"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]


def test_a_new_mapping_without_agreement_gets_billing_off(setup: Setup) -> None:
    ids = setup.ids()
    lacking = ids[LACKING]
    store = setup.agent.store
    assert store is not None
    number = next(a.number for a in setup.tigerpaw.world.accounts if a.name == LACKING)
    form = blank_rows({LACKING: lacking})
    form[f"account-{lacking}"] = f"{LACKING} ({number})"

    # No script: the row went as the page's default sent it, billing ticked.
    saved = setup.post(setup.path, {**form, "go": "done"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    mapping = store.get_tenant(lacking).mapping
    assert mapping is not None and not mapping.billing
    dashboard = setup.client.get("/", headers=HOST).get_data(as_text=True)
    assert f"Billing is off for {LACKING}: no agreement in Tigerpaw" in dashboard

    # Billing asked for again on the saved row: refused, in words that say why.
    again = setup.post(setup.path, {**form, "go": "done"})
    assert again.status_code == 400
    said = again.get_data(as_text=True)
    assert f"{LACKING} has no agreement in Tigerpaw: switch billing off" in said


def test_connect_page_says_when_no_business_hub_address_is_known(
    setup: Setup,
) -> None:
    clear_registered_servers()
    try:
        page = setup.client.get("/setup/connect", headers=HOST).get_data(as_text=True)
        note = lxml_html.fromstring(page).get_element_by_id("kbh-unknown")
        said = " ".join(note.text_content().split())
        assert "no Business Hub address for KESCloudServer=production" in said
        assert note.get("data-show-when") == "source=kbh"
        assert 'aria-describedby="kbh-unknown"' in page

        register_servers({"production": ("https://127.0.0.1:9", None)})
        page = setup.client.get("/setup/connect", headers=HOST).get_data(as_text=True)
        assert 'id="kbh-unknown"' not in page
    finally:
        clear_registered_servers()
