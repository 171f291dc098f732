"""One outage said once: the status text and the dashboard name an error shared by
many tenants once under the integration, and the tenants' rows point to it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent.web.dashboard import group_errors, outage_words, status_text

URL = "http://127.0.0.1:47800/?token=abc"
ADDRESS = "127.0.0.1:38509"
REFUSED = (
    "The connection to Tigerpaw at 127.0.0.1:38509 failed (the server closed the "
    "connection without answering): check that Tigerpaw runs and that no firewall "
    "or proxy between cuts the connection"
)
SERVER_500 = (
    f"HTTP 500 from {ADDRESS}: The Tigerpaw API failed: 500 Internal Server Error. "
    "The agent tries again later"
)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times print in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def outage(error: str) -> dict[str, Any]:
    """Tigerpaw's entry in a run's ``unreachable`` list (``failing`` when it
    answered with a server error, as the scheduler says)."""
    return {
        "system": "Tigerpaw",
        "address": ADDRESS,
        "error": error,
        "failing": error.startswith("HTTP 5"),
        "since": "2026-12-04T23:14:30+00:00",
    }


def down_status(companies: int, error: str = REFUSED) -> dict[str, Any]:
    """A Business Hub integration whose every company failed with the outage."""
    tenants = [
        {
            "id": n,
            "name": f"Company {n:02d}",
            "account": {"number": 1000 + n, "name": f"Company {n:02d}"},
            "last_sync": None,
            "error": error,
        }
        for n in range(1, companies + 1)
    ]
    run = {
        "id": "i-1",
        "state": "failing",
        "error": f"Tigerpaw is unreachable: {error}",
        "unreachable": [outage(error)],
        "tenants": [
            {"id": t["id"], "state": "failing", "error": error} for t in tenants
        ],
    }
    return {
        "version": "0.1.0",
        "config": {"path": "/tmp/x.config", "ok": True, "error": None},
        "sync": {"state": "failing", "integrations": [run]},
        "integrations": [
            {"id": "i-1", "name": "Dental clients", "source": "kbh", "tenants": tenants}
        ],
    }


def test_forty_companies_failing_with_the_outage_say_its_error_once() -> None:
    """The outage's words once; the count once; each company a short pointer."""
    text = status_text(down_status(40), url=URL, pid=1, every_tenant=True)

    assert text.count("server closed the connection") == 1
    assert (
        f"  Tigerpaw at {ADDRESS} does not answer (since 4 Dec 2026 23:14 UTC): "
        f"{REFUSED}\n"
    ) in text
    assert "  40 companies: Tigerpaw does not answer\n" in text
    assert text.count("    Error: Tigerpaw does not answer: see above") == 40
    assert "  Error: Tigerpaw is unreachable" not in text


def test_a_server_error_is_failing_and_said_without_repeating_itself() -> None:
    """A 500 answered: "is failing", the address and status said once."""
    words = outage_words(outage(SERVER_500))

    assert words.failing
    assert words.text == (
        f"Tigerpaw at {ADDRESS} is failing (since 4 Dec 2026 23:14 UTC): The "
        "Tigerpaw API failed: 500 Internal Server Error"
    )


def test_a_server_error_without_the_status_in_its_message_keeps_it() -> None:
    """Tigerpaw's message without a status: "HTTP 503" stays, the address goes."""
    words = outage_words(outage(f"HTTP 503 from {ADDRESS}: Busy, try later."))

    assert words.text.endswith(
        "is failing (since 4 Dec 2026 23:14 UTC): HTTP 503: Busy, try later"
    )


def test_an_error_shared_by_many_tenants_is_said_once_and_a_rare_one_in_full() -> None:
    """Three tenants with one error share a line; a lone error stays in its row."""
    errors = ["Map it first"] * 3 + ["The agreement 7 is gone", None]

    groups = group_errors({"error": "Map it first"}, errors, "company")

    assert groups.outages == []
    assert groups.shared == ["3 companies: Map it first"]
    assert groups.cell("Map it first") == "See above (3 companies share it)"
    assert groups.cell("The agreement 7 is gone") == "The agreement 7 is gone"
    assert groups.cell(None) == ""
    assert groups.run_error is None


def test_without_an_outage_or_a_shared_error_the_run_error_stays() -> None:
    """The run's own error is said when nothing above says it."""
    groups = group_errors({"error": "The store is locked"}, ["A", "B"], "company")

    assert groups.run_error == "The store is locked"
    assert groups.shared == []
