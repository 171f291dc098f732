"""The pystray icon: its picture, tooltip, menu and notices, kept in step with status.

Threads: pystray runs the icon's loop on the main thread. The status watcher reads on
its own thread and only leaves the new view and notices here, then wakes the icon's
thread, which applies them; nothing else touches the icon, title or menu. Menu
actions run on short-lived threads so a slow one never freezes the icon.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from agent.tray.actions import TrayActions
from agent.tray.backend import Backend
from agent.tray.desktop import in_background, open_folder, open_url
from agent.tray.icons import draw_icon
from agent.tray.notifications import Notice, NoticeKind, deliver
from agent.tray.state import MenuAction, TrayView, view_from_status
from agent.tray.watcher import POLL_INTERVAL_S, StatusWatcher, local_now

logger = logging.getLogger(__name__)

#: The name the desktop knows the icon by.
ICON_NAME = "tigerpaw-integration-agent"

#: macOS scales to the menu bar's 22 points; the others get 32 px and scale down.
ICON_SIZES = {"darwin": 22}
DEFAULT_ICON_SIZE = 32

#: A window message of our own that asks pystray's Windows loop to apply changes.
WIN32_APPLY_OFFSET = 0x40

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrayIcon:
    """The agent's icon in the system tray, from start to Quit."""

    def __init__(
        self,
        actions: TrayActions,
        backend: Backend,
        *,
        interval: float = POLL_INTERVAL_S,
    ) -> None:
        self._actions = actions
        self._backend = backend
        self._about = actions.about()
        self._size = ICON_SIZES.get(backend.name, DEFAULT_ICON_SIZE)
        self._applied = view_from_status(actions.status(), local_now())
        self._pending_view: TrayView | None = None
        self._pending_notices: list[Notice] = []
        self._stop_requested = False
        self._lock = threading.Lock()
        self._apply_lock = threading.Lock()
        self._ready = threading.Event()
        self._failed = False
        self._saved_signals: dict[int, Any] = {}

        self._icon = backend.pystray.Icon(
            ICON_NAME,
            draw_icon(self._applied.state, self._size),
            self._applied.tooltip,
            menu=self._build_menu(),
        )
        self._wake_icon = icon_thread_waker(self._icon, backend.name, self._apply)
        self._watcher = StatusWatcher(
            actions, self._status_changed, on_stop=self._request_stop, interval=interval
        )

    @property
    def view(self) -> TrayView:
        """What the icon shows now."""
        return self._applied

    def run(self) -> bool:
        """Show the icon and block until it ends; False if it never started."""
        self._saved_signals = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
        try:
            self._icon.run(setup=self._on_ready)
        except Exception as err:
            if not self._ready.is_set():
                logger.warning("The tray icon could not start: %s", err)
                self._failed = True
                release_setup_thread(self._icon)
                return False
            # pystray's GTK backends close their last notification on the way out,
            # which raises when no notification server is on the bus; the icon has
            # ended all the same.
            logger.debug("The tray icon ended with: %s", err)
        finally:
            self._watcher.stop()
        return self._ready.is_set()

    def _on_ready(self, _icon: Any) -> None:
        """pystray's setup callback (on its own thread): the loop runs; show it."""
        if self._failed:
            return
        self._ready.set()
        logger.info(
            "Tray icon shown (%s backend; menu: %s; notifications: %s)",
            self._backend.name,
            "yes" if self._backend.has_menu else "none, a click opens the page",
            "desktop" if self._desktop_notices() else "log and page",
        )
        self._watcher.start()
        try:
            self._wake_icon()
        except Exception:
            logger.exception("The tray icon could not be shown")

    # The icon's thread.

    def _apply(self) -> None:
        """Bring picture, tooltip and menu in step with the latest view."""
        with self._apply_lock:
            with self._lock:
                view, self._pending_view = self._pending_view, None
                notices, self._pending_notices = self._pending_notices, []
                stop = self._stop_requested
            if stop:
                self._icon.stop()
                return

            if not self._icon.visible:
                self._restore_signal_handlers()
                if self._backend.name == "xorg":
                    prepare_xorg_icon(self._icon)
                self._icon.visible = True
                set_native_tooltip(self._icon, self._applied.tooltip)
            if view is not None and view != self._applied:
                self._show(view)
            for notice in notices:
                self._icon.notify(notice.message, notice.title)

    def _show(self, view: TrayView) -> None:
        """Change what differs between the shown view and ``view``."""
        shown, self._applied = self._applied, view
        if view.state != shown.state:
            self._icon.icon = draw_icon(view.state, self._size)
            logger.debug("Tray icon: %s", view.state)
        if view.tooltip != shown.tooltip:
            self._icon.title = view.tooltip
            set_native_tooltip(self._icon, view.tooltip)
        if view.enabled != shown.enabled and self._backend.has_menu:
            self._icon.update_menu()

    def _restore_signal_handlers(self) -> None:
        """Take back Ctrl+C: pystray's GTK backend resets it to kill the process."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, handler in self._saved_signals.items():
            if handler is not None and signal.getsignal(sig) != handler:
                signal.signal(sig, handler)

    # The watcher's thread.

    def _status_changed(self, view: TrayView, notices: list[Notice]) -> None:
        """Leave the new view and notices for the icon's thread, and wake it."""
        self._tell(notices)
        with self._lock:
            self._pending_view = view
        self._wake_icon()

    def _tell(self, notices: list[Notice]) -> None:
        """Show notices on the desktop (by the icon's thread), else on the page."""
        desktop = self._queue_notice if notices and self._desktop_notices() else None
        deliver(notices, banner=self._actions.show_banner, desktop=desktop)
        if desktop is not None:
            self._wake_icon()

    def _desktop_notices(self) -> bool:
        """Whether notices can go to the desktop now (a server may come and go)."""
        try:
            return self._backend.notifications_work()
        except Exception as err:
            logger.debug("Cannot tell whether notifications work: %s", err)
            return False

    def _queue_notice(self, notice: Notice) -> None:
        """Leave a notice for the icon's thread to show."""
        with self._lock:
            self._pending_notices.append(notice)

    def _request_stop(self) -> None:
        """The agent is stopping: end the icon's loop."""
        with self._lock:
            self._stop_requested = True
        self._wake_icon()

    # The menu (its callbacks run on the icon's thread).

    def _build_menu(self) -> Any:
        """The menu; labels and enabled states are read from the shown view."""
        menu_class = self._backend.pystray.Menu
        item = self._backend.pystray.MenuItem
        about = self._about
        return menu_class(
            item("Open settings", self._open_settings, default=True),
            menu_class.SEPARATOR,
            item(
                "Sync now", self._sync_now, enabled=self._enabled(MenuAction.SYNC_NOW)
            ),
            item(
                lambda _item: self._applied.pause_label,
                self._pause_or_resume,
                enabled=lambda _item: (
                    self._applied.is_enabled(MenuAction.PAUSE)
                    or self._applied.is_enabled(MenuAction.RESUME)
                ),
            ),
            menu_class.SEPARATOR,
            item("Open log folder", self._open_log_folder),
            item(
                "About",
                menu_class(
                    item(f"Version {about.get('version', '?')}", None, enabled=False),
                    item(
                        f"Config: {about.get('config_path', '?')}", None, enabled=False
                    ),
                    item(
                        f"Data folder: {about.get('data_folder', '?')}",
                        None,
                        enabled=False,
                    ),
                ),
            ),
            menu_class.SEPARATOR,
            item("Quit", self._quit),
        )

    def _enabled(self, action: MenuAction) -> Callable[[Any], bool]:
        """A pystray ``enabled`` callable for ``action``."""
        return lambda _item: self._applied.is_enabled(action)

    def _open_settings(self, _icon: Any, _item: Any) -> None:
        """Open settings: the page, with the launch token, in the browser."""
        url = self._actions.launch_url
        in_background("open-settings", lambda: open_url(url))

    def _sync_now(self, _icon: Any, _item: Any) -> None:
        """Sync now."""
        logger.info("Sync now chosen from the tray")
        self._in_background("sync-now", self._actions.sync_now)

    def _pause_or_resume(self, _icon: Any, _item: Any) -> None:
        """Pause sync, or Resume sync while paused."""
        if self._applied.paused:
            logger.info("Resume sync chosen from the tray")
            self._in_background("resume", self._actions.resume)
        else:
            logger.info("Pause sync chosen from the tray")
            self._in_background("pause", self._actions.pause)

    def _open_log_folder(self, _icon: Any, _item: Any) -> None:
        """Open log folder; where the desktop cannot, a notice says where it is."""
        folder = self._actions.log_folder()

        def work() -> None:
            if open_folder(folder):
                return
            notice = Notice(
                NoticeKind.FOLDER_NOT_OPENED,
                "Log folder",
                f"The desktop could not open the log folder. It is {folder}",
            )
            self._tell([notice])

        in_background("open-log-folder", work)

    def _quit(self, _icon: Any, _item: Any) -> None:
        """Quit: ask the agent to stop and end the icon's loop."""
        logger.info("Quit chosen from the tray")
        self._actions.quit()
        self._icon.stop()

    def _in_background(self, name: str, action: Callable[[], None]) -> None:
        """Run an agent action off the icon's thread, then read the status at once."""

        def work() -> None:
            try:
                action()
            finally:
                self._watcher.poke()

        in_background(name, work)


