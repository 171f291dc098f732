"""What the tray asks of the running agent: the one protocol between the two.

The tray reads ``status()`` twice a second on a thread of its own and calls the other
methods from its menu. It reads these parts of the status dict (the ``/api/status``
reply); anything missing counts as empty:

- ``config``: ``ok`` and ``error`` (``message``, ``line``, ``key``);
- ``integrations`` (from the store): setup is done once there is one;
- ``sync``: ``state`` (idle, running, paused, failing) and ``last_run`` (ISO 8601;
  without an offset it is taken as UTC);
- ``sync.integrations`` (the scheduler's view), each ``id``, ``name``, ``state``,
  ``error``, ``last_run``, ``orders_opened`` (service orders opened by the cycle
  that finished at ``last_run``) and ``tenants``, each ``id``, ``name``, ``state``
  (``failing`` after several failed cycles in a row) and ``error``. Without it, the
  tenants of ``integrations`` with an ``error`` count as failing, and
  ``sync.orders_opened`` goes with ``sync.last_run``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol


class TrayActions(Protocol):
    """The agent as the tray and the headless status watcher see it."""

    #: Set when the agent is asked to stop (Quit, Ctrl+C, SIGTERM); the tray then ends.
    stop_event: threading.Event

    @property
    def launch_url(self) -> str:
        """The page's address with the launch token: what Open settings opens."""
        ...

    def status(self) -> dict[str, Any]:
        """The status API's reply (see the module docstring for the parts used)."""
        ...

    def sync_now(self) -> None:
        """Start a sync cycle now, without waiting for it to end."""
        ...

    def pause(self) -> None:
        """Pause scheduled syncs until resumed."""
        ...

    def resume(self) -> None:
        """Resume scheduled syncs."""
        ...

    def log_folder(self) -> Path:
        """The folder that holds the agent's log files."""
        ...

    def about(self) -> dict[str, str]:
        """``version``, ``config_path`` and ``data_folder``, as text."""
        ...

    def quit(self) -> None:
        """Ask the agent to stop; returns at once (the caller stops the parts)."""
        ...

    def show_banner(self, kind: str, title: str, message: str) -> None:
        """Show a notice on the page's banner (where the desktop cannot show it)."""
        ...
