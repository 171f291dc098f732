"""Administrators of a Business Hub integration, in Debian's chromium: the signing-in
user comes first, email;alias lines are checked line by line, ticked ones are
deleted, and the last one always stays.

One sandboxed agent and one browser (tests/e2e/conftest.py) serve the module; the
tests run in order, each leaving the page where the next one starts.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.setup_helpers import fill_tigerpaw, integrations, proceed, shot

pytestmark = pytest.mark.browser

HOSTILE_ALIAS = "<script>alert(1)</script>"


def create_kbh_integration(page: Any, sandbox: dict[str, Any]) -> None:
    """Connect to the Business Hub emulator and create the integration."""
    kbh = sandbox["kbh"]["production"]
    page.check("#source-kbh")
    page.fill("#kbh_email", kbh["email"])
    page.fill("#kbh_password", kbh["password"])
    proceed(page)
    fill_tigerpaw(page, sandbox["tigerpaw"])
    proceed(page)
    assert "/add" in page.url, page.inner_text("main")


def listed(page: Any) -> list[str]:
    """The emails the administrators list shows, in order."""
    return [
        text.strip() for text in page.locator("#admin-list tbody th").all_inner_texts()
    ]


def test_signing_in_user_is_the_first_administrator(
    page, agent, sandbox, artifacts_dir
) -> None:
    create_kbh_integration(page, sandbox)
    integration = integrations(agent)[0]
    page.goto(f"{agent.base_url()}/integrations/{integration['id']}")
    with page.expect_navigation():
        page.get_by_role("link", name="Administrators").click()

    assert page.get_by_role("heading", name="Administrators of").is_visible()
    assert listed(page) == [sandbox["kbh"]["production"]["email"]]
    shot(page, artifacts_dir, "1-first-administrator")


def test_each_bad_line_is_named_and_nothing_is_added(
    page, sandbox, artifacts_dir
) -> None:
    signed_in = sandbox["kbh"]["production"]["email"]
    text = "\n".join(
        [
            "pat@example.com;Pat Lee",
            ";No email here",
            "not-an-email;Someone",
            "sam@example.com;" + "A" * 65,
            "PAT@example.com;Pat again",
            "",
            f"{signed_in};Me",
        ]
    )
    page.fill("#administrators", text)
    with page.expect_navigation():
        page.get_by_role("button", name="Add", exact=True).click()

    problems = page.locator("#administrators-error li").all_inner_texts()
    assert len(problems) == 5, problems
    assert problems[0].startswith("Line 2:") and "email is blank" in problems[0]
    assert problems[1].startswith("Line 3:") and "not an email" in problems[1]
    assert problems[2].startswith("Line 4:") and "at most 64" in problems[2]
    assert problems[3].startswith("Line 5:") and "duplicate of line 1" in problems[3]
    assert (
        problems[4].startswith("Line 7:")
        and "already an administrator" in (problems[4])
    )
    assert page.locator("#administrators").input_value() == text, "text is kept"
    assert page.locator("#administrators").get_attribute("aria-invalid") == "true"
    assert listed(page) == [signed_in], "a bad line adds nothing at all"
    shot(page, artifacts_dir, "2-bad-lines")


def test_good_lines_are_added_and_escaped(page, sandbox, artifacts_dir) -> None:
    page.fill(
        "#administrators",
        f"pat@example.com;Pat Lee\n\n  zoe@example.com ; {HOSTILE_ALIAS}  \n",
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Add", exact=True).click()

    assert "Added 2 administrators" in page.inner_text("main")
    signed_in = sandbox["kbh"]["production"]["email"]
    assert sorted(listed(page)) == sorted(
        [signed_in, "pat@example.com", "zoe@example.com"]
    )
    row = page.locator("#admin-list tbody tr", has_text="zoe@example.com")
    assert row.locator("td").nth(1).inner_text() == HOSTILE_ALIAS
    assert HOSTILE_ALIAS not in page.content(), "the alias is shown as text"
    shot(page, artifacts_dir, "3-added")


def test_a_form_without_its_token_is_refused(page, agent) -> None:
    before = listed(page)
    reply = page.request.post(
        page.url,
        form={"administrators": "eve@example.com;Eve"},
        headers={"Origin": agent.base_url()},
    )
    assert reply.status == 403
    assert "expired" in reply.text()
    reply = page.request.post(
        page.url + "/delete",
        form={"email": before[0]},
        headers={"Origin": agent.base_url()},
    )
    assert reply.status == 403
    page.reload()
    assert listed(page) == before


def test_ticked_ones_are_deleted_but_never_the_last(
    page, sandbox, artifacts_dir
) -> None:
    page.get_by_label("Select pat@example.com").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Delete", exact=True).click()
    assert "Deleted 1 administrator from" in page.inner_text("main")
    assert "pat@example.com" not in listed(page)
    assert len(listed(page)) == 2

    page.check("#select-all-admins")
    assert page.locator("input[name=email]:checked").count() == 2
    shot(page, artifacts_dir, "4-all-ticked")
    with page.expect_navigation():
        page.get_by_role("button", name="Delete", exact=True).click()
    text = page.inner_text("main")
    assert "Nothing was deleted" in text and "at least one administrator" in text
    assert len(listed(page)) == 2
    shot(page, artifacts_dir, "5-last-one-refused")

    page.get_by_label("Select zoe@example.com").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Delete", exact=True).click()
    signed_in = sandbox["kbh"]["production"]["email"]
    assert listed(page) == [signed_in]

    page.get_by_label(f"Select {signed_in}").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Delete", exact=True).click()
    assert "at least one administrator" in page.inner_text("main")
    assert listed(page) == [signed_in]
    shot(page, artifacts_dir, "6-last-one-stays")

    with page.expect_navigation():
        page.get_by_role("button", name="Delete", exact=True).click()
    assert "Tick the administrators to delete first" in page.inner_text("main")
