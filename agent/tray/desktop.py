"""Opening the page and folders with the desktop's own programs, off the icon thread."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


def in_background(name: str, work: Callable[[], None]) -> threading.Thread:
    """Run ``work`` on a short-lived thread so the icon never waits for it."""

    def run() -> None:
        try:
            work()
        except Exception:
            logger.exception("The tray's %s failed", name)

    thread = threading.Thread(target=run, name=f"tray-{name}", daemon=True)
    thread.start()
    return thread


def open_url(url: str) -> None:
    """Open the page in the desktop's browser."""
    if not webbrowser.open(url):
        logger.warning(
            "No browser could be started: open the setup page address that the "
            "agent printed at start"
        )


def open_folder(path: Path) -> bool:
    """Show a folder in the desktop's file manager; False when the desktop could
    not (the caller then tells the person where the folder is)."""
    path.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":
        try:
            os.startfile(path)  # type: ignore[attr-defined]  # Windows only
        except OSError as err:
            logger.warning("Could not open the folder %s: %s", path, err)
            return False
        return True

    opener = "open" if sys.platform == "darwin" else "xdg-open"
    try:
        process = subprocess.Popen(
            [opener, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as err:
        logger.warning("Could not open the folder (%s): it is %s", err, path)
        return False
    # Some openers stay until the file manager closes; wait so none is left behind.
    if process.wait() != 0:
        logger.warning("The desktop could not open the folder %s", path)
        return False
    return True
