"""Which notices to show for a status: each kind once per change, never every cycle.

The Notifier compares each status with what it last announced, per topic (setup,
config file, failing tenants, new service orders). A topic speaks only when its
announced state changes, and then stays quiet for its cooldown; a change that comes
and goes within the cooldown is never announced, so a tenant that fails every other
cycle does not notify every cycle.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.tray.state import failing_parts, is_set_up, plural, unreachable_systems

logger = logging.getLogger(__name__)


class NoticeKind(enum.StrEnum):
    """What a notice is about."""

    SETUP_NEEDED = "setup_needed"
    CONFIG_ERROR = "config_error"
    CONFIG_FIXED = "config_fixed"
    TENANT_FAILING = "tenant_failing"
    TENANT_RECOVERED = "tenant_recovered"
    NEW_SERVICE_ORDERS = "new_service_orders"
    FOLDER_NOT_OPENED = "folder_not_opened"
    UNREACHABLE = "unreachable"
    REACHABLE_AGAIN = "reachable_again"


#: Kinds that mean something is wrong (logged as warnings).
WARNINGS = frozenset(
    {
        NoticeKind.CONFIG_ERROR,
        NoticeKind.TENANT_FAILING,
        NoticeKind.FOLDER_NOT_OPENED,
        NoticeKind.UNREACHABLE,
    }
)


@dataclass(frozen=True)
class Notice:
    """One message for a person: a short title and a sentence or two."""

    kind: NoticeKind
    title: str
    message: str

    @property
    def is_warning(self) -> bool:
        """Whether this notice reports a problem rather than good news."""
        return self.kind in WARNINGS


#: Seconds a topic stays quiet after it spoke.
DEFAULT_COOLDOWNS: Mapping[str, float] = {
    "setup": 0.0,
    "config": 5.0,
    "tenants": 600.0,
    "reachability": 300.0,
    "orders": 900.0,
}

#: A cycle that opens at least this many service orders is worth a notice.
LARGE_BATCH = 10

#: Names listed in one notice before "and N more".
NAMES_SHOWN = 3


@dataclass
class Notifier:
    """Decides the notices for each status; pure (the caller gives the time)."""

    cooldowns: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_COOLDOWNS)
    )
    large_batch: int = LARGE_BATCH
    _needs_setup: bool | None = None
    _config_error: tuple[Any, ...] | None = None
    _failing: dict[str, str] = field(default_factory=dict)
    _unreachable: frozenset[str] = frozenset()
    _cycles: dict[str, Any] = field(default_factory=dict)
    _orders_pending: int = 0
    _spoken: dict[str, float] = field(default_factory=dict)

    def review(self, status: Mapping[str, Any], now: float) -> list[Notice]:
        """The notices this status calls for; ``now`` is a monotonic clock in s."""
        notices: list[Notice] = []
        notices += self._review_setup(status, now)
        notices += self._review_config(status, now)
        notices += self._review_reachability(status, now)
        notices += self._review_tenants(status, now)
        notices += self._review_orders(status, now)
        return notices

    def _quiet(self, topic: str, now: float) -> bool:
        """Whether ``topic`` spoke less than its cooldown ago."""
        last = self._spoken.get(topic, -math.inf)
        return now - last < self.cooldowns.get(topic, 0.0)

    def _review_setup(self, status: Mapping[str, Any], now: float) -> list[Notice]:
        """Setup needed: at first start, and again if setup is undone."""
        needs_setup = not is_set_up(status)
        if needs_setup == self._needs_setup:
            return []
        if not needs_setup:
            # Finishing setup is what the person just did: nothing to tell.
            self._needs_setup = False
            return []
        if self._quiet("setup", now):
            return []

        self._needs_setup = True
        self._spoken["setup"] = now
        return [
            Notice(
                NoticeKind.SETUP_NEEDED,
                "Setup needed",
                "Open the setup page (Open settings in the tray icon's menu, or the "
                "address the agent printed) to connect Kaspersky and Tigerpaw.",
            )
        ]

    def _review_config(self, status: Mapping[str, Any], now: float) -> list[Notice]:
        """The config file broke (naming the line) or is good again."""
        config = status.get("config") or {}
        error = None
        if not config.get("ok", True):
            details = config.get("error") or {}
            error = (details.get("line"), details.get("key"), details.get("message"))
        if error == self._config_error or self._quiet("config", now):
            return []

        self._config_error = error
        self._spoken["config"] = now
        if error is None:
            return [
                Notice(
                    NoticeKind.CONFIG_FIXED,
                    "Config file fixed",
                    "The config file is good again; its settings are in force.",
                )
            ]
        line, key, message = error
        text = (message or "The config file cannot be read").rstrip(".")
        if line and f"line {line}" not in text:
            text = f"Line {line}: {text}"
        if key and key not in text:
            text += f" (key {key})"
        return [
            Notice(
                NoticeKind.CONFIG_ERROR,
                "Config file error",
                f"{text}. The last good settings stay in force.",
            )
        ]

    def _review_reachability(
        self, status: Mapping[str, Any], now: float
    ) -> list[Notice]:
        """A remote system (Tigerpaw) stopped answering, or answers again: said at
        once, since writes wait for it; a flapping one speaks at most every few
        minutes."""
        down = unreachable_systems(status)
        if down.keys() == self._unreachable or self._quiet("reachability", now):
            return []

        started = [name for name in down if name not in self._unreachable]
        back = sorted(self._unreachable - down.keys())
        self._unreachable = frozenset(down)
        self._spoken["reachability"] = now

        notices = [
            Notice(
                NoticeKind.UNREACHABLE,
                f"{name} is unreachable",
                f"{down[name].rstrip('.')}. The agent keeps every write and sends it "
                "when the server answers again.",
            )
            for name in started
        ]
        if back:
            notices.append(
                Notice(
                    NoticeKind.REACHABLE_AGAIN,
                    f"{list_names(back)} answers again",
                    "The writes that waited for it are being sent.",
                )
            )
        return notices

    def _review_tenants(self, status: Mapping[str, Any], now: float) -> list[Notice]:
        """Tenants (or integrations) that started failing or recovered."""
        failing = failing_parts(status)
        if failing.keys() == self._failing.keys() or self._quiet("tenants", now):
            return []

        started = {k: v[1:] for k, v in failing.items() if k not in self._failing}
        recovered = {k: v for k, v in self._failing.items() if k not in failing}
        self._failing = {key: name for key, (_kind, name, _error) in failing.items()}
        self._spoken["tenants"] = now

        notices = []
        if started:
            notices.append(failing_notice(list(started.values())))
        if recovered:
            names = list(recovered.values())
            notices.append(
                Notice(
                    NoticeKind.TENANT_RECOVERED,
                    f"Sync recovered for {names[0]}"
                    if len(names) == 1
                    else f"Sync recovered for {plural(len(names), 'tenant')}",
                    "It synced again without errors."
                    if len(names) == 1
                    else f"{list_names(names)} synced again without errors.",
                )
            )
        return notices

    def _review_orders(self, status: Mapping[str, Any], now: float) -> list[Notice]:
        """Large batches of new service orders from cycles finished since."""
        for key, (cycle, opened) in finished_cycles(status).items():
            if key not in self._cycles:
                # A cycle finished before this start was announced (or not) then.
                self._cycles[key] = cycle
            elif cycle != self._cycles[key]:
                self._cycles[key] = cycle
                if isinstance(opened, int) and opened >= self.large_batch:
                    self._orders_pending += opened
        if not self._orders_pending or self._quiet("orders", now):
            return []

        count, self._orders_pending = self._orders_pending, 0
        self._spoken["orders"] = now
        return [
            Notice(
                NoticeKind.NEW_SERVICE_ORDERS,
                f"{count} new service orders",
                f"The sync opened {count} service orders in Tigerpaw. If that is more "
                "than expected, check the severity and device status choices.",
            )
        ]


def finished_cycles(status: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Per integration (or for the whole sync): last cycle and orders it opened."""
    sync = status.get("sync") or {}
    per_integration = sync.get("integrations")
    if per_integration is None:
        return {"": (sync.get("last_run"), sync.get("orders_opened"))}
    return {
        str(item.get("id")): (item.get("last_run"), item.get("orders_opened"))
        for item in per_integration
    }


