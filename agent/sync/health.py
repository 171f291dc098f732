"""How the sync says things went: remote systems down and back, tenants failing.

Both trackers speak once per change: "unreachable" once and "back" once for a
remote API, "failing" once (with one notification) and "back" once for a tenant,
so that an outage fills neither the log nor the tray.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from agent.errors import ServerError

logger = logging.getLogger(__name__)

#: A tenant that fails this many cycles in a row is "failing" (and notified once).
FAILING_AFTER = 3

#: Called with a title and a message for people (the tray's notification).
Notify = Callable[[str, str], None]


class Reachability:
    """Whether a remote API answers; logs the first failure and the recovery, and
    tells the status what is down (the tray says so at once: writes wait for it)."""

    def __init__(self, label: str, system: str = "", address: str = "") -> None:
        """Track the API that ``label`` names ("Tigerpaw (Integration name)"):
        ``system`` ("Tigerpaw") at ``address`` ("host:port")."""
        self.label = label
        self.system = system or label
        self.address = address
        self.down = False
        self.error = ""
        #: The API answered, with a server error (5xx), rather than not at all.
        self.failing = False
        self.since: dt.datetime | None = None
        self._lock = threading.Lock()

    def failed(self, error: BaseException) -> None:
        """Note a failure to reach the API; only the first in a row is a warning."""
        with self._lock:
            first, self.down = not self.down, True
            self.error = str(error)
            self.failing = isinstance(error, ServerError)
            if first:
                self.since = dt.datetime.now(dt.UTC)
        if first:
            logger.warning("%s is unreachable: %s", self.label, error)
        else:
            logger.debug("%s is still unreachable: %s", self.label, error)

    def answered(self) -> None:
        """Note an answer; logs the recovery once."""
        with self._lock:
            back, self.down = self.down, False
            self.error, self.since, self.failing = "", None, False
        if back:
            logger.info("%s is reachable again", self.label)

    def outage(self) -> dict[str, Any] | None:
        """What the status shows while the API is down (None while it answers)."""
        with self._lock:
            if not self.down:
                return None
            since = self.since.isoformat(timespec="seconds") if self.since else ""
            return {
                "system": self.system,
                "address": self.address,
                "error": self.error,
                "failing": self.failing,
                "since": since,
            }


@dataclass
class TenantState:
    """One tenant's run of results."""

    name: str
    failures: int = 0
    error: str | None = None
    #: Failed enough cycles in a row to be shown failing (and notified once).
    failing: bool = False


class TenantHealth:
    """Consecutive failures per tenant (or integration, by any key); notifies once
    when one starts failing."""

    def __init__(
        self,
        notify: Notify | None = None,
        failing_after: int = FAILING_AFTER,
        *,
        back: str = "%s syncs again",
    ) -> None:
        """Call ``notify`` once per tenant that keeps failing; ``back`` is the log
        line (with the name) when one that was failing goes through again."""
        self.notify = notify
        self.failing_after = failing_after
        self.back = back
        self._states: dict[Hashable, TenantState] = {}
        self._lock = threading.Lock()

    def succeeded(self, tenant_id: Hashable, name: str) -> None:
        """A cycle of the tenant went through."""
        with self._lock:
            state = self._states.setdefault(tenant_id, TenantState(name))
            was_failing = state.failing
            state.failures, state.error, state.failing = 0, None, False
        if was_failing:
            logger.info(self.back, name)

    def failed(self, tenant_id: Hashable, name: str, error: str) -> None:
        """A cycle of the tenant failed with ``error`` (a message for people)."""
        with self._lock:
            state = self._states.setdefault(tenant_id, TenantState(name))
            state.failures += 1
            state.error = error
            tell = state.failures >= self.failing_after and not state.failing
            if tell:
                state.failing = True
        if tell:
            logger.warning(
                "%s keeps failing (%d cycles in a row): %s",
                name,
                state.failures,
                error,
            )
            if self.notify is not None:
                self.notify(f"{name} is not syncing", error)

    def state(self, tenant_id: Hashable) -> TenantState | None:
        """A copy of the tenant's state, or None before its first cycle."""
        with self._lock:
            found = self._states.get(tenant_id)
            return None if found is None else TenantState(**found.__dict__)

    def failing(self) -> list[Hashable]:
        """The tenants failing now."""
        with self._lock:
            return [tenant_id for tenant_id, s in self._states.items() if s.failing]
