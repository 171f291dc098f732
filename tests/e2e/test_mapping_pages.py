"""The mapping grid with more companies than one page holds, in Debian's chromium:
paged and searched by keyboard alone, choices kept across pages, readable at
1280x800 and 800x600, and the dashboard's link to one row finds its page."""

from __future__ import annotations

from typing import Any

import pytest

from agent.setup_grid import PAGE_SIZE
from tests.agent_process import AgentProcess
from tests.browser import chromium_page
from tests.e2e.setup_helpers import (
    SIZES,
    assert_fits_and_labelled,
    focused,
    integrations,
    shot,
    submit_by_enter,
)
from tests.features.flows import add_tenants, connect_kbh, create_integration

pytestmark = pytest.mark.browser

#: Companies of the sandbox's Business Hub: a page and a bit.
TENANTS = PAGE_SIZE + 20


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory):
    """One sandboxed agent whose Business Hub has more companies than a page."""
    process = AgentProcess(
        tmp_path_factory.mktemp("mapping-pages"),
        "--sandbox",
        "--sandbox-tenants",
        str(TENANTS),
    )
    process.start()
    yield process
    process.stop()


def press_until(page: Any, key: str, wanted: str, limit: int = 40) -> None:
    """Press ``key`` (Tab or Shift+Tab) until the element with id or text
    ``wanted`` has the focus, with its focus ring showing."""
    for _ in range(limit):
        page.keyboard.press(key)
        now = focused(page)
        if wanted in (now["id"], now["text"]):
            assert now["outline"] != "none", now
            return
    raise AssertionError(f"{key} never reached {wanted}")


def use_guess_without_billing(page: Any, button: Any) -> None:
    """Press the focused best-guess button, then Tab to its row's Billing box and
    switch billing off with Space."""
    row = str(button.get_attribute("data-fill")).removeprefix("#account-")
    page.keyboard.press("Enter")
    press_until(page, "Tab", f"billing-{row}")
    page.keyboard.press("Space")
    assert not page.is_checked(f"#billing-{row}")


def rows(page: Any) -> list[str]:
    """The grid's company names, in order."""
    return [t.strip() for t in page.locator("#mapping-rows th").all_inner_texts()]


def mapped(agent: AgentProcess) -> dict[str, str]:
    """Company name to its account's name, for the mapped ones."""
    tenants = integrations(agent)[0]["tenants"]
    return {t["name"]: t["account"]["name"] for t in tenants if t["account"]}


def shown_ticks(page: Any) -> list[bool]:
    """Whether each company the filter shows is ticked."""
    return [
        box.is_checked()
        for box in page.locator("#tenant-list li:visible input[name=tenants]").all()
    ]


def select_all_follows_the_filter(page: Any) -> None:
    """On the Add companies page, "Select all" says whether the rows shown are all
    ticked, so a click after a new filter ticks them rather than unticking."""
    names = page.locator("#tenant-list label").all_inner_texts()
    first = names[0].split()[0]
    other = next(n for n in names if first not in n).split()[0]
    select_all = page.locator("#select-all")

    page.fill("#tenant-filter", first)
    select_all.check()
    assert all(shown_ticks(page)) and shown_ticks(page)

    page.fill("#tenant-filter", other)
    assert not any(shown_ticks(page))
    assert not select_all.is_checked(), "no company shown is ticked"
    select_all.click()
    assert all(shown_ticks(page)), "the click ticked the companies shown"

    page.locator("#tenant-list li:visible input[name=tenants]").first.uncheck()
    assert not select_all.is_checked()
    assert select_all.evaluate("e => e.indeterminate")

    # Back to none ticked and no filter, as the setup goes on from here.
    page.fill("#tenant-filter", "")
    assert not select_all.is_checked() and select_all.evaluate("e => e.indeterminate")
    select_all.check()
    select_all.uncheck()
    assert not any(shown_ticks(page)) and len(shown_ticks(page)) == len(names)


def test_the_grid_pages_and_searches_by_keyboard(
    agent: AgentProcess, artifacts_dir
) -> None:
    info = agent.agent_info()
    assert info is not None
    sandbox = agent.sandbox_info()
    with chromium_page() as page:
        page.goto(info["url"])
        connect_kbh(page, sandbox)
        create_integration(page, sandbox)
        select_all_follows_the_filter(page)
        names = add_tenants(page)
        ordered = sorted(names, key=str.casefold)
        assert len(names) == TENANTS and rows(page) == ordered[:PAGE_SIZE]
        summary = page.inner_text("#grid-summary")
        assert f"{TENANTS} companies, showing 1 to {PAGE_SIZE}." in summary
        assert "saves the choices on this page first" in summary
        shot(page, artifacts_dir, "1-first-page")

        # The first row's best guess with billing off (so no agreement is
        # needed), then back up to the pager and on: the choice is saved first.
        first = page.locator("button[data-fill]").first
        press_until(page, "Tab", first.inner_text(), limit=20)
        use_guess_without_billing(page, first)
        press_until(page, "Shift+Tab", "Next page \u203a")
        submit_by_enter(page)
        assert rows(page) == ordered[PAGE_SIZE:]
        assert f"saved: 1 of {TENANTS} are mapped" in page.inner_text("main")
        assert mapped(agent) == {ordered[0]: ordered[0]}
        shot(page, artifacts_dir, "2-second-page")

        # Search by a part of the name from the second page; Enter searches.
        wanted = ordered[1]
        press_until(page, "Tab", "mapping-filter")
        page.keyboard.type(wanted.split()[0].lower())
        submit_by_enter(page)
        assert wanted in rows(page) and all(
            wanted.split()[0] in name for name in rows(page)
        )
        guess = page.get_by_role("button", name=f"Use {wanted} (")
        press_until(page, "Tab", guess.inner_text())
        use_guess_without_billing(page, guess)
        press_until(page, "Tab", "Proceed", limit=200)
        submit_by_enter(page)
        assert page.get_by_role("heading", name="Dashboard").is_visible()
        assert mapped(agent) == {ordered[0]: ordered[0], wanted: wanted}


def test_the_grid_reads_well_at_both_sizes(agent: AgentProcess, artifacts_dir) -> None:
    info = agent.agent_info()
    assert info is not None
    integration = integrations(agent)[0]["id"]
    base = info["url"].split("/?")[0]
    for width, height in SIZES:
        with chromium_page(width, height) as page:
            page.goto(info["url"])
            for query in ("", "?page=2", "?unmapped=1&q=bakery"):
                page.goto(f"{base}/integrations/{integration}/accounts{query}")
                assert_fits_and_labelled(page, query, width, height)
            shot(page, artifacts_dir, f"{width}x{height}-filtered")


def test_the_dashboard_link_to_a_row_finds_its_page(
    agent: AgentProcess, artifacts_dir
) -> None:
    info = agent.agent_info()
    assert info is not None
    tenants = sorted(
        integrations(agent)[0]["tenants"], key=lambda t: t["name"].casefold()
    )
    last = tenants[-1]
    assert not last["account"], "the last company waits for an account"
    with chromium_page() as page:
        page.goto(info["url"])
        link = page.locator(f'a[href$="#account-{last["id"]}"]')
        with page.expect_navigation():
            link.click()
        box = page.locator(f"#account-{last['id']}")
        box.wait_for()
        assert f"tenant={last['id']}" in page.url
        assert "Page 2 of 2" in page.inner_text("main")
        assert box.is_visible() and box.evaluate(
            "e => e.getBoundingClientRect().top < window.innerHeight"
        )
        shot(page, artifacts_dir, "linked-row")