def failing_notice(started: list[tuple[str, str]]) -> Notice:
    """The notice for tenants (or integrations) that started failing."""
    if len(started) == 1:
        name, error = started[0]
        return Notice(NoticeKind.TENANT_FAILING, f"Sync failing for {name}", error)
    names = [name for name, _ in started]
    return Notice(
        NoticeKind.TENANT_FAILING,
        f"Sync failing for {plural(len(names), 'tenant')}",
        f"{list_names(names)}: open settings to see why and what to do.",
    )


def list_names(names: list[str]) -> str:
    """``A, B and C``, or ``A, B, C and 4 more``."""
    if len(names) > NAMES_SHOWN:
        shown = ", ".join(names[:NAMES_SHOWN])
        return f"{shown} and {len(names) - NAMES_SHOWN} more"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def log_notice(notice: Notice) -> None:
    """Write a notice to the log: problems as warnings, the rest as info."""
    level = logging.WARNING if notice.is_warning else logging.INFO
    logger.log(level, "%s: %s", notice.title, notice.message)


def deliver(
    notices: list[Notice],
    *,
    banner: Callable[[str, str, str], None],
    desktop: Callable[[Notice], None] | None = None,
) -> None:
    """Log each notice; show it on the desktop, or on the page's banner if none."""
    for notice in notices:
        log_notice(notice)
        if desktop is not None:
            desktop(notice)
            continue
        try:
            banner(str(notice.kind), notice.title, notice.message)
        except Exception:
            logger.exception("Could not put a notice on the page's banner")
