"""Feature test of FEATURES.md "Administrators (Business Hub integrations)", driven
in Debian's chromium against a ``--sandbox`` agent (tests/e2e/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.setup_helpers import fill_tigerpaw, integrations, proceed, shot
from tests.e2e.test_features_admins import create_kbh_integration, listed
from tests.features.flows_orders import connect_ksc

pytestmark = pytest.mark.browser


def aliases(page: Any) -> dict[str, str]:
    """Email to alias, as the administrators list shows them."""
    rows = page.locator("#admin-list tbody tr")
    return {
        row.locator("th").inner_text().strip(): row.locator("td")
        .nth(1)
        .inner_text()
        .strip()
        for row in rows.all()
    }


def delete_ticked(page: Any, *emails: str) -> str:
    """Tick administrators, press Delete and return what the page says."""
    for email in emails:
        page.get_by_label(f"Select {email}").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Delete", exact=True).click()
    return page.inner_text("main")


def test_administrators_added_as_email_alias_removed_by_ticking_never_the_last(
    page, agent, sandbox, artifacts_dir
) -> None:
    """A list of Business Hub users bound to the integration, added as
    `email;alias` one per line; removed by ticking and deleting; the last one cannot
    be removed."""
    create_kbh_integration(page, sandbox)
    kbh = integrations(agent)[0]
    page.goto(f"{agent.base_url()}/integrations/{kbh['id']}")
    with page.expect_navigation():
        page.get_by_role("link", name="Administrators").click()
    admins_url = page.url
    assert kbh["id"] in admins_url
    signed_in = sandbox["kbh"]["production"]["email"]
    assert listed(page) == [signed_in], "the Business Hub user who set it up"
    shot(page, artifacts_dir, "1-bound-user")

    # Added as email;alias, one per line.
    page.fill("#administrators", "pat@example.com;Pat Lee\nzoe@example.com;Zoe Ray")
    with page.expect_navigation():
        page.get_by_role("button", name="Add", exact=True).click()
    assert "Added 2 administrators" in page.inner_text("main")
    page.reload()
    shown = aliases(page)
    assert (
        shown["pat@example.com"] == "Pat Lee" and shown["zoe@example.com"] == "Zoe Ray"
    )
    assert sorted(shown) == sorted([signed_in, "pat@example.com", "zoe@example.com"])
    shot(page, artifacts_dir, "2-added")

    # Bound to that integration: another (KSC) one has no such list.
    page.goto(agent.base_url() + "/")
    with page.expect_navigation():
        page.get_by_role("link", name="New integration").click()
    connect_ksc(page, sandbox["ksc"])
    page.fill("#name", "KSC beside Business Hub")
    fill_tigerpaw(page, sandbox["tigerpaw"])
    proceed(page)
    ksc = next(i for i in integrations(agent) if i["source"] == "ksc")
    page.goto(f"{agent.base_url()}/integrations/{ksc['id']}")
    assert page.get_by_role("link", name="Administrators").count() == 0
    reply = page.request.get(
        f"{agent.base_url()}/integrations/{ksc['id']}/administrators"
    )
    assert reply.status == 404, reply.status
    page.goto(admins_url)
    assert sorted(listed(page)) == sorted(shown), "the Business Hub list is kept"

    # Removed by ticking and deleting.
    assert "Deleted 1 administrator" in delete_ticked(page, "pat@example.com")
    assert sorted(listed(page)) == sorted([signed_in, "zoe@example.com"])
    shot(page, artifacts_dir, "3-one-deleted")

    # The last one cannot be removed: ticking every one deletes none of them.
    page.check("#select-all-admins")
    with page.expect_navigation():
        page.get_by_role("button", name="Delete", exact=True).click()
    said = page.inner_text("main")
    assert "Nothing was deleted" in said and "at least one administrator" in said
    assert sorted(listed(page)) == sorted([signed_in, "zoe@example.com"])
    delete_ticked(page, "zoe@example.com")
    assert listed(page) == [signed_in]
    said = delete_ticked(page, signed_in)
    assert "at least one administrator" in said, said
    page.reload()
    assert listed(page) == [signed_in]
    shot(page, artifacts_dir, "4-last-one-stays")
