"""Helpers for the setup page's browser tests: fields, errors, screenshots, state."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests

from tests.agent_process import AgentProcess

#: The marker of the sandbox's credential panel, shown only with --sandbox.
SANDBOX_PANEL = re.compile(r'<details class="sandbox".*?</details>', re.DOTALL)


def shot(page: Any, folder: Path, name: str) -> None:
    """Save a full-page screenshot of the current step."""
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def proceed(page: Any) -> None:
    """Press Proceed and wait for the next page."""
    with page.expect_navigation():
        page.get_by_role("button", name="Proceed").click()


def error_of(page: Any, field: str) -> str:
    """The error shown beside a field ("" when there is none)."""
    found = page.locator(f"#{field}-error")
    return found.inner_text() if found.count() else ""


def value_of(page: Any, field: str) -> str:
    """What a field holds now."""
    return str(page.locator(f"#{field}").input_value())


def sandbox_state(url: str) -> dict[str, Any]:
    """An emulator's ``/_sandbox/state``."""
    reply = requests.get(f"{url}/_sandbox/state", timeout=10)
    reply.raise_for_status()
    return dict(reply.json())


def fill_tigerpaw(page: Any, tigerpaw: dict[str, Any], **overrides: str) -> None:
    """Fill the Create integration page from the sandbox's Tigerpaw credentials."""
    values = {
        "api_url": tigerpaw["url"],
        "soap_user": tigerpaw["soap_user"],
        "soap_password": tigerpaw["soap_password"],
        "public_key": tigerpaw["public_key"],
        "private_key": tigerpaw["private_key"],
        **overrides,
    }
    for field, value in values.items():
        page.fill(f"#{field}", value)


def use_every_suggestion(page: Any) -> int:
    """Press every "Use ..." best-guess button of the mapping grid; how many."""
    buttons = page.locator("button[data-fill]")
    count = buttons.count()
    for index in range(count):
        buttons.nth(index).click()
    return count


def wait_for_agreements(page: Any) -> None:
    """Wait until every row with an account has its agreements loaded."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('input[data-agreement]')]
            .filter(i => /\\(\\d+\\)$/.test(i.value))
            .map(i => document.querySelector(i.dataset.agreement))
            .every(select => select.dataset.loadedFor)"""
    )


def integrations(agent: AgentProcess) -> list[dict[str, Any]]:
    """The integrations the status API reports."""
    return list(agent.status()["integrations"])


def strip_sandbox_panel(html: str) -> str:
    """A page without the sandbox's credential panel (which lists test passwords)."""
    return SANDBOX_PANEL.sub("", html)
