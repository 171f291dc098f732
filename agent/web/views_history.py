"""The History page: every change the agent made in Tigerpaw, newest first, with what
it was before and after, filtered by integration and account."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import render_template, request

from agent.store import HistoryEntry
from agent.web.pages import blueprint, local_time, setup_service

logger = logging.getLogger(__name__)

#: How many changes one page of the history shows.
PAGE_SIZE = 100


@dataclass(frozen=True)
class HistoryRow:
    """One kept change, in the words the page shows."""

    id: int
    at: str
    integration: str
    account: str
    target: str
    action: str
    change: str


@blueprint.get("/history")
def history_page() -> Any:
    """The kept changes, newest first, a page at a time."""
    store = setup_service().store
    integration_id = request.args.get("integration") or None
    account = _whole_number(request.args.get("account"))
    before = _whole_number(request.args.get("before"))

    entries = store.list_history(
        integration_id=integration_id,
        account_number=account,
        before_id=before,
        limit=PAGE_SIZE + 1,
    )
    more = len(entries) > PAGE_SIZE
    rows = [history_row(entry) for entry in entries[:PAGE_SIZE]]

    return render_template(
        "history.html",
        rows=rows,
        integrations=store.list_integrations(),
        chosen=integration_id or "",
        account=account,
        older=rows[-1].id if more and rows else None,
        page_size=PAGE_SIZE,
    )


def _whole_number(text: str | None) -> int | None:
    """A positive whole number from a query argument, or None for anything else."""
    if text is None or not text.strip().isdigit():
        return None
    return int(text)


def history_row(entry: HistoryEntry) -> HistoryRow:
    """How one kept change reads on the page."""
    account = entry.tenant_name or ""
    if entry.account_number is not None:
        number = f"account {entry.account_number}"
        account = f"{account} ({number})" if account else number
    return HistoryRow(
        id=entry.id,
        at=local_time(entry.at, seconds=True),
        integration=entry.integration_name or entry.integration_id,
        account=account,
        target=entry.target,
        action=entry.action,
        change=describe_change(entry.before, entry.after),
    )


def describe_change(before: Any, after: Any) -> str:
    """Before and after in words: quantities as "3 -> 5", texts as they are."""
    if isinstance(after, dict) and "quantity" in after:
        old = before.get("quantity") if isinstance(before, dict) else None
        new = after["quantity"]
        return (
            f"quantity {new} (was none)" if old is None else f"quantity {old} -> {new}"
        )
    if before is not None and after is not None:
        return f"{_text(before)} -> {_text(after)}"
    if after is not None:
        return _text(after)
    return ""


def _text(value: Any) -> str:
    """A before or after value as plain text."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {item}" for key, item in value.items())
    return str(value)
