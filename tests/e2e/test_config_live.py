"""Hand edits of IntegrationUI.exe.config reach the running agent's status API."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agent_process import AgentProcess

#: Generous for a loaded CI machine; the benchmarks measure the real delay.
DEADLINE_S = 5.0


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory):
    """One agent (without the sandbox: the config does not need it)."""
    process = AgentProcess(tmp_path_factory.mktemp("config-live"))
    process.start()
    yield process
    process.stop()


def save_by_rename(path: Path, text: str) -> None:
    """Save as editors that write a temp file and rename it over the original do."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def wait_for(agent: AgentProcess, check: Callable[[dict], bool]) -> float:
    """Seconds until the status API satisfies ``check``; fails after the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE_S:
        status = agent.status()
        if check(status):
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"Status never changed: {agent.status()['config']}")


def test_kescloudserver_edit_applies_live(agent: AgentProcess) -> None:
    original = agent.config_path.read_text(encoding="utf-8")
    edited = original.replace(
        "<appSettings>",
        '<appSettings>\n    <add key="KESCloudServer" value="beta" />',
    )
    save_by_rename(agent.config_path, edited)

    elapsed = wait_for(
        agent, lambda s: s["config"]["settings"]["KESCloudServer"] == "beta"
    )
    print(f"KESCloudServer applied {elapsed:.2f} s after the save")
    assert "KESCloudServer: production -> beta" in agent.output()


def test_broken_edit_keeps_last_good_settings_and_names_line_and_key(
    agent: AgentProcess,
) -> None:
    good = agent.config_path.read_text(encoding="utf-8")
    lines = good.splitlines()
    number = next(
        i for i, line in enumerate(lines, 1) if "ServiceOrderSyncMinutes" in line
    )
    agent.config_path.write_text(
        good.replace('value="5"', 'value="0"'), encoding="utf-8"
    )

    wait_for(agent, lambda s: not s["config"]["ok"])
    config = agent.status()["config"]
    assert config["error"]["line"] == number
    assert config["error"]["key"] == "ServiceOrderSyncMinutes"
    assert f"line {number}" in config["error"]["message"]
    assert config["settings"]["ServiceOrderSyncMinutes"] == "5"

    save_by_rename(agent.config_path, good.replace('value="5"', 'value="15"'))
    wait_for(agent, lambda s: s["config"]["ok"])
    assert agent.status()["config"]["settings"]["ServiceOrderSyncMinutes"] == "15"
