"""What a new user tripped over on the pages, against real emulators on 127.0.0.1:
the rule table's column headers, counts in words, local times with their zone, the
billing preview's Approve with nothing ticked, the tab icon and the error page."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import html
from PIL import Image

from agent.sandbox import seed
from agent.store import NewHistory
from agent.tray.icons import draw_icon
from agent.tray.state import TrayState
from agent.web import create_app
from tests.integration.agent_support import HOST, PORT, World, mapped_world

#: Any count followed by a noun in the wrong number, or a "(s)" left to the reader.
WRONG_NUMBER = re.compile(
    r"\b1 (devices|servers|workstations|mailboxes|accounts|companies|writes)\b"
    r"|\b([02-9]|\d\d+) (device|server|workstation|mailbox|account|company|write)\b"
    r"|\w\(s\)"
)
#: A machine's time: ISO 8601 with its "T", or a log stamp with milliseconds.
MACHINE_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d)?([.,]\d+)?")


@pytest.fixture
def berlin_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the test in a zone one hour east of UTC in December."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def text_of(page: str) -> str:
    """The words a person reads on a page, in one line."""
    words = html.fromstring(page).xpath("//main//text()")
    return " ".join(" ".join(words).split())


@pytest.fixture
def world(tmp_path: Path, berlin_time: None) -> Iterator[World]:
    """Business Hub with 2 one-device companies, Tigerpaw with 2 accounts, and an
    agent whose integration maps each company with billing on."""
    fleet = seed.make_fleet("production", 2, 1, devices=1)
    with mapped_world(tmp_path, fleet) as made:
        yield made


def cell_column(table: Any, element_id: str) -> int:
    """The position of the cell that holds an element, in its row."""
    cell = table.xpath(f".//*[@id='{element_id}']/ancestor::*[self::td or self::th]")
    return cell[-1].getparent().index(cell[-1])


def test_rule_rows_have_select_and_on_columns_with_labels(world: World) -> None:
    page = html.fromstring(world.get(f"/integrations/{world.integration_id}/settings"))

    for table_id, prefix, title in (
        ("event-rows", "event-critical", "Critical"),
        ("status-warning-rows", "status-warning-not_seen", None),
        ("status-critical-rows", "status-critical-not_seen", None),
    ):
        (table,) = page.xpath(f"//table[@id='{table_id}']")
        headers = [
            " ".join(th.text_content().split()) for th in table.xpath(".//thead//th")
        ]
        assert headers[0].startswith("Select") and headers[2] == "On", headers
        assert cell_column(table, f"{prefix}-pick") == 0
        assert cell_column(table, f"{prefix}-enabled") == headers.index("On")

        # The switch is named by its row's title alone; the title is the row header.
        (row_header,) = table.xpath(f".//*[@id='{prefix}-enabled']/ancestor::tr/th")
        (label,) = page.xpath(f"//label[@for='{prefix}-enabled']")
        assert label.text_content().strip() == row_header.text_content().strip()
        assert title is None or label.text_content().strip() == title
        (pick_label,) = page.xpath(f"//label[@for='{prefix}-pick']")
        assert pick_label.text_content().startswith("Select the row ")

        # And it is described by the hint that says what On does.
        (switch,) = page.xpath(f"//*[@id='{prefix}-enabled']")
        (hint,) = page.xpath(f"//*[@id='{switch.get('aria-describedby')}']")
        assert hint.text_content().startswith("On: ")
        (pick_all,) = page.xpath(f"//label[@for='{table_id}-pick-all']")
        assert pick_all.text_content().startswith("Select every ")
        visible = pick_all.xpath("text()")
        assert visible == ["Select"], "the header reads Select"


def test_approve_with_nothing_ticked_returns_to_the_preview_with_a_message(
    world: World,
) -> None:
    path = f"/integrations/{world.integration_id}/billing"

    reply = world.post(path, {}, status=400)

    page = html.fromstring(reply.get_data(as_text=True))
    assert len(page.xpath("//section[@class='preview']")) == 2, "the list is shown"
    (message,) = page.xpath("//*[@id='approve-error']")
    assert "Tick at least one account" in message.text_content()
    # One Approve button, at the top of a list of two (it stays in view there).
    buttons = page.xpath("//form//button[@type='submit']")
    assert [b.text for b in buttons] == ["Approve the ticked accounts"]
    for box in page.xpath("//input[@name='approve']"):
        assert box.get("aria-describedby") == "approve-error"
        assert box.get("aria-invalid") == "true"
    assert not any(t.mapping.billing_approved for t in world.agent.store.list_tenants())


def test_approve_one_account_says_so_in_the_singular(world: World) -> None:
    path = f"/integrations/{world.integration_id}/billing"
    first = world.agent.store.list_tenants(world.integration_id)[0]

    reply = world.post(path, {"approve": str(first.id)}, status=302)

    text = text_of(world.get(reply.headers["Location"]))
    assert "Approved the billing of 1 account: the next billing run writes its" in text
    approved = {
        t.id: t.mapping.billing_approved for t in world.agent.store.list_tenants()
    }
    assert approved[first.id] and sum(approved.values()) == 1


def test_counts_agree_with_their_nouns_on_every_page(world: World) -> None:
    store = world.agent.store
    (tenant, _) = store.list_tenants(world.integration_id)
    store.record_history(
        NewHistory(
            integration_id=world.integration_id,
            tenant_id=tenant.id,
            target="service order 20001",
            action="created",
            after="Virus found",
        )
    )
    store.enqueue(
        "order-1", integration_id=world.integration_id, kind="order", payload={}
    )
    later = dt.datetime(2026, 12, 4, 18, 40, tzinfo=dt.UTC)
    store.mark_failed("order-1", "Service order 20001 is locked by a person", later)

    base = f"/integrations/{world.integration_id}"
    pages = {
        path: text_of(world.get(path))
        for path in ("/", base, f"{base}/billing", f"{base}/settings", "/log")
    }
    pages["delete"] = text_of(world.get(f"{base}/delete"))

    for path, text in pages.items():
        assert not WRONG_NUMBER.search(text), (path, WRONG_NUMBER.search(text))
    billing = pages[f"{base}/billing"]
    assert re.search(r"\b1 (workstation|server|other device|device) of ", billing)
    assert "2 companies, 2 mapped" in pages["/"]
    assert "1 service order opened" in pages["/"]
    assert "1 write to Tigerpaw waiting" in pages["/"]
    assert "stops syncing its 2 companies" in pages["delete"]


def test_times_are_local_with_their_zone(world: World) -> None:
    store = world.agent.store
    (tenant, _) = store.list_tenants(world.integration_id)
    synced = dt.datetime(2026, 12, 4, 18, 40, 12, 345678, tzinfo=dt.UTC)
    store.note_tenant_result(tenant.id, at=synced)
    store.enqueue("charge-1", integration_id=world.integration_id, kind="c", payload={})
    store.mark_failed("charge-1", "Tigerpaw is busy", synced)
    world.agent.show_banner("news", "New service orders", "2 were opened.")
    world.agent.recent_log.handle(
        logging.makeLogRecord(
            {"msg": "Sync of %s done", "args": ("Dental",), "levelname": "INFO"}
        )
    )

    dashboard = text_of(world.get("/"))
    log = text_of(world.get("/log"))

    assert "next try 4 Dec 2026 19:40 UTC+01:00" in dashboard
    cells = html.fromstring(world.get("/")).xpath("//tbody/tr/td[2]/text()")
    assert "4 Dec 2026 19:40 UTC+01:00" in cells, cells
    assert re.search(r"\(\d{1,2} \w{3} \d{4} \d\d:\d\d UTC\+01:00\)", dashboard)
    assert re.search(r"\d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d UTC\+01:00 INFO Sync", log)
    assert not MACHINE_TIME.search(dashboard), MACHINE_TIME.search(dashboard)
    assert not MACHINE_TIME.search(log), MACHINE_TIME.search(log)


def test_the_tab_icon_is_the_tray_picture_without_the_token(world: World) -> None:
    stranger = create_app(world.agent, PORT).test_client()

    reply = stranger.get("/favicon.ico", headers={"Host": HOST})

    assert reply.status_code == 200
    assert reply.mimetype == "image/x-icon"
    assert "max-age" in reply.headers["Cache-Control"]
    icon = Image.open(io.BytesIO(reply.get_data()))
    assert icon.info["sizes"] == {(16, 16), (32, 32), (48, 48)}
    icon.size = (32, 32)
    icon.load()
    assert icon.convert("RGBA").tobytes() == draw_icon(TrayState.OK, 32).tobytes()
    page = html.fromstring(world.get("/"))
    assert page.xpath("//link[@rel='icon']/@href") == ["/favicon.ico"]

    # Only the icon: the pages and other hosts still need what they needed.
    assert stranger.get("/", headers={"Host": HOST}).status_code == 403
    rebound = stranger.get("/favicon.ico", headers={"Host": "evil.example"})
    assert rebound.status_code == 403


def test_unknown_address_says_what_to_do(world: World) -> None:
    text = text_of(world.get("/no-such-page", status=404))
    assert "There is no page at this address" in text
    assert "Go back to the dashboard" in text
    assert "404" not in text and "Not Found" not in text


def test_status_api_adds_what_was_written_and_what_waits(world: World) -> None:
    store = world.agent.store
    (tenant, _) = store.list_tenants(world.integration_id)
    store.record_history(
        NewHistory(
            integration_id=world.integration_id,
            tenant_id=tenant.id,
            target=f"agreement 5001 charge KL-1 of {tenant.id}",
            action="charge created",
            before={"quantity": None},
            after={"quantity": 3},
        )
    )
    later = dt.datetime(2030, 1, 1, 9, 30, tzinfo=dt.UTC)
    store.enqueue("charge-9", integration_id=world.integration_id, kind="c", payload={})
    store.mark_failed("charge-9", "Account 1020 is not cross-referenced", later)

    reply = world.client.get(
        "/api/status",
        headers={"Host": HOST, "Authorization": f"Bearer {world.agent.token}"},
    )

    (integration,) = reply.get_json()["integrations"]
    assert integration["waiting"] == {
        "count": 1,
        "error": "Account 1020 is not cross-referenced",
        "next_try": "2030-01-01T09:30:00+00:00",
    }
    wrote = {t["name"]: t["wrote"] for t in integration["tenants"]}
    assert wrote[tenant.name] == "1 charge set"


def test_dashboard_says_when_tigerpaw_does_not_answer(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outage the sync reports is said under its integration, escaped."""
    real_status = world.agent.status

    def status_with_outage() -> dict[str, Any]:
        status = real_status()
        status.setdefault("sync", {})["integrations"] = [
            {
                "id": world.integration_id,
                "state": "idle",
                "tenants": [],
                "unreachable": [
                    {
                        "system": "Tigerpaw",
                        "address": "tigerpaw.example:443",
                        "error": "Nothing is listening <b>here</b>",
                        "since": "2026-12-04T17:38:00+00:00",
                    }
                ],
            }
        ]
        return status

    monkeypatch.setattr(world.agent, "status", status_with_outage)

    page = html.fromstring(world.get("/"))

    (line,) = page.xpath("//p[contains(@class, 'unreachable')]")
    assert line.text_content().startswith(
        "Tigerpaw at tigerpaw.example:443 does not answer (since 4 Dec 2026"
    )
    assert "Nothing is listening <b>here</b>. Writes wait" in line.text_content()
