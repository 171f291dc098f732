"""``integration-agent status`` against a running agent over a real socket: words
by default, the status API's JSON with --json, exit code 1 once the agent stops."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.app import Agent, AgentOptions
from agent.cli import main
from agent.logs import RecentRecords
from agent.store import IntegrationSettings, NewHistory, NewTenant

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    """A started agent (no sandbox) on a free port, its sync paused, holding one
    KSC integration of two virtual servers: one synced, one failing."""
    shutil.copy(ROOT / "IntegrationUI.exe.config", tmp_path / "agent.config")
    options = AgentOptions(
        config_path=tmp_path / "agent.config",
        data_dir=tmp_path,
        headless=True,
        port=0,
        open_browser=False,
    )
    started = Agent(options, RecentRecords())
    started.start()
    assert started.scheduler is not None and started.store is not None
    # Nothing may reach for the made-up console below.
    started.scheduler.pause()

    store = started.store
    integration = store.create_integration(
        IntegrationSettings(source="ksc", name="Clinics", ksc_address="127.0.0.1:13299")
    )
    first, second = store.add_tenants(
        integration.id,
        [NewTenant("vs-1", "Contoso Clinic"), NewTenant("vs-2", "Northwind Clinic")],
    )
    store.map_account(first.id, 1001, "Contoso Clinic")
    at = dt.datetime(2026, 12, 4, 17, 40, tzinfo=dt.UTC)
    store.note_tenant_result(first.id, at=at)
    store.record_history(
        NewHistory(
            integration_id=integration.id,
            tenant_id=first.id,
            target="service order 20001",
            action="created",
            account_number=1001,
            after="Virus found on PC-7",
        )
    )
    store.note_tenant_result(
        second.id, error="KSC refused the password: check it on the page", at=at
    )
    yield started
    started.stop()


def test_status_prints_words_then_json_then_says_none_runs(
    agent: Agent, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(agent.options.data_dir)

    assert main(["--data-dir", data_dir, "status"]) == 0
    text = capsys.readouterr().out

    assert main(["--data-dir", data_dir, "status", "--all"]) == 0
    every = capsys.readouterr().out

    assert main(["--data-dir", data_dir, "status", "--json"]) == 0
    reply = json.loads(capsys.readouterr().out)

    agent.stop()
    assert main(["--data-dir", data_dir, "status"]) == 1
    stopped = capsys.readouterr().out

    assert text.startswith("Tigerpaw integration agent ")
    assert f"Page: {agent.launch_url}" in text
    assert "Sync: paused: scheduled runs wait until you press Resume" in text
    assert "Clinics (Kaspersky Security Center)\n  Sync: paused: scheduled" in text
    assert "idle, waiting for the next run" not in text
    assert (
        "  2 virtual servers: 1 mapped, 1 with errors, 0 waiting for billing "
        "approval, 0 writes waiting\n"
    ) in text
    # Only the server that needs action is listed; --all lists the other too.
    assert "  Northwind Clinic: not mapped" in text
    assert "    Error: KSC refused the password: check it on the page" in text
    assert "Contoso Clinic" not in text
    assert "  Not listed: 1 virtual server with nothing to do" in text
    assert "  Contoso Clinic: Tigerpaw account Contoso Clinic (1001)" in every
    assert "; in Tigerpaw over its last day: 1 service order opened" in every
    assert "  Northwind Clinic: not mapped" in every
    assert "{" not in text, "no JSON by default"

    (integration,) = reply["integrations"]
    assert reply["sync"]["state"] == "paused"
    assert [t["name"] for t in integration["tenants"]] == [
        "Contoso Clinic",
        "Northwind Clinic",
    ]
    assert integration["tenants"][0]["wrote"] == "1 service order opened"
    assert "No agent is running" in stopped
