"""The service order rows of the Settings page, in Debian's chromium: tick rows and
Edit selected sets several at once, Cancel returns to the last saved values, and
Reset (after asking) puts every row back to its default and saves it.

One sandboxed agent and one browser (tests/e2e/conftest.py) serve the module; the
tests run in order, each leaving the page where the next one starts.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent.sandbox import tigerpaw_seed
from agent.sources.records import PROBLEM_DESCRIPTIONS
from agent.store.choices import STATUS_LEVEL_LABELS as STATUS_LEVELS
from tests.e2e.setup_helpers import integrations, shot
from tests.e2e.test_features_admins import create_kbh_integration

pytestmark = pytest.mark.browser

EVENTS = ("critical", "functional_failure", "warning")
PRIORITY = tigerpaw_seed.PRIORITIES[1][0]
ORDER_TYPE = tigerpaw_seed.ORDER_TYPES[0][0]
BOARD = tigerpaw_seed.BOARDS[1]
#: What Edit selected sets each device status section's rows to.
PRIORITIES = {
    "warning": tigerpaw_seed.PRIORITIES[3][0],
    "critical": tigerpaw_seed.PRIORITIES[1][0],
}


def row(page: Any, prefix: str) -> dict[str, Any]:
    """What one rule row holds now."""
    found: dict[str, Any] = {
        "enabled": page.locator(f"#{prefix}-enabled").is_checked(),
    }
    for field in ("priority", "type", "board"):
        found[field] = page.locator(f"#{prefix}-{field}").input_value()
    lifetime = page.locator(f"#{prefix}-lifetime")
    if lifetime.count():
        found["lifetime"] = lifetime.input_value()
    return found


def save(page: Any) -> None:
    """Press Save and check the settings were kept."""
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    assert "are saved" in page.inner_text("main"), page.inner_text("main")


DEFAULT_EVENT = {"enabled": False, "priority": "", "type": "", "board": ""}


def test_edit_selected_sets_the_ticked_event_rows(
    page, agent, sandbox, artifacts_dir
) -> None:
    create_kbh_integration(page, sandbox)
    integration = integrations(agent)[0]["id"]
    page.goto(f"{agent.base_url()}/integrations/{integration}/settings")
    page.select_option("#rep", label="Kaspersky Integration")
    page.select_option("#new_status", "New")
    page.select_option("#closed_status", "Closed")

    panel = page.locator("[data-bulk-panel=event-rows]")
    panel.get_by_role("button", name="Edit selected").click()
    assert "Tick the rows to edit first" in panel.inner_text()

    page.get_by_label("Select the row Critical").check()
    page.get_by_label("Select the row Warning").check()
    panel.get_by_label("On or off").select_option("on")
    panel.get_by_label("Lifetime (days)").fill("5")
    panel.get_by_label("Priority").select_option(PRIORITY)
    panel.get_by_label("Type").select_option(ORDER_TYPE)
    panel.get_by_label("Board").select_option(BOARD)
    panel.get_by_role("button", name="Edit selected").click()
    assert "Changed 2 rows" in panel.inner_text()

    chosen = {"enabled": True, "priority": PRIORITY, "type": ORDER_TYPE}
    chosen.update({"board": BOARD, "lifetime": "5"})
    assert row(page, "event-critical") == chosen
    assert row(page, "event-warning") == chosen
    assert row(page, "event-functional_failure") == {**DEFAULT_EVENT, "lifetime": "1"}
    shot(page, artifacts_dir, "1-events-edited")

    # "(leave as is)" keeps a field; only the priority changes now.
    page.get_by_label("Select the row Warning").uncheck()
    panel.get_by_label("On or off").select_option(label="(leave as is)")
    panel.get_by_label("Lifetime (days)").fill("")
    for name in ("Type", "Board"):
        panel.get_by_label(name).select_option(label="(leave as is)")
    panel.get_by_label("Priority").select_option(label="(default)")
    panel.get_by_role("button", name="Edit selected").click()
    assert row(page, "event-critical") == {**chosen, "priority": ""}
    assert row(page, "event-warning") == chosen

    save(page)
    assert row(page, "event-critical") == {**chosen, "priority": ""}
    assert row(page, "event-warning") == chosen


def status_rows(page: Any) -> dict[str, dict[str, Any]]:
    """Every device status row of both sections, by its prefix."""
    return {
        prefix: row(page, prefix)
        for level in STATUS_LEVELS
        for prefix in (f"status-{level}-{word}" for word in PROBLEM_DESCRIPTIONS)
    }


def test_select_every_status_row_then_cancel_returns_to_saved(
    page, artifacts_dir
) -> None:
    saved = status_rows(page)
    assert all(not r["enabled"] and r["priority"] == "" for r in saved.values())

    # Each section's Edit selected changes its own ticked rows only.
    for level, name in STATUS_LEVELS.items():
        page.get_by_label(f"Select every {name} description").check()
        panel = page.locator(f"[data-bulk-panel=status-{level}-rows]")
        assert panel.get_by_label("Lifetime (days)").count() == 0, "statuses have none"
        panel.get_by_label("On or off").select_option("on")
        panel.get_by_label("Priority").select_option(PRIORITIES[level])
        panel.get_by_role("button", name="Edit selected").click()
        assert f"Changed {len(PROBLEM_DESCRIPTIONS)} rows" in panel.inner_text()
    for prefix, edited in status_rows(page).items():
        level = prefix.split("-")[1]
        assert edited["enabled"] and edited["priority"] == PRIORITIES[level], prefix
    event_before = row(page, "event-warning")
    assert event_before["enabled"], "the other table is untouched"
    shot(page, artifacts_dir, "2-statuses-edited")

    with page.expect_navigation():
        page.get_by_role("link", name="Cancel", exact=True).click()
    assert status_rows(page) == saved
    assert row(page, "event-warning") == event_before
    shot(page, artifacts_dir, "3-after-cancel")


def test_one_section_saved_leaves_the_other(page, artifacts_dir) -> None:
    """A row ticked in Critical status and edited is saved there only."""
    word = next(iter(PROBLEM_DESCRIPTIONS))
    description = PROBLEM_DESCRIPTIONS[word]
    critical = page.get_by_role("region", name="Critical status", exact=True)
    critical.get_by_label(f"Select the row {description}").check()
    panel = critical.locator("[data-bulk-panel]")
    panel.get_by_label("On or off").select_option("on")
    panel.get_by_label("Type").select_option(ORDER_TYPE)
    panel.get_by_role("button", name="Edit selected").click()
    assert "Changed 1 row" in panel.inner_text()
    save(page)

    rows = status_rows(page)
    assert rows.pop(f"status-critical-{word}") == {
        **DEFAULT_EVENT,
        "enabled": True,
        "type": ORDER_TYPE,
    }
    assert all(r == DEFAULT_EVENT for r in rows.values()), rows
    shot(page, artifacts_dir, "3b-critical-row-saved")


def test_reset_asks_then_saves_the_defaults(page, artifacts_dir) -> None:
    settings = page.url
    page.get_by_label("Select the row Functional failure").check()
    panel = page.locator("[data-bulk-panel=event-rows]")
    panel.get_by_label("Priority").select_option(PRIORITY)
    panel.get_by_role("button", name="Edit selected").click()
    save(page)
    rep = page.locator("#rep").input_value()

    with page.expect_navigation():
        page.get_by_role("link", name="Reset", exact=True).click()
    assert page.get_by_role("heading", name="Reset the service order rows").is_visible()
    shot(page, artifacts_dir, "4-reset-asks")
    with page.expect_navigation():
        page.get_by_role("link", name="Cancel", exact=True).click()
    assert page.url == settings
    assert row(page, "event-critical")["enabled"], "Cancel on the question changes none"

    with page.expect_navigation():
        page.get_by_role("link", name="Reset", exact=True).click()
    with page.expect_navigation():
        page.get_by_role("button", name="Reset to defaults").click()
    assert page.url == settings
    assert "back to their defaults" in page.inner_text("main")
    for severity in EVENTS:
        assert row(page, f"event-{severity}") == {**DEFAULT_EVENT, "lifetime": "1"}
    assert all(r == DEFAULT_EVENT for r in status_rows(page).values())
    assert page.locator("#rep").input_value() == rep, "the rep is kept"
    shot(page, artifacts_dir, "5-after-reset")

    page.reload()
    assert row(page, "event-warning") == {**DEFAULT_EVENT, "lifetime": "1"}
