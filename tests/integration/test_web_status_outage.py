"""The dashboard during a Tigerpaw outage: its error said once under the integration,
the companies' Error cells short."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import html

from agent.sandbox import seed
from tests.integration.agent_support import World, mapped_world

ERROR = (
    "HTTP 500 from tigerpaw.example:443: The Tigerpaw API failed: 500 Internal "
    "Server Error. The agent tries again later"
)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Business Hub with 2 mapped companies; times print in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    fleet = seed.make_fleet("production", 2, 1, devices=1)
    with mapped_world(tmp_path, fleet) as made:
        yield made
    monkeypatch.undo()
    time.tzset()


def test_an_outage_is_said_once_and_the_rows_point_to_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every company failed with Tigerpaw's 500: one line says it, rows are short."""
    store = world.agent.store
    for tenant in store.list_tenants(world.integration_id):
        store.note_tenant_result(tenant.id, error=ERROR)
    real_status = world.agent.status

    def status_with_outage() -> dict[str, Any]:
        status = real_status()
        status.setdefault("sync", {})["integrations"] = [
            {
                "id": world.integration_id,
                "state": "failing",
                "tenants": [],
                "unreachable": [
                    {
                        "system": "Tigerpaw",
                        "address": "tigerpaw.example:443",
                        "error": ERROR,
                        "failing": True,
                        "since": "2026-12-04T23:14:30+00:00",
                    }
                ],
            }
        ]
        return status

    monkeypatch.setattr(world.agent, "status", status_with_outage)

    page = html.fromstring(world.get("/"))

    (line,) = page.xpath("//p[contains(@class, 'unreachable')]")
    assert line.text_content() == (
        "Tigerpaw at tigerpaw.example:443 is failing (since 4 Dec 2026 23:14 UTC): "
        "The Tigerpaw API failed: 500 Internal Server Error. Writes wait and go out "
        "when it works again."
    )
    (shared,) = page.xpath("//p[contains(@class, 'shared-error')]")
    assert shared.text_content() == "2 companies: Tigerpaw is failing"
    cells = [
        c.text_content().strip() for c in page.xpath("//table//td/span[@class='bad']")
    ]
    assert cells == ["Tigerpaw is failing: see above"] * 2
    assert html.tostring(page, encoding="unicode").count("500 Internal") == 1