def icon_thread_waker(
    icon: Any, backend: str, apply: Callable[[], None]
) -> Callable[[], None]:
    """A function that makes ``apply`` run soon on the icon's own thread."""
    if backend in ("gtk", "appindicator"):
        from gi.repository import GLib

        def run_once() -> bool:
            try:
                apply()
            except Exception:
                logger.exception("The tray icon could not be updated")
            return False  # Run once, not on every idle turn.

        return lambda: GLib.idle_add(run_once)
    if backend == "darwin":
        from PyObjCTools import AppHelper

        return lambda: AppHelper.callAfter(apply)
    if backend == "win32":
        return win32_waker(icon, apply)
    # pystray's X11 backend carries each of its X calls over to the icon's thread
    # and waits for it, so the changes are applied there already.
    return apply


def win32_waker(icon: Any, apply: Callable[[], None]) -> Callable[[], None]:
    """Post a window message that pystray's Windows loop answers by applying."""
    from pystray._util import win32

    message = win32.WM_USER + WIN32_APPLY_OFFSET
    icon._message_handlers[message] = lambda _wparam, _lparam: apply()

    def wake() -> None:
        window = getattr(icon, "_hwnd", None)
        if window:
            win32.PostMessage(window, message, 0, 0)

    return wake


def prepare_xorg_icon(icon: Any) -> None:
    """Work around two faults of pystray 0.19.5's X11 icon before it is first shown.

    Its window does not ask X for button presses, so a click, its only action, never
    arrives (moses-palmer/pystray#151): ask for them. And showing it sends the tray
    two dock requests in a row (one to draw, one to show), after which trayer at
    times embeds nothing; marking the picture as current sends one, and the window
    draws the picture when the tray first exposes it.
    """
    window = getattr(icon, "_window", None)
    display = getattr(icon, "_display", None)
    if window is None or display is None or not hasattr(icon, "_icon_valid"):
        return
    import Xlib.X

    window.change_attributes(
        event_mask=Xlib.X.ExposureMask
        | Xlib.X.StructureNotifyMask
        | Xlib.X.ButtonPressMask
    )
    display.flush()
    icon._icon_valid = True


def set_native_tooltip(icon: Any, text: str) -> None:
    """Set the hover text where pystray's title is not it (GTK's StatusIcon)."""
    status_icon = getattr(icon, "_status_icon", None)
    if status_icon is not None:
        status_icon.set_tooltip_text(text)


def release_setup_thread(icon: Any) -> None:
    """Let pystray's setup thread end when the loop failed before it was ready.

    The thread waits for the loop's "ready" forever and, not being a daemon, would
    keep the process from exiting.
    """
    ready = getattr(icon, "_Icon__queue", None)
    if ready is not None:
        ready.put(False)
