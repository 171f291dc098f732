"""The status watcher and the icon runner, on pystray's own menu classes.

The icon's loop is a fake at the third-party boundary (a subclass of pystray's base
Icon whose loop waits for stop); the menu, its items and their enabled state are
pystray's real classes, built by our code.
"""

from __future__ import annotations

import collections
import importlib
import logging
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.tray import run_tray
from agent.tray.backend import Backend
from agent.tray.icon import TrayIcon
from agent.tray.icons import COLOURS
from agent.tray.state import TrayState
from agent.tray.watcher import StatusWatcher, watch_without_tray

SET_UP = {
    "config": {"ok": True, "error": None},
    "sync": {"state": "idle", "last_run": None},
    "integrations": [{"id": "i1", "name": "KSC", "tenants": []}],
}
NOT_SET_UP = {**SET_UP, "integrations": []}


class FakeActions:
    """The agent as the tray sees it, with a status the test sets."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.stop_event = threading.Event()
        self.current = status
        self.calls: list[str] = []
        self.banners: list[tuple[str, str, str]] = []
        self.reads = 0
        self.fail_reads = False

    @property
    def launch_url(self) -> str:
        return "http://127.0.0.1:47800/?token=secret"

    def status(self) -> dict[str, Any]:
        self.reads += 1
        if self.fail_reads:
            raise ConnectionError("store closed")
        return self.current

    def sync_now(self) -> None:
        self.calls.append("sync_now")

    def pause(self) -> None:
        self.calls.append("pause")
        self.current = {**self.current, "sync": {"state": "paused"}}

    def resume(self) -> None:
        self.calls.append("resume")
        self.current = {**self.current, "sync": {"state": "idle"}}

    def log_folder(self) -> Path:
        return Path("/nonexistent/logs")

    def about(self) -> dict[str, str]:
        return {"version": "9.8.7", "config_path": "/c.config", "data_folder": "/d"}

    def quit(self) -> None:
        self.calls.append("quit")
        self.stop_event.set()

    def show_banner(self, kind: str, title: str, message: str) -> None:
        self.banners.append((kind, title, message))


def wait_until(check: Callable[[], bool], timeout: float = 2.0) -> float:
    """Seconds until ``check`` holds; fails after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError("timed out")
        time.sleep(0.01)
    return time.monotonic() - started


# The status watcher.


def test_watcher_reports_the_first_view_and_then_only_changes() -> None:
    actions = FakeActions(SET_UP)
    seen: list[TrayState] = []
    watcher = StatusWatcher(
        actions, lambda view, _notices: seen.append(view.state), interval=0.02
    )
    watcher.start()
    try:
        wait_until(lambda: actions.reads >= 5)
        assert seen == [TrayState.OK]

        actions.current = {**SET_UP, "sync": {"state": "running"}}
        wait_until(lambda: seen[-1] is TrayState.SYNCING)
        assert seen == [TrayState.OK, TrayState.SYNCING]
    finally:
        watcher.stop()


def test_watcher_sleeps_between_reads_and_wakes_when_poked() -> None:
    actions = FakeActions(SET_UP)
    watcher = StatusWatcher(actions, lambda *_: None, interval=0.5)
    watcher.start()
    try:
        time.sleep(1.1)
        assert 2 <= actions.reads <= 4, "twice a second, no busy loop"

        before = actions.reads
        watcher.poke()
        assert wait_until(lambda: actions.reads > before, timeout=0.3) < 0.3
    finally:
        watcher.stop()


def test_watcher_ends_on_the_stop_event_and_says_so() -> None:
    actions = FakeActions(SET_UP)
    stopped = threading.Event()
    watcher = StatusWatcher(
        actions, lambda *_: None, on_stop=stopped.set, interval=0.05
    )
    watcher.start()
    actions.stop_event.set()
    assert stopped.wait(1.0)
    watcher.stop()


def test_watcher_logs_an_unreadable_status_once_and_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    actions = FakeActions(SET_UP)
    watcher = StatusWatcher(actions, lambda *_: None)
    with caplog.at_level(logging.INFO, logger="agent.tray.watcher"):
        actions.fail_reads = True
        for _ in range(5):
            watcher.read_once()
        actions.fail_reads = False
        for _ in range(5):
            watcher.read_once()
    assert [r.getMessage() for r in caplog.records] == [
        "The tray cannot read the agent's status: store closed",
        "The tray reads the agent's status again",
    ]


def test_without_tray_notices_go_to_log_and_banner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    actions = FakeActions(NOT_SET_UP)
    with caplog.at_level(logging.INFO, logger="agent.tray.notifications"):
        watcher = watch_without_tray(actions)
        try:
            wait_until(lambda: actions.reads >= 3)
        finally:
            watcher.stop()
    assert [b[:2] for b in actions.banners] == [("setup_needed", "Setup needed")]
    assert "Setup needed: Open the setup page" in caplog.text


# run_tray without a tray.


