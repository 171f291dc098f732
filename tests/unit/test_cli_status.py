"""``integration-agent status`` in words: the agent, its page, the sync, and each
integration and tenant with its last sync, what was written, errors and advice."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.cli import build_parser, main
from agent.web.dashboard import status_text

ROOT = Path(__file__).resolve().parents[2]
URL = "http://127.0.0.1:47800/?token=abc"


@pytest.fixture(autouse=True)
def berlin_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times print in a zone one hour east of UTC in December."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def status(**changes: Any) -> dict[str, Any]:
    """A status reply as the API gives it: one Business Hub integration with a
    synced company, a failing one and one not mapped yet."""
    reply: dict[str, Any] = {
        "version": "0.1.0",
        "config": {"path": "/opt/IntegrationUI.exe.config", "ok": True, "error": None},
        "secrets": {"fallback": False},
        "sync": {
            "state": "failing",
            "last_run": "2026-12-04T17:40:00+00:00",
            "next_run": "2026-12-04T17:45:00+00:00",
            "integrations": [
                {
                    "id": "i-1",
                    "state": "failing",
                    "last_run": "2026-12-04T17:40:00+00:00",
                    "next_run": "2026-12-04T17:45:00+00:00",
                    "next_license_run": "2026-12-05T01:00:00+00:00",
                    "error": None,
                    "tenants": [
                        {"id": 1, "state": "waiting_approval", "error": None},
                        {"id": 2, "state": "failing", "error": "Tigerpaw is down"},
                    ],
                }
            ],
        },
        "integrations": [
            {
                "id": "i-1",
                "name": "Dental clients",
                "source": "kbh",
                "waiting": {
                    "count": 1,
                    "error": "Service order 20001 is locked",
                    "next_try": "2026-12-04T17:50:00+00:00",
                },
                "tenants": [
                    {
                        "id": 1,
                        "name": "Alpine Dental",
                        "account": {"number": 1001, "name": "Alpine Dental"},
                        "last_sync": "2026-12-04T17:40:12.345678+00:00",
                        "error": None,
                        "wrote": "2 service orders opened, 1 charge set",
                    },
                    {
                        "id": 2,
                        "name": "Blue Yonder",
                        "account": {"number": 1002, "name": "Blue Yonder Dental"},
                        "last_sync": None,
                        "error": "Tigerpaw refused the REST keys: check them",
                        "wrote": "",
                    },
                    {"id": 3, "name": "Contoso", "account": None, "last_sync": None},
                ],
            }
        ],
    }
    reply.update(changes)
    return reply


def test_the_summary_names_the_agent_page_and_sync_in_local_time() -> None:
    lines = status_text(status(), url=URL, pid=4321).splitlines()

    assert lines[0] == "Tigerpaw integration agent 0.1.0 is running (process 4321)."
    assert lines[1] == f"Page: {URL}"
    assert lines[2] == "Config: /opt/IntegrationUI.exe.config"
    assert lines[3] == (
        "Sync: failing: see the errors below; last run 4 Dec 2026 18:40 UTC+01:00; "
        "next run 4 Dec 2026 18:45 UTC+01:00"
    )


def test_each_tenant_has_its_sync_writes_errors_and_advice() -> None:
    text = status_text(status(), url=URL, pid=None)

    assert (
        "Dental clients (Kaspersky Business Hub)\n"
        "  Sync: failing: see the errors below; last run 4 Dec 2026 18:40 UTC+01:00; "
        "next run 4 Dec 2026 18:45 UTC+01:00; next billing run 5 Dec 2026 02:00 "
        "UTC+01:00\n"
        "  3 companies: 2 mapped, 1 with errors, 1 waiting for billing approval, "
        "1 write waiting\n"
    ) in text
    assert "next billing run 5 Dec 2026 02:00 UTC+01:00" in text
    assert (
        "  1 write to Tigerpaw waiting to be sent (next try 4 Dec 2026 18:50 "
        "UTC+01:00, or press Sync now on the page): Service order 20001 is locked"
    ) in text
    assert (
        "  Alpine Dental: Tigerpaw account Alpine Dental (1001)\n"
        "    Last sync 4 Dec 2026 18:40 UTC+01:00; in Tigerpaw over its last day: "
        "2 service orders opened, 1 charge set\n"
        "    Billing waits for your approval: approve it on the page's Billing "
        "preview.\n"
    ) in text
    assert (
        "  Blue Yonder: Tigerpaw account Blue Yonder Dental (1002)\n"
        "    Last sync never\n"
        "    Error: Tigerpaw refused the REST keys: check them\n"
        "    The agent tries again on each run; once the cause is fixed, press "
        "Sync now on the page to try at once."
    ) in text
    assert "  Contoso: not mapped: map it to a Tigerpaw account on the page" in text
    assert "T17:" not in text and ".345678" not in text


def test_config_problem_and_no_keyring_are_said_with_what_happens() -> None:
    broken = {
        "path": "/opt/IntegrationUI.exe.config",
        "ok": False,
        "error": {"message": "line 4: LogLevel 'Infoo' is not a level", "line": 4},
    }
    text = status_text(
        status(config=broken, secrets={"fallback": True}, integrations=[]),
        url=URL,
        pid=1,
    )

    assert (
        "  Problem: line 4: LogLevel 'Infoo' is not a level. The agent keeps the "
        "last good settings until the file is fixed."
    ) in text
    assert "no system keyring works here" in text
    assert text.endswith("No integration is set up yet: open the page to set one up.")


def test_status_takes_json_for_scripts() -> None:
    assert build_parser().parse_args(["status", "--json"]).json is True
    assert build_parser().parse_args(["status"]).json is False


def with_fine_tenants(count: int) -> dict[str, Any]:
    """The status reply with ``count`` more companies, synced and needing nothing."""
    reply = status()
    for number in range(count):
        reply["integrations"][0]["tenants"].append(
            {
                "id": 100 + number,
                "name": f"Fine {number}",
                "account": {"number": 2000 + number, "name": f"Fine {number}"},
                "last_sync": "2026-12-04T17:40:00+00:00",
                "error": None,
            }
        )
        reply["sync"]["integrations"][0]["tenants"].append(
            {"id": 100 + number, "state": "idle", "error": None}
        )
    return reply


def test_only_the_tenants_that_need_action_are_listed() -> None:
    text = status_text(with_fine_tenants(159), url=URL, pid=None)

    assert (
        "  162 companies: 161 mapped, 1 with errors, 1 waiting for billing "
        "approval, 1 write waiting\n"
    ) in text
    assert "locked\n  Needing action (3):\n  Alpine Dental: " in text
    assert "Fine 0" not in text and "Fine 158" not in text
    assert "  Contoso: not mapped" in text
    assert text.endswith(
        "  Not listed: 159 companies with nothing to do (integration-agent status "
        "--all lists every one)"
    )
    assert len(text.splitlines()) < 30


def test_all_lists_every_tenant() -> None:
    text = status_text(with_fine_tenants(159), url=URL, pid=None, every_tenant=True)

    assert "  Fine 0: Tigerpaw account Fine 0 (2000)" in text
    assert "  Fine 158: Tigerpaw account Fine 158 (2158)" in text
    assert "Needing action" not in text and "Not listed" not in text
    assert build_parser().parse_args(["status", "--all"]).all is True
    assert build_parser().parse_args(["status"]).all is False


def test_while_paused_each_integration_says_paused_too() -> None:
    reply = status()
    reply["sync"]["state"] = "paused"
    reply["sync"]["integrations"][0]["state"] = "idle"

    text = status_text(reply, url=URL, pid=None)

    paused = "paused: scheduled runs wait until you press Resume"
    assert text.splitlines()[3].startswith(f"Sync: {paused}")
    assert f"  Sync: {paused}; last run" in text
    assert "idle, waiting for the next run" not in text


def test_a_reader_that_stops_early_ends_the_output_quietly() -> None:
    # What `integration-agent status | head` does to the printing side.
    script = (
        "import sys; from agent.cli import print_to_pipe; "
        "sys.exit(print_to_pipe('a line of status\\n' * 50000))"
    )
    done = subprocess.run(
        f'"{sys.executable}" -c "{script}" | head -n 1',
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.stdout == "a line of status\n"
    assert done.stderr == ""


def test_no_running_agent_is_exit_code_1_with_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(tmp_path), "status"]) == 1
    out = capsys.readouterr().out
    assert f"No agent is running with the data folder {tmp_path}" in out
    assert "start it with integration-agent" in out


def test_an_unreachable_tigerpaw_is_said_under_its_integration() -> None:
    given = status()
    given["sync"]["integrations"][0]["unreachable"] = [
        {
            "system": "Tigerpaw",
            "address": "tigerpaw.example:443",
            "error": "Nothing is listening at tigerpaw.example:443",
            "since": "2026-12-04T17:38:00+00:00",
        }
    ]

    text = status_text(given, url=URL, pid=4242, every_tenant=True)

    assert (
        "  Tigerpaw at tigerpaw.example:443 does not answer (since 4 Dec 2026 18:38 "
        "UTC+01:00): Nothing is listening at tigerpaw.example:443\n"
    ) in text
