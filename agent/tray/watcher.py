"""Reads the agent's status on a thread of its own and reports what changed.

Both the tray icon and the headless agent use it: the icon to follow the sync and the
config watcher, both to raise notices. It reads twice a second and sleeps between
reads; a menu action pokes it to read at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from agent.tray.actions import TrayActions
from agent.tray.notifications import Notice, Notifier, deliver
from agent.tray.state import TrayView, view_from_status

logger = logging.getLogger(__name__)

#: Seconds between two reads of the status: the icon follows within a second.
POLL_INTERVAL_S = 0.5

#: Seconds to wait for the thread when stopping.
STOP_TIMEOUT_S = 2.0

ChangeCallback = Callable[[TrayView, list[Notice]], None]


def local_now() -> dt.datetime:
    """The current time in the local zone."""
    return dt.datetime.now().astimezone()


class StatusWatcher:
    """Calls ``on_change`` with the view and new notices whenever either changes."""

    def __init__(
        self,
        actions: TrayActions,
        on_change: ChangeCallback,
        *,
        on_stop: Callable[[], None] | None = None,
        interval: float = POLL_INTERVAL_S,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = local_now,
    ) -> None:
        self._actions = actions
        self._on_change = on_change
        self._on_stop = on_stop
        self._interval = interval
        self._notifier = notifier or Notifier()
        self._clock = clock
        self._wall_clock = wall_clock
        self._last_view: TrayView | None = None
        self._unreadable = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="tray-status", daemon=True
        )

    def start(self) -> None:
        """Start reading on the watcher's thread."""
        self._thread.start()

    def poke(self) -> None:
        """Read again now rather than at the next tick."""
        self._wake.set()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the thread and wait for it (a thread never started is fine)."""
        self._stopping.set()
        self._wake.set()
        if self._thread.ident is None or self._thread is threading.current_thread():
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("The thread %s did not stop in time", self._thread.name)

    def read_once(self) -> None:
        """Read the status once and report a changed view or new notices."""
        try:
            status = self._actions.status()
        except Exception as err:
            if not self._unreadable:
                logger.warning("The tray cannot read the agent's status: %s", err)
                self._unreadable = True
            return
        if self._unreadable:
            logger.info("The tray reads the agent's status again")
            self._unreadable = False

        view = view_from_status(status, self._wall_clock())
        notices = self._notifier.review(status, self._clock())
        if view != self._last_view or notices:
            self._last_view = view
            self._on_change(view, notices)

    def _run(self) -> None:
        """The thread: read, sleep until the next tick or a poke, until stopped."""
        while not self._stopping.is_set():
            if self._actions.stop_event.is_set():
                if self._on_stop is not None:
                    self._on_stop()
                return
            self._wake.clear()
            try:
                self.read_once()
            except Exception:
                logger.exception("The tray's status watcher failed; it goes on")
            self._wake.wait(self._interval)


def watch_without_tray(actions: TrayActions) -> StatusWatcher:
    """Start raising notices with no icon: they go to the log and the page's banner."""

    def on_change(_view: TrayView, notices: list[Notice]) -> None:
        deliver(notices, banner=actions.show_banner)

    watcher = StatusWatcher(actions, on_change)
    watcher.start()
    return watcher