def test_headless_says_so_once_with_the_page_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="agent.tray"):
        assert run_tray(FakeActions(SET_UP), headless=True) is False
    assert [r.getMessage() for r in caplog.records] == [
        "Running without a tray icon (--headless); the page is at "
        "http://127.0.0.1:47800/"
    ]


def test_no_display_runs_headless(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "PYSTRAY_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    with caplog.at_level(logging.INFO, logger="agent.tray"):
        assert run_tray(FakeActions(SET_UP)) is False
    assert "Running without a tray icon (no display)" in caplog.text


# The icon runner on a fake loop.


@pytest.fixture
def pystray_base(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """pystray's backend-neutral classes (importable with no display)."""
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")
    return importlib.import_module("pystray._base")


def fake_backend(
    base: types.ModuleType,
    *,
    notifications: bool = True,
    fail_on_start: bool = False,
    fail_on_stop: bool = False,
) -> Backend:
    """A Backend whose Icon runs a loop that just waits for stop."""

    class FakeIcon(base.Icon):  # type: ignore[name-defined,misc]
        """pystray's base Icon with a loop that waits for stop."""

        HAS_NOTIFICATION = notifications

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.loop_ended = threading.Event()
            self.notified: list[tuple[str | None, str]] = []
            self.menu_updates = 0

        def _run(self) -> None:
            if fail_on_start:
                raise RuntimeError("Gtk could not reach the session bus")
            self._mark_ready()
            self.loop_ended.wait()
            if fail_on_stop:
                raise RuntimeError("org.freedesktop.Notifications was not provided")

        def _stop(self) -> None:
            self.loop_ended.set()

        def _show(self) -> None:
            pass

        def _hide(self) -> None:
            pass

        def _update_icon(self) -> None:
            self._icon_valid = True

        def _update_title(self) -> None:
            pass

        def _update_menu(self) -> None:
            self.menu_updates += 1

        def _notify(self, message: str, title: str | None = None) -> None:
            self.notified.append((title, message))

    module = types.SimpleNamespace(
        Icon=FakeIcon, Menu=base.Menu, MenuItem=base.MenuItem
    )
    return Backend(
        pystray=module,  # type: ignore[arg-type]
        name="fake",
        has_menu=True,
        has_default_action=True,
        has_notification=notifications,
    )


class Running:
    """A TrayIcon running on a thread of the test, with its result."""

    def __init__(self, tray: TrayIcon) -> None:
        self.tray = tray
        self.icon: Any = tray._icon
        self.result: bool | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = self.tray.run()

    def item(self, text: str) -> Any:
        """The visible menu item with this text."""
        return next(i for i in self.icon.menu.items if i.text == text)

    def ended(self, timeout: float = 2.0) -> bool | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the icon did not end"
        return self.result


def icon_colour(icon: Any) -> tuple[int, int, int]:
    """The commonest opaque colour of the icon's picture, the white symbol aside."""
    width, height = icon.icon.size
    colours = collections.Counter(
        pixel[:3]
        for pixel in (
            icon.icon.getpixel((x, y)) for x in range(width) for y in range(height)
        )
        if pixel[3] == 255 and pixel[:3] != (255, 255, 255)
    )
    return colours.most_common(1)[0][0]


def test_icon_follows_status_within_a_second(pystray_base: types.ModuleType) -> None:
    actions = FakeActions(NOT_SET_UP)
    running = Running(TrayIcon(actions, fake_backend(pystray_base), interval=0.5))
    try:
        wait_until(lambda: running.icon.visible)
        assert running.icon.title.startswith("Tigerpaw integration: not set up")

        actions.current = {**SET_UP, "sync": {"state": "running"}}
        took = wait_until(lambda: "syncing" in running.icon.title)
        assert took < 1.0
        assert running.tray.view.state is TrayState.SYNCING

        actions.current = {**SET_UP, "config": {"ok": False, "error": {"line": 5}}}
        wait_until(lambda: "line 5" in running.icon.title)
        assert icon_colour(running.icon) == COLOURS[TrayState.ATTENTION]
    finally:
        actions.stop_event.set()
    assert running.ended() is True


def test_menu_items_enabled_by_state(pystray_base: types.ModuleType) -> None:
    actions = FakeActions(NOT_SET_UP)
    running = Running(TrayIcon(actions, fake_backend(pystray_base), interval=0.05))
    try:
        wait_until(lambda: running.icon.visible)
        texts = [item.text for item in running.icon.menu.items]
        assert texts == [
            "Open settings",
            "- - - -",
            "Sync now",
            "Pause sync",
            "- - - -",
            "Open log folder",
            "About",
            "- - - -",
            "Quit",
        ]
        assert running.item("Open settings").default
        assert not running.item("Sync now").enabled, "no Sync now before setup"
        assert not running.item("Pause sync").enabled
        assert running.item("Quit").enabled

        about = [i.text for i in running.item("About").submenu.items]
        assert about == ["Version 9.8.7", "Config: /c.config", "Data folder: /d"]

        updates = running.icon.menu_updates
        actions.current = SET_UP
        # The view changes first, then the icon's thread redraws the menu.
        wait_until(
            lambda: (
                running.item("Sync now").enabled and running.icon.menu_updates > updates
            )
        )
        assert running.item("Pause sync").enabled

        running.item("Sync now")(running.icon)
        wait_until(lambda: "sync_now" in actions.calls)

        running.item("Pause sync")(running.icon)
        wait_until(lambda: running.tray.view.paused)
        assert not running.item("Sync now").enabled
        running.item("Resume sync")(running.icon)
        wait_until(lambda: not running.tray.view.paused)
        assert actions.calls == ["sync_now", "pause", "resume"]
    finally:
        actions.stop_event.set()
    running.ended()


def test_click_on_the_icon_runs_the_default_action(
    pystray_base: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    actions = FakeActions(SET_UP)
    running = Running(TrayIcon(actions, fake_backend(pystray_base)))
    try:
        wait_until(lambda: running.icon.visible)
        running.icon()  # What pystray does on a click where there is no menu.
        wait_until(lambda: opened == [actions.launch_url])
    finally:
        actions.stop_event.set()
    running.ended()


def test_quit_stops_the_agent_and_the_icon(pystray_base: types.ModuleType) -> None:
    actions = FakeActions(SET_UP)
    running = Running(TrayIcon(actions, fake_backend(pystray_base)))
    wait_until(lambda: running.icon.visible)
    running.item("Quit")(running.icon)
    assert running.ended() is True
    assert actions.calls == ["quit"]
    assert actions.stop_event.is_set()


def test_notices_on_the_desktop_when_it_has_them(
    pystray_base: types.ModuleType,
) -> None:
    actions = FakeActions(NOT_SET_UP)
    running = Running(TrayIcon(actions, fake_backend(pystray_base), interval=0.05))
    try:
        wait_until(lambda: running.icon.notified)
        time.sleep(0.3)
        assert running.icon.notified == [
            (
                "Setup needed",
                "Open the setup page (Open settings in the tray icon's menu, or the "
                "address the agent printed) to connect Kaspersky and Tigerpaw.",
            )
        ]
        assert actions.banners == []
    finally:
        actions.stop_event.set()
    running.ended()


def test_notices_on_the_banner_when_the_desktop_has_none(
    pystray_base: types.ModuleType,
) -> None:
    actions = FakeActions(NOT_SET_UP)
    backend = fake_backend(pystray_base, notifications=False)
    running = Running(TrayIcon(actions, backend, interval=0.05))
    try:
        wait_until(lambda: actions.banners)
        assert actions.banners[0][:2] == ("setup_needed", "Setup needed")
        assert running.icon.notified == []
    finally:
        actions.stop_event.set()
    running.ended()


def test_error_while_stopping_still_ends_cleanly(
    pystray_base: types.ModuleType,
) -> None:
    # pystray's GTK backend raises on the way out with no notification server.
    actions = FakeActions(SET_UP)
    running = Running(TrayIcon(actions, fake_backend(pystray_base, fail_on_stop=True)))
    wait_until(lambda: running.icon.visible)
    actions.stop_event.set()
    assert running.ended() is True


def test_loop_that_fails_to_start_reports_false_and_leaves_no_thread(
    pystray_base: types.ModuleType,
) -> None:
    actions = FakeActions(SET_UP)
    tray = TrayIcon(actions, fake_backend(pystray_base, fail_on_start=True))
    assert tray.run() is False

    # pystray's setup thread would otherwise wait forever and block the exit.
    setup_thread = tray._icon._setup_thread
    setup_thread.join(1.0)
    assert not setup_thread.is_alive()
    assert not actions.banners, "no notices from an icon that never ran"


def test_open_log_folder_says_where_the_log_is_when_the_desktop_cannot(
    pystray_base: types.ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A desktop whose opener fails (no file manager) still tells the person where
    the log folder is, in a notice, instead of only a log line."""
    opener = tmp_path / "bin" / "xdg-open"
    opener.parent.mkdir()
    opener.write_text("#!/bin/sh\nexit 3\n")
    opener.chmod(0o755)
    monkeypatch.setenv("PATH", f"{opener.parent}:/usr/bin:/bin")
    actions = FakeActions(SET_UP)
    monkeypatch.setattr(actions, "log_folder", lambda: tmp_path / "logs")
    running = Running(TrayIcon(actions, fake_backend(pystray_base), interval=0.05))
    try:
        wait_until(lambda: running.icon.visible)
        running.item("Open log folder")(running.icon)
        wait_until(lambda: any(t == "Log folder" for t, _ in running.icon.notified))
    finally:
        actions.stop_event.set()
    running.ended()

    (message,) = [m for t, m in running.icon.notified if t == "Log folder"]
    assert (
        message == f"The desktop could not open the log folder. It is {tmp_path}/logs"
    )
    assert (tmp_path / "logs").is_dir()
