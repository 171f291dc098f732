"""What the tray shows for a status: its state, tooltip and which menu items work."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The name the tooltip starts with.
APP_TITLE = "Tigerpaw integration"

#: Windows cuts tooltips at 127 characters; the others show them whole.
TOOLTIP_LIMIT = 127


class TrayState(enum.StrEnum):
    """The five looks of the icon."""

    NOT_SET_UP = "not_set_up"
    OK = "ok"
    SYNCING = "syncing"
    PAUSED = "paused"
    ATTENTION = "attention"


class MenuAction(enum.StrEnum):
    """The tray menu's actions (each is also on the page)."""

    OPEN_SETTINGS = "open_settings"
    SYNC_NOW = "sync_now"
    PAUSE = "pause"
    RESUME = "resume"
    OPEN_LOG_FOLDER = "open_log_folder"
    ABOUT = "about"
    QUIT = "quit"


#: Actions that work in every state.
ALWAYS_ENABLED = frozenset(
    {
        MenuAction.OPEN_SETTINGS,
        MenuAction.OPEN_LOG_FOLDER,
        MenuAction.ABOUT,
        MenuAction.QUIT,
    }
)

HEADLINES = {
    TrayState.NOT_SET_UP: "not set up yet: open settings",
    TrayState.OK: "up to date",
    TrayState.SYNCING: "syncing now",
    TrayState.PAUSED: "sync paused",
    TrayState.ATTENTION: "needs attention",
}


@dataclass(frozen=True)
class TrayView:
    """Everything the icon shows at one moment; equal views need no update."""

    state: TrayState
    headline: str
    last_sync: str
    enabled: frozenset[MenuAction]

    @property
    def paused(self) -> bool:
        """Whether syncs are paused (the menu then offers Resume sync)."""
        return MenuAction.RESUME in self.enabled

    @property
    def pause_label(self) -> str:
        """The text of the item that pauses or resumes."""
        return "Resume sync" if self.paused else "Pause sync"

    @property
    def tooltip(self) -> str:
        """The state in words and the last sync time, within Windows' limit."""
        text = f"{APP_TITLE}: {self.headline}\n{self.last_sync}"
        if len(text) > TOOLTIP_LIMIT:
            text = text[: TOOLTIP_LIMIT - 1] + "\u2026"
        return text

    def is_enabled(self, action: MenuAction) -> bool:
        """Whether the menu item for ``action`` can be clicked now."""
        return action in self.enabled


def view_from_status(status: Mapping[str, Any], now: dt.datetime) -> TrayView:
    """The view for a status dict, with times shown in the local zone of ``now``."""
    sync = status.get("sync") or {}
    sync_state = sync.get("state") or "idle"
    set_up = is_set_up(status)
    problems = attention_reasons(status)
    config_broken = not (status.get("config") or {}).get("ok", True)

    if config_broken:
        state = TrayState.ATTENTION
    elif not set_up:
        state = TrayState.NOT_SET_UP
    elif sync_state == "paused":
        state = TrayState.PAUSED
    elif sync_state == "running":
        state = TrayState.SYNCING
    elif problems:
        state = TrayState.ATTENTION
    else:
        state = TrayState.OK

    headline = HEADLINES[state]
    if state is TrayState.ATTENTION and problems:
        headline = f"{headline} ({'; '.join(problems)})"

    return TrayView(
        state=state,
        headline=headline,
        last_sync=describe_last_sync(sync.get("last_run"), now),
        enabled=enabled_actions(set_up, sync_state),
    )


def is_set_up(status: Mapping[str, Any]) -> bool:
    """Whether setup made at least one integration (before that, nothing syncs)."""
    return bool(status.get("integrations"))


def enabled_actions(set_up: bool, sync_state: str) -> frozenset[MenuAction]:
    """The menu actions that make sense in this state."""
    enabled = set(ALWAYS_ENABLED)
    if sync_state == "paused":
        enabled.add(MenuAction.RESUME)
    elif set_up:
        enabled.add(MenuAction.PAUSE)
    if set_up and sync_state not in ("running", "paused"):
        enabled.add(MenuAction.SYNC_NOW)
    return frozenset(enabled)


def attention_reasons(status: Mapping[str, Any]) -> list[str]:
    """Short phrases for what needs a person: config error, failing tenants."""
    reasons = []
    config = status.get("config") or {}
    if not config.get("ok", True):
        line = (config.get("error") or {}).get("line")
        reasons.append(
            f"config file error on line {line}" if line else "config file error"
        )

    reasons += [f"{system} unreachable" for system in unreachable_systems(status)]

    failing = failing_parts(status)
    broken = sum(1 for kind, _name, _error in failing.values() if kind == "integration")
    tenants = len(failing) - broken
    if broken:
        reasons.append(plural(broken, "integration") + " failing")
    if tenants:
        reasons.append(plural(tenants, "tenant") + " failing")
    if not failing and (status.get("sync") or {}).get("state") == "failing":
        reasons.append("sync failing")
    return reasons


def failing_parts(status: Mapping[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Failing integrations and tenants: a stable key to (kind, name, error).

    The sync's own view (``sync.integrations``, where a tenant is ``failing`` only
    after several failed cycles in a row) is preferred; without it, a tenant with
    an ``error`` counts as failing.
    """
    sync_view = (status.get("sync") or {}).get("integrations")
    integrations = sync_view if sync_view is not None else status.get("integrations")
    failing = {}
    for integration in integrations or []:
        integration_id = str(integration.get("id"))
        name = str(integration.get("name") or integration_id)
        error = integration.get("error")
        if error and integration.get("state", "failing") == "failing":
            failing[integration_id] = ("integration", name, str(error))
        for tenant in integration.get("tenants") or []:
            error = tenant.get("error")
            state = tenant.get("state", "failing" if error else "ok")
            if state == "failing":
                key = f"{integration_id}/{tenant.get('id')}"
                label = str(tenant.get("name") or key)
                failing[key] = ("tenant", label, str(error or "it keeps failing"))
    return failing


def unreachable_systems(status: Mapping[str, Any]) -> dict[str, str]:
    """Remote systems the sync cannot reach now: "Tigerpaw at host:port" to the
    last error, once per system however many integrations use it."""
    found: dict[str, str] = {}
    for integration in (status.get("sync") or {}).get("integrations") or []:
        for item in integration.get("unreachable") or []:
            name = str(item.get("system") or "A server")
            address = item.get("address")
            label = f"{name} at {address}" if address else name
            found.setdefault(label, str(item.get("error") or ""))
    return found


def describe_last_sync(last_run: str | None, now: dt.datetime) -> str:
    """``Last sync: today 14:05``, a dated time for other days, or ``never``."""
    if not last_run:
        return "Last sync: never"
    try:
        when = dt.datetime.fromisoformat(last_run)
    except ValueError:
        return "Last sync: unknown"
    if when.tzinfo is None:
        # The store keeps times in UTC; a bare time from it means UTC.
        when = when.replace(tzinfo=dt.UTC)

    # Shown in the zone of ``now``: the local zone for an aware local time.
    local = when.astimezone(now.tzinfo)
    if local.date() == now.date():
        return f"Last sync: today {local:%H:%M}"
    return f"Last sync: {local:%Y-%m-%d %H:%M}"


def plural(count: int, noun: str) -> str:
    """``1 tenant``, ``2 tenants``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
