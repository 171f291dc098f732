"""From the agent's status to what the tray shows: state, tooltip, menu items."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.tray.state import (
    TOOLTIP_LIMIT,
    MenuAction,
    TrayState,
    describe_last_sync,
    view_from_status,
)

NOW = dt.datetime(2026, 3, 10, 15, 30, tzinfo=dt.UTC)


def status(
    *,
    sync_state: str = "idle",
    integrations: list | None = None,
    config_error: dict | None = None,
    last_run: str | None = None,
) -> dict:
    """A status dict shaped like /api/status."""
    if integrations is None:
        integrations = [integration()]
    return {
        "version": "0.1.0",
        "config": {"ok": config_error is None, "error": config_error},
        "sync": {"state": sync_state, "last_run": last_run, "next_run": None},
        "integrations": integrations,
    }


def integration(*errors: str | None, error: str | None = None) -> dict:
    """An integration whose tenants have these errors (None: healthy)."""
    return {
        "id": "2f1c",
        "name": "Integration with Tigerpaw",
        "source": "ksc",
        "error": error,
        "tenants": [
            {"id": n, "name": f"Tenant {n}", "error": e} for n, e in enumerate(errors)
        ],
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (status(integrations=[]), TrayState.NOT_SET_UP),
        (status(), TrayState.OK),
        (status(integrations=[integration(None, None)]), TrayState.OK),
        (status(sync_state="running"), TrayState.SYNCING),
        (status(sync_state="paused"), TrayState.PAUSED),
        (status(sync_state="failing"), TrayState.ATTENTION),
        (status(integrations=[integration(None, "refused")]), TrayState.ATTENTION),
        (status(integrations=[integration(error="no answer")]), TrayState.ATTENTION),
        (
            status(config_error={"message": "line 4: bad", "line": 4, "key": "X"}),
            TrayState.ATTENTION,
        ),
        # A broken config file matters even before setup.
        (
            status(integrations=[], config_error={"message": "bad", "line": 2}),
            TrayState.ATTENTION,
        ),
        # A sync running or paused is shown over an older tenant failure.
        (
            status(sync_state="running", integrations=[integration("refused")]),
            TrayState.SYNCING,
        ),
        (
            status(sync_state="paused", integrations=[integration("refused")]),
            TrayState.PAUSED,
        ),
        ({}, TrayState.NOT_SET_UP),
    ],
)
def test_state_for_status(given: dict, expected: TrayState) -> None:
    assert view_from_status(given, NOW).state is expected


def test_attention_tooltip_says_why() -> None:
    view = view_from_status(
        status(
            integrations=[integration("a", None, "b")],
            config_error={"message": "line 7: bad value", "line": 7, "key": "LogLevel"},
        ),
        NOW,
    )
    assert "config file error on line 7" in view.tooltip
    assert "2 tenants failing" in view.tooltip

    one = view_from_status(status(integrations=[integration("a")]), NOW)
    assert "1 tenant failing" in one.tooltip
    failing = view_from_status(status(sync_state="failing"), NOW)
    assert "sync failing" in failing.tooltip


def test_tooltip_gives_state_in_words_and_last_sync() -> None:
    view = view_from_status(status(last_run="2026-03-10T14:05:00+00:00"), NOW)
    assert view.tooltip == "Tigerpaw integration: up to date\nLast sync: today 14:05"

    never = view_from_status(status(integrations=[]), NOW)
    assert never.tooltip.startswith("Tigerpaw integration: not set up yet")
    assert never.tooltip.endswith("Last sync: never")


def test_tooltip_fits_windows_limit() -> None:
    many = [integration(*["x"] * 3, error="y") for _ in range(200)]
    long_error = {"message": "m", "line": 10**60}
    view = view_from_status(status(integrations=many, config_error=long_error), NOW)
    assert len(view.tooltip) <= TOOLTIP_LIMIT
    assert view.tooltip.endswith("\u2026")


def test_last_sync_in_the_local_zone_of_now() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    now = NOW.astimezone(berlin)
    assert describe_last_sync("2026-03-10T14:05:00+00:00", now) == (
        "Last sync: today 15:05"
    )
    # Without an offset a time is UTC, as the store writes it.
    assert describe_last_sync("2026-03-10T14:05:00", now) == "Last sync: today 15:05"
    assert describe_last_sync("2026-03-09T22:59:00+00:00", now) == (
        "Last sync: 2026-03-09 23:59"
    )
    assert describe_last_sync("2026-03-09T23:00:00+00:00", now) == (
        "Last sync: today 00:00"
    )
    assert describe_last_sync("yesterday", now) == "Last sync: unknown"
    assert describe_last_sync(None, now) == "Last sync: never"


ALWAYS = {
    MenuAction.OPEN_SETTINGS,
    MenuAction.OPEN_LOG_FOLDER,
    MenuAction.ABOUT,
    MenuAction.QUIT,
}


@pytest.mark.parametrize(
    ("given", "also_enabled"),
    [
        # No Sync now and nothing to pause before setup.
        (status(integrations=[]), set()),
        (status(), {MenuAction.SYNC_NOW, MenuAction.PAUSE}),
        (status(sync_state="failing"), {MenuAction.SYNC_NOW, MenuAction.PAUSE}),
        # A cycle already runs: no second one.
        (status(sync_state="running"), {MenuAction.PAUSE}),
        (status(sync_state="paused"), {MenuAction.RESUME}),
        (
            status(config_error={"message": "bad", "line": 3}),
            {MenuAction.SYNC_NOW, MenuAction.PAUSE},
        ),
    ],
)
def test_menu_items_enabled_by_state(given: dict, also_enabled: set) -> None:
    view = view_from_status(given, NOW)
    assert view.enabled == ALWAYS | also_enabled
    for action in MenuAction:
        assert view.is_enabled(action) == (action in view.enabled)


def test_pause_item_reads_resume_while_paused() -> None:
    assert view_from_status(status(), NOW).pause_label == "Pause sync"
    paused = view_from_status(status(sync_state="paused"), NOW)
    assert paused.paused
    assert paused.pause_label == "Resume sync"


def test_equal_status_gives_equal_views() -> None:
    # The watcher relies on equality to skip updates that change nothing.
    assert view_from_status(status(), NOW) == view_from_status(status(), NOW)
    assert view_from_status(status(), NOW) != view_from_status(
        status(sync_state="running"), NOW
    )


def test_the_sync_view_decides_which_tenants_fail() -> None:
    # The scheduler calls a tenant failing only after several failed cycles.
    given = status(integrations=[integration("stale error in the store")])
    given["sync"]["integrations"] = [
        {
            "id": "2f1c",
            "name": "KSC",
            "state": "idle",
            "error": None,
            "tenants": [
                {"id": 0, "name": "A", "state": "error", "error": "timed out"},
                {"id": 1, "name": "B", "state": "ok", "error": None},
            ],
        }
    ]
    assert view_from_status(given, NOW).state is TrayState.OK

    given["sync"]["integrations"][0]["tenants"][0]["state"] = "failing"
    given["sync"]["integrations"][0]["state"] = "failing"
    view = view_from_status(given, NOW)
    assert view.state is TrayState.ATTENTION
    assert "1 tenant failing" in view.tooltip
    assert "integration" not in view.headline, "the tenant, not its integration"

    given["sync"]["integrations"][0]["error"] = "KSC refused the user"
    assert (
        "1 integration failing; 1 tenant failing"
        in view_from_status(given, NOW).headline
    )


def test_an_unreachable_tigerpaw_needs_attention_at_once() -> None:
    """The icon asks for attention from the first cycle that cannot reach
    Tigerpaw, not only after tenants have failed several cycles."""
    status = {
        "config": {"ok": True, "error": None},
        "integrations": [{"id": "i1", "name": "KSC", "tenants": []}],
        "sync": {
            "state": "idle",
            "integrations": [
                {
                    "id": "i1",
                    "state": "idle",
                    "tenants": [],
                    "unreachable": [
                        {
                            "system": "Tigerpaw",
                            "address": "10.0.0.5:443",
                            "error": "Nothing is listening",
                        }
                    ],
                }
            ],
        },
    }

    view = view_from_status(status, NOW)

    assert view.state is TrayState.ATTENTION
    assert "Tigerpaw at 10.0.0.5:443 unreachable" in view.headline
