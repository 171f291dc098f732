"""The tray icon: state, menu and notices; with no tray, the same notices headless.

``run_tray(actions)`` shows the icon on the calling (main) thread until Quit or a stop,
or returns False at once when no icon can be shown; ``watch_without_tray(actions)``
then raises the same notices into the log and the page's banner.
"""

from __future__ import annotations

import logging
import threading

from agent.tray.actions import TrayActions
from agent.tray.backend import NoTray, load_backend
from agent.tray.watcher import StatusWatcher, watch_without_tray

logger = logging.getLogger(__name__)

__all__ = ["TrayActions", "StatusWatcher", "run_tray", "watch_without_tray"]


def run_tray(actions: TrayActions, *, headless: bool = False) -> bool:
    """Show the icon and block until it ends; False at once when there is none.

    Call it on the main thread (macOS runs its menu bar there). When it returns
    False it has said once, in the log and so on the console, why there is no icon
    and where the page is.
    """
    if headless:
        reason = "--headless"
    elif threading.current_thread() is not threading.main_thread():
        reason = "the tray must run on the main thread"
    else:
        try:
            backend = load_backend()
        except NoTray as err:
            reason = str(err)
        else:
            from agent.tray.icon import TrayIcon

            if TrayIcon(actions, backend).run():
                return True
            reason = "the tray icon could not start"

    logger.info(
        "Running without a tray icon (%s); the page is at %s",
        reason,
        page_address(actions.launch_url),
    )
    return False


def page_address(launch_url: str) -> str:
    """The page's address without the launch token."""
    return launch_url.split("/?", 1)[0] + "/"
