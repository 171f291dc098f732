"""The History page: every kept change, newest first, filtered and paged, in words."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.app import Agent, AgentOptions
from agent.logs import RecentRecords
from agent.store import NewHistory, Store
from agent.web import create_app, views_history
from agent.web.pages import local_time

ROOT = Path(__file__).resolve().parents[2]
PORT = 47991
HOST = f"127.0.0.1:{PORT}"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    """An agent with an empty store and no sandbox."""
    shutil.copy(ROOT / "IntegrationUI.exe.config", tmp_path / "agent.config")
    options = AgentOptions(config_path=tmp_path / "agent.config", data_dir=tmp_path)
    made = Agent(options, RecentRecords())
    made.config.load()
    made.store = Store.open_in(tmp_path)
    yield made
    made.store.close()


def get(agent: Agent, path: str) -> str:
    """The page's text at ``path``, read as a script does (Bearer token)."""
    client = create_app(agent, PORT).test_client()
    headers = {"Host": HOST, "Authorization": f"Bearer {agent.token}"}
    reply = client.get(path, headers=headers)
    assert reply.status_code == 200, reply.status_code
    return reply.get_data(as_text=True)


def charge(account: int, before: int | None, after: int, integration: str = "i-1"):
    """A history entry for a charge's quantity set on an account's agreement."""
    return NewHistory(
        integration_id=integration,
        target=f"agreement 7 charge KES-WS of {account}",
        action="charge updated" if before is not None else "charge created",
        account_number=account,
        before={"quantity": before},
        after={"quantity": after},
    )


def test_empty_history_says_so(agent: Agent) -> None:
    assert "No change made in Tigerpaw yet." in get(agent, "/history")


def test_changes_show_newest_first_with_before_and_after(agent: Agent) -> None:
    assert agent.store is not None
    agent.store.record_history(charge(101, None, 12))
    agent.store.record_history(charge(101, 12, 14))
    agent.store.record_history(
        NewHistory(
            integration_id="i-1",
            target="service order 1042",
            action="created",
            account_number=102,
            after="Virus found on PC-17",
        )
    )

    text = get(agent, "/history")

    assert text.index("service order 1042") < text.index("quantity 12 -&gt; 14")
    assert text.index("quantity 12 -&gt; 14") < text.index("quantity 12 (was none)")
    assert "Virus found on PC-17" in text


def test_account_filter_shows_that_account_only(agent: Agent) -> None:
    assert agent.store is not None
    agent.store.record_history(charge(101, 1, 2))
    agent.store.record_history(charge(202, 3, 4))

    text = get(agent, "/history?account=202")

    assert "quantity 3 -&gt; 4" in text
    assert "quantity 1 -&gt; 2" not in text


def test_odd_filter_values_show_everything(agent: Agent) -> None:
    assert agent.store is not None
    agent.store.record_history(charge(101, 1, 2))
    assert "quantity 1 -&gt; 2" in get(agent, "/history?account=x%3Cb%3E&before=-1")


def test_pages_go_back_through_older_changes(agent: Agent) -> None:
    assert agent.store is not None
    total = views_history.PAGE_SIZE + 5
    for number in range(total):
        agent.store.record_history(charge(101, number, number + 1))

    first = get(agent, "/history")
    assert first.count("<tr data-name=") == views_history.PAGE_SIZE
    assert "Older changes" in first
    older = first.split('href="/history?')[1].split('"')[0].replace("&amp;", "&")

    second = get(agent, f"/history?{older}")
    assert second.count("<tr data-name=") == 5
    assert "quantity 0 -&gt; 1" in second
    assert "Older changes" not in second


def test_typed_text_is_escaped(agent: Agent) -> None:
    assert agent.store is not None
    agent.store.record_history(
        NewHistory(
            integration_id="i-1",
            target="service order 9",
            action="note added",
            after="<script>alert(1)</script>",
        )
    )
    text = get(agent, "/history")
    assert "<script>alert(1)" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_times_read_in_local_time_with_the_zone() -> None:
    at = dt.datetime(2026, 12, 4, 18, 40, 5, tzinfo=dt.UTC)
    row = views_history.history_row(
        views_history.HistoryEntry(
            id=1, at=at, integration_id="i-1", target="t", action="a"
        )
    )
    assert row.at == local_time(at, seconds=True)
    assert "Dec 2026" in row.at and "UTC" in row.at
