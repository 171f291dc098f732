"""Feature tests of FEATURES.md "Around it", one test per line.

The module's one agent runs with ``--sandbox`` on a real X server (Xvfb) with a real
system tray (trayer) and a D-Bus session of its own, on which dunst serves desktop
notifications until the tray test stops it (tests/e2e/test_tray.py's helpers). The
same agent serves the page in chromium. The tests run in order: the tray test sets
up the Business Hub integration the later tests use.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent.sandbox import seed
from agent.tray.state import TrayState
from tests.agent_process import AgentProcess
from tests.conftest import ARTIFACTS
from tests.e2e.setup_helpers import (
    post_sandbox_events,
    shot,
    sync_now_and_wait,
    sync_status,
    wait_until,
)
from tests.e2e.test_config_live import save_by_rename
from tests.e2e.test_tray import (
    BUS_CONFIG,
    Bus,
    Processes,
    Screen,
    screen,
    sync_started,
    tray_agent,
    wait_for_icon,
)
from tests.features.flows_orders import (
    accounts_of,
    connect_kbh,
    create_and_map_every_tenant,
    open_settings,
    save_settings,
)

pytestmark = [pytest.mark.browser, pytest.mark.xserver, pytest.mark.slow]

# The Xvfb screen with trayer is the tray e2e tests' own module fixture.
__all__ = ["screen"]

NOTIFICATIONS = "org.freedesktop.Notifications"
#: The price book item each seeded application is billed under.
ITEMS = {
    seed.ENDPOINT_PRODUCT: "KL-KESB-WS",
    seed.SERVER_PRODUCT: "KL-KSWS",
    seed.OFFICE365_PRODUCT: "KL-KSO365",
}
MINUTES = 'key="ServiceOrderSyncMinutes" value="{}"'
SYNC_TIMEOUT = 90.0


class NotificationServer:
    """dunst on the test's bus: started and stopped while the agent runs."""

    def __init__(self, screen: Screen, bus: Bus) -> None:
        self.screen = screen
        self.bus = bus
        self.processes = Processes()

    def start(self) -> None:
        """Start dunst and wait until it owns the notifications name."""
        env = {**self.screen.env(), "DBUS_SESSION_BUS_ADDRESS": self.bus.address}
        self.processes.start(
            ["dunst"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        wait_until(lambda: self.bus.has_owner(NOTIFICATIONS), 10, "dunst on the bus")

    def stop(self) -> None:
        """Stop dunst: the desktop has no notification server any more."""
        self.processes.stop_all()
        self.processes = Processes()
        wait_until(
            lambda: not self.bus.has_owner(NOTIFICATIONS), 10, "dunst to leave the bus"
        )


@pytest.fixture(scope="module")
def bus(screen: Screen, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    """A D-Bus session for the module, with a monitor writing down notifications."""
    processes = Processes()
    folder = tmp_path_factory.mktemp("bus")
    config = folder / "session.conf"
    config.write_text(BUS_CONFIG.format(folder=folder))
    try:
        daemon = processes.start(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert daemon.stdout is not None
        found = Bus(daemon.stdout.readline().strip(), folder)
        processes.start(
            [
                "dbus-monitor",
                "--address",
                found.address,
                "interface='org.freedesktop.Notifications',member='Notify'",
            ],
            log=found.monitor_log,
        )
        yield found
    finally:
        processes.stop_all()


@pytest.fixture(scope="module")
def notification_server(screen: Screen, bus: Bus) -> Iterator[NotificationServer]:
    """dunst, running when the agent starts."""
    server = NotificationServer(screen, bus)
    server.start()
    yield server
    if server.processes.started:
        server.stop()


@pytest.fixture(scope="module")
def agent(
    tmp_path_factory: pytest.TempPathFactory,
    screen: Screen,
    bus: Bus,
    notification_server: NotificationServer,
) -> Iterator[AgentProcess]:
    """The sandboxed agent with its tray icon (GTK backend: icon, menu, notices)."""
    process, _opened = tray_agent(
        tmp_path_factory.mktemp("around-it"), screen, bus, "--sandbox", backend="gtk"
    )
    process.start()
    yield process
    process.stop()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "around-it-agent-output.txt").write_text(process.output())


# Helpers.


def notification_body(bus: Bus, title: str) -> str:
    """The text of the last desktop notification with this title."""
    lines = bus.monitor_log.read_text().splitlines()
    marker = f'string "{title}"'
    at = max(i for i, line in enumerate(lines) if line.strip() == marker)
    found = re.fullmatch(r'\s*string "(.*)"', lines[at + 1])
    assert found, lines[at + 1]
    return found.group(1)


def open_menu_and_choose(screen: Screen, where: tuple[int, int], *keys: str) -> None:
    """Right-click the icon, wait for the menu, and press keys in it."""
    x, y = where
    screen.xdotool("mousemove", str(x), str(y), "click", "3")
    time.sleep(0.7)
    screen.xdotool("key", *keys)


def set_minutes(agent: AgentProcess, old: str, new: str) -> None:
    """Hand-edit ServiceOrderSyncMinutes as an editor saves: temp file, rename."""
    text = agent.config_path.read_text(encoding="utf-8")
    assert MINUTES.format(old) in text
    save_by_rename(
        agent.config_path, text.replace(MINUTES.format(old), MINUTES.format(new))
    )


def config_of(agent: AgentProcess) -> dict[str, Any]:
    """The status API's view of the config file."""
    return dict(agent.status()["config"])


def banner_with(page: Any, title: str) -> Any:
    """The page's banner that carries a notice with this title."""
    return page.locator(".banner", has=page.locator("strong", has_text=title))


def reload_until_banner(page: Any, title: str, timeout: float = 20.0) -> Any:
    """Reload the page until its banner carries a notice with this title."""

    def shown() -> bool:
        if banner_with(page, title).count():
            return True
        page.reload()
        return False

    wait_until(shown, timeout, f"'{title}' on the page's banner", every=0.5)
    return banner_with(page, title)


# The tests, one per line of FEATURES.md.


def test_tray_icon_with_state_menu_and_notifications_and_the_page_banner(
    agent, screen, bus, notification_server, page, sandbox, artifacts_dir
) -> None:
    """Tray icon with state, menu and notifications; the page's banner for the same
    messages."""
    wait_until(lambda: "Tray icon shown (gtk" in agent.output(), 15, "the icon")
    assert "menu: yes; notifications: desktop" in agent.output()

    # State: not set up, said once on the desktop.
    wait_for_icon(screen, TrayState.NOT_SET_UP)
    wait_until(lambda: bus.notifications("Setup needed"), 10, "a notification")
    screen.shot(artifacts_dir / "1-not-set-up.png")

    # Set up on the page: the icon turns OK once the first cycle is done.
    connect_kbh(page, sandbox["kbh"]["production"])
    create_and_map_every_tenant(page, sandbox["tigerpaw"])
    wait_until(lambda: sync_status(agent)["runs"] >= 1, 30, "the first cycle")
    where = wait_for_icon(screen, TrayState.OK, timeout=30)
    screen.shot(artifacts_dir / "2-ok.png")

    # The menu: Pause sync, then Resume sync, then Sync now.
    open_menu_and_choose(screen, where, "Down", "Down", "Down")
    screen.shot(artifacts_dir / "3-menu.png")
    screen.xdotool("key", "Return")
    wait_until(lambda: agent.status()["sync"]["paused"], 10, "the sync to pause")
    where = wait_for_icon(screen, TrayState.PAUSED)
    assert "Pause sync chosen from the tray" in agent.output()
    screen.shot(artifacts_dir / "4-paused.png")
    # While paused, Sync now is greyed out: the second item is Resume sync.
    open_menu_and_choose(screen, where, "Down", "Down", "Return")
    wait_until(lambda: not agent.status()["sync"]["paused"], 10, "the sync to resume")
    where = wait_for_icon(screen, TrayState.OK)
    assert "Resume sync chosen from the tray" in agent.output()
    before = agent.status()["sync"]
    open_menu_and_choose(screen, where, "Down", "Down", "Return")
    wait_until(lambda: sync_started(agent, before), 15, "a sync from the menu")
    assert "Sync now chosen from the tray" in agent.output()

    # Notifications: a broken config file turns the icon and tells the desktop.
    good = agent.config_path.read_text(encoding="utf-8")
    broken = good.replace(MINUTES.format("5"), MINUTES.format("0"))
    agent.config_path.write_text(broken, encoding="utf-8")
    wait_for_icon(screen, TrayState.ATTENTION)
    wait_until(lambda: bus.notifications("Config file error"), 10, "the notice")
    said = notification_body(bus, "Config file error")
    assert "ServiceOrderSyncMinutes" in said and "last good settings" in said, said
    screen.shot(artifacts_dir / "5-config-error.png")
    agent.config_path.write_text(good, encoding="utf-8")
    wait_until(lambda: bus.notifications("Config file fixed"), 15, "the fix notice")
    wait_for_icon(screen, TrayState.OK, timeout=15)

    # The page's banner: with no notification server, the same notice shows there.
    notification_server.stop()
    agent.config_path.write_text(broken, encoding="utf-8")
    page.goto(agent.base_url() + "/")
    assert said in reload_until_banner(page, "Config file error").inner_text()
    assert bus.notifications("Config file error") == 1, "not on the desktop again"
    shot(page, artifacts_dir, "6-banner")
    save_by_rename(agent.config_path, good)
    wait_until(lambda: config_of(agent)["ok"], 10, "the config to be good again")
    reload_until_banner(page, "Config file fixed")
    assert banner_with(page, "Config file error").count() == 0


def approve_billing_of_every_account(page: Any, agent: AgentProcess) -> None:
    """Choose an item per application and approve every account's billing."""
    open_settings(page, agent)
    whole = page.locator("select[id^='item::']:not([id*='/'])")
    for select in whole.all():
        product = str(select.get_attribute("id"))[len("item::") :]
        select.select_option(ITEMS[product])
    save_settings(page)
    page.goto(page.url.replace("/settings", "/billing"))
    for box in page.locator("input[name=approve]").all():
        box.check()
    with page.expect_navigation():
        page.get_by_role("button", name="Approve the ticked accounts").click()
    assert page.locator("input[name=approve]").count() == 0


def tenant_rows(page: Any) -> dict[str, dict[str, str]]:
    """The dashboard's rows: name to the Last sync and Error cells."""
    rows = {}
    for row in page.locator("table.tenants tbody tr").all():
        cells = row.locator("td")
        rows[row.locator("th").inner_text().strip()] = {
            "last_sync": cells.nth(1).inner_text().strip(),
            "error": cells.nth(3).inner_text().strip(),
        }
    return rows


def log_rows(page: Any, visible_only: bool = False) -> list[dict[str, str]]:
    """The log page's rows: time, level and message."""
    found = []
    for row in page.locator("#log-rows tr").all():
        if visible_only and not row.is_visible():
            continue
        cells = row.locator("td").all_inner_texts()
        if len(cells) == 3:
            found.append({"time": cells[0], "level": cells[1], "message": cells[2]})
    return found


def test_readable_log_filterable_and_per_account_last_run_and_error_with_advice(
    page, agent, sandbox, artifacts_dir
) -> None:
    """A readable log, filterable on the page; per-account last run and last error
    with advice."""
    approve_billing_of_every_account(page, agent)
    accounts = accounts_of(agent)
    broken_name = sorted(accounts)[0]
    account = accounts[broken_name]
    tigerpaw = sandbox["tigerpaw"]
    post_sandbox_events(tigerpaw, {"remove_cross_reference": [account]})
    sync_now_and_wait(page, agent, SYNC_TIMEOUT)

    # Per account: the last run, and the last error with what to do about it.
    tenants = {t["name"]: t for t in agent.status()["integrations"][0]["tenants"]}
    assert all(t["last_sync"] for t in tenants.values()), tenants
    error = tenants[broken_name]["error"] or ""
    assert f"account {account}" in error and "cross-referenced" in error, error
    assert "open the account and assign that product" in error, "no advice"
    assert all(t["error"] is None for n, t in tenants.items() if n != broken_name)
    page.reload()
    rows = tenant_rows(page)
    assert sorted(rows) == sorted(accounts)
    for name, row in rows.items():
        assert re.search(r"\d\d:\d\d", row["last_sync"]), row
        assert (row["error"] == error) if name == broken_name else not row["error"]
    shot(page, artifacts_dir, "1-dashboard-with-an-error")

    # A readable log: a time, a level and a sentence per line.
    with page.expect_navigation():
        page.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Log"
        ).click()
    lines = log_rows(page)
    assert lines, "the log page is empty"
    for line in lines:
        assert re.search(r"\d\d:\d\d", line["time"]), line
        assert line["level"].lower() in {"debug", "info", "warning", "error"}, line
        assert not line["message"].lstrip().startswith(("{", "[", "Traceback"))
    assert any(f"account {account}" in line["message"] for line in lines)
    shot(page, artifacts_dir, "2-log")

    # Filterable: from a level up, and by a part of the message.
    page.select_option("#level", "Warning")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    warnings = log_rows(page)
    assert warnings and {w["level"].lower() for w in warnings} <= {"warning", "error"}
    assert len(warnings) < len(lines)
    page.select_option("#level", "Info")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    page.fill("#log-filter", broken_name)
    shown = log_rows(page, visible_only=True)
    assert shown and all(
        broken_name.lower() in line["message"].lower() for line in shown
    )
    assert len(shown) < len(log_rows(page))
    shot(page, artifacts_dir, "3-log-filtered")

    # Fixed in Tigerpaw, the next run clears the account's error.
    post_sandbox_events(tigerpaw, {"cross_reference": [account]})
    sync_now_and_wait(page, agent, SYNC_TIMEOUT)
    tenants = {t["name"]: t for t in agent.status()["integrations"][0]["tenants"]}
    assert tenants[broken_name]["error"] is None, tenants[broken_name]


def test_config_file_edited_by_hand_is_validated_and_applied_live(
    page, agent, artifacts_dir
) -> None:
    """The config file edited by hand is validated and applied live; the last good
    settings survive a broken edit."""
    original = agent.config_path.read_text(encoding="utf-8")

    # Applied live: the status, the log, the schedule and the Settings page.
    set_minutes(agent, "5", "7")
    wait_until(
        lambda: config_of(agent)["settings"]["ServiceOrderSyncMinutes"] == "7",
        5,
        "the new value in force",
    )
    wait_until(
        lambda: "ServiceOrderSyncMinutes: 5 -> 7" in agent.output(), 5, "the log line"
    )
    status = sync_status(agent)
    gap = dt.datetime.fromisoformat(status["next_run"]) - dt.datetime.fromisoformat(
        status["last_run"]
    )
    assert gap == dt.timedelta(minutes=7), "the schedule follows the file"
    page.goto(agent.base_url() + "/settings")
    assert page.locator("#ServiceOrderSyncMinutes").input_value() == "7"
    shot(page, artifacts_dir, "1-applied")

    # Validated: a bad value and a file that is not XML are refused, naming the line
    # (and the key); the last good settings stay in force.
    lines = original.splitlines()
    number = next(
        i for i, line in enumerate(lines, 1) if "ServiceOrderSyncMinutes" in line
    )
    for case, edit in (
        (
            "bad value",
            lambda text: text.replace(MINUTES.format("7"), MINUTES.format("0")),
        ),
        ("not XML", lambda text: text.replace("</appSettings>", "</appSetings>")),
    ):
        good = agent.config_path.read_text(encoding="utf-8")
        save_by_rename(agent.config_path, edit(good))
        wait_until(lambda: not config_of(agent)["ok"], 5, f"the {case} refused")
        config = config_of(agent)
        assert config["settings"]["ServiceOrderSyncMinutes"] == "7", case
        assert config["error"]["line"], config
        if case == "bad value":
            assert config["error"]["line"] == number
            assert config["error"]["key"] == "ServiceOrderSyncMinutes"
        page.goto(agent.base_url() + "/")
        alert = page.get_by_role("alert").filter(has_text="Config file problem")
        assert f"line {config['error']['line']}" in alert.inner_text().lower(), case
        page.goto(agent.base_url() + "/settings")
        assert page.locator("#ServiceOrderSyncMinutes").input_value() == "7", case
        shot(page, artifacts_dir, f"2-{case.replace(' ', '-')}")
        save_by_rename(agent.config_path, good)
        wait_until(lambda: config_of(agent)["ok"], 5, f"the fix after the {case}")

    # The next good edit applies again, and the original comes back.
    set_minutes(agent, "7", "9")
    wait_until(
        lambda: config_of(agent)["settings"]["ServiceOrderSyncMinutes"] == "9",
        5,
        "the next good edit",
    )
    save_by_rename(agent.config_path, original)
    wait_until(
        lambda: config_of(agent)["settings"]["ServiceOrderSyncMinutes"] == "5",
        5,
        "the original back",
    )
    assert config_of(agent)["ok"]
