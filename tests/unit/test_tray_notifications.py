"""Notices: each kind once per change, quiet for a while after, never every cycle."""

from __future__ import annotations

import logging

import pytest

from agent.tray.notifications import Notice, NoticeKind, Notifier, deliver

COOLDOWNS = {
    "setup": 0.0,
    "config": 5.0,
    "tenants": 600.0,
    "orders": 900.0,
    "reachability": 300.0,
}


def status(
    *,
    tenants: dict[int, str | None] | None = None,
    set_up: bool = True,
    config_error: dict | None = None,
    last_run: str | None = None,
    orders_opened: int | None = None,
) -> dict:
    """A status with one integration whose tenants carry these errors."""
    tenants = tenants or {}
    return {
        "config": {"ok": config_error is None, "error": config_error},
        "sync": {
            "state": "idle",
            "last_run": last_run,
            "orders_opened": orders_opened,
        },
        "integrations": [
            {
                "id": "i1",
                "name": "KSC",
                "tenants": [
                    {"id": n, "name": f"Tenant {n}", "error": e}
                    for n, e in tenants.items()
                ],
            }
        ]
        if set_up
        else [],
    }


def kinds(notices: list[Notice]) -> list[NoticeKind]:
    """The kinds of the notices, in order."""
    return [notice.kind for notice in notices]


@pytest.fixture
def notifier() -> Notifier:
    """A Notifier with the default cooldowns and a batch of ten."""
    return Notifier(cooldowns=COOLDOWNS, large_batch=10)


def test_setup_needed_once_at_first_start(notifier: Notifier) -> None:
    first = notifier.review(status(set_up=False), 0.0)
    assert kinds(first) == [NoticeKind.SETUP_NEEDED]
    assert "Open settings" in first[0].message

    for second in range(1, 100):
        assert notifier.review(status(set_up=False), float(second)) == []


def test_setup_needed_again_only_after_setup_is_undone(notifier: Notifier) -> None:
    assert notifier.review(status(), 0.0) == []
    assert notifier.review(status(), 1.0) == []

    assert kinds(notifier.review(status(set_up=False), 2.0)) == [
        NoticeKind.SETUP_NEEDED
    ]
    assert notifier.review(status(), 3.0) == []


def test_tenant_failing_and_recovered_once_per_change(notifier: Notifier) -> None:
    assert notifier.review(status(tenants={1: None, 2: None}), 0.0) == []

    failing = notifier.review(status(tenants={1: "Tigerpaw refused", 2: None}), 10.0)
    assert kinds(failing) == [NoticeKind.TENANT_FAILING]
    assert failing[0].title == "Sync failing for Tenant 1"
    assert failing[0].message == "Tigerpaw refused"
    assert failing[0].is_warning

    # Every later cycle with the same failure says nothing, even with a new text.
    for second in range(11, 2000, 60):
        same = status(tenants={1: f"Tigerpaw refused at {second}", 2: None})
        assert notifier.review(same, float(second)) == []

    recovered = notifier.review(status(tenants={1: None, 2: None}), 2000.0)
    assert kinds(recovered) == [NoticeKind.TENANT_RECOVERED]
    assert recovered[0].title == "Sync recovered for Tenant 1"
    assert not recovered[0].is_warning


def test_flapping_tenant_is_not_announced_every_cycle(notifier: Notifier) -> None:
    notifier.review(status(tenants={1: None}), 0.0)
    shown = []
    # A one-minute sync where the tenant fails every other cycle, for an hour.
    for minute in range(1, 61):
        error = "timed out" if minute % 2 else None
        shown += notifier.review(status(tenants={1: error}), minute * 60.0)

    assert len(shown) <= 60 * 60 / COOLDOWNS["tenants"] + 1
    assert shown[0].kind is NoticeKind.TENANT_FAILING


def test_change_inside_cooldown_waits_and_undone_change_is_never_shown(
    notifier: Notifier,
) -> None:
    notifier.review(status(tenants={1: None, 2: None}), 0.0)
    assert kinds(notifier.review(status(tenants={1: "x", 2: None}), 1.0)) == [
        NoticeKind.TENANT_FAILING
    ]

    # Tenant 2 fails inside the cooldown: held back, then shown when it ends.
    assert notifier.review(status(tenants={1: "x", 2: "y"}), 100.0) == []
    later = notifier.review(status(tenants={1: "x", 2: "y"}), 601.0)
    assert [n.title for n in later] == ["Sync failing for Tenant 2"]

    # Tenant 2 recovers and fails again inside the cooldown: nothing at all.
    assert notifier.review(status(tenants={1: "x", 2: None}), 700.0) == []
    assert notifier.review(status(tenants={1: "x", 2: "y"}), 800.0) == []
    assert notifier.review(status(tenants={1: "x", 2: "y"}), 1300.0) == []


def test_several_tenants_in_one_notice(notifier: Notifier) -> None:
    notifier.review(status(tenants=dict.fromkeys(range(6))), 0.0)
    notices = notifier.review(status(tenants=dict.fromkeys(range(6), "down")), 1.0)
    assert kinds(notices) == [NoticeKind.TENANT_FAILING]
    assert notices[0].title == "Sync failing for 6 tenants"
    assert notices[0].message.startswith("Tenant 0, Tenant 1, Tenant 2 and 3 more")


def test_integration_error_counts_like_a_tenant(notifier: Notifier) -> None:
    healthy = status()
    broken = status()
    broken["integrations"][0]["error"] = "KSC refused the user"
    notifier.review(healthy, 0.0)
    notices = notifier.review(broken, 1.0)
    assert [(n.kind, n.title) for n in notices] == [
        (NoticeKind.TENANT_FAILING, "Sync failing for KSC")
    ]


def test_config_error_names_line_once_per_distinct_error(notifier: Notifier) -> None:
    bad = {
        "message": "line 7: ServiceOrderSyncMinutes must be 1 to 1440",
        "line": 7,
        "key": "ServiceOrderSyncMinutes",
    }
    assert notifier.review(status(), 0.0) == []

    notices = notifier.review(status(config_error=bad), 1.0)
    assert kinds(notices) == [NoticeKind.CONFIG_ERROR]
    assert "line 7" in notices[0].message
    assert "ServiceOrderSyncMinutes" in notices[0].message
    assert "last good settings" in notices[0].message
    assert notifier.review(status(config_error=bad), 2.0) == []
    assert notifier.review(status(config_error=bad), 100.0) == []

    other = {"message": "the file is not XML", "line": 3, "key": None}
    notices = notifier.review(status(config_error=other), 101.0)
    assert "Line 3: the file is not XML" in notices[0].message

    assert kinds(notifier.review(status(), 200.0)) == [NoticeKind.CONFIG_FIXED]
    assert notifier.review(status(), 201.0) == []


def test_config_saves_in_quick_succession_are_held_back(notifier: Notifier) -> None:
    notifier.review(status(), 0.0)
    first = {"message": "line 2: bad", "line": 2, "key": "A"}
    second = {"message": "line 3: bad", "line": 3, "key": "B"}
    assert len(notifier.review(status(config_error=first), 10.0)) == 1
    assert notifier.review(status(config_error=second), 11.0) == []
    assert "line 3" in notifier.review(status(config_error=second), 15.0)[0].message


def test_config_error_at_first_start_is_shown(notifier: Notifier) -> None:
    bad = {"message": "line 1: not XML", "line": 1, "key": None}
    assert kinds(notifier.review(status(config_error=bad), 0.0)) == [
        NoticeKind.CONFIG_ERROR
    ]


def test_large_batch_of_orders_once_per_cycle(notifier: Notifier) -> None:
    # The cycle that finished before this start is not announced again.
    assert notifier.review(status(last_run="t0", orders_opened=50), 0.0) == []

    notices = notifier.review(status(last_run="t1", orders_opened=12), 1.0)
    assert kinds(notices) == [NoticeKind.NEW_SERVICE_ORDERS]
    assert notices[0].title == "12 new service orders"
    assert notifier.review(status(last_run="t1", orders_opened=12), 2.0) == []

    # Small batches are no news.
    assert notifier.review(status(last_run="t2", orders_opened=9), 1000.0) == []


def test_large_batches_inside_cooldown_are_summed(notifier: Notifier) -> None:
    notifier.review(status(last_run="t0"), 0.0)
    assert len(notifier.review(status(last_run="t1", orders_opened=10), 1.0)) == 1
    assert notifier.review(status(last_run="t2", orders_opened=20), 300.0) == []
    assert notifier.review(status(last_run="t3", orders_opened=30), 600.0) == []
    notices = notifier.review(status(last_run="t3", orders_opened=30), 901.0)
    assert [n.title for n in notices] == ["50 new service orders"]


def test_deliver_logs_and_uses_banner_only_without_desktop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    warning = Notice(NoticeKind.TENANT_FAILING, "Sync failing for A", "refused")
    news = Notice(NoticeKind.TENANT_RECOVERED, "Sync recovered for A", "fine")
    banners: list[tuple[str, str, str]] = []
    desktop: list[Notice] = []

    with caplog.at_level(logging.INFO, logger="agent.tray.notifications"):
        deliver(
            [warning, news],
            banner=lambda *args: banners.append(args),
            desktop=desktop.append,
        )
        assert desktop == [warning, news]
        assert banners == []

        deliver([warning], banner=lambda *args: banners.append(args))
    assert banners == [("tenant_failing", "Sync failing for A", "refused")]
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels == [
        ("WARNING", "Sync failing for A: refused"),
        ("INFO", "Sync recovered for A: fine"),
        ("WARNING", "Sync failing for A: refused"),
    ]


def test_sync_view_tenants_notify_once_they_keep_failing(notifier: Notifier) -> None:
    def with_sync_view(tenant_state: str, error: str | None) -> dict:
        given = status()
        given["sync"]["integrations"] = [
            {
                "id": "i1",
                "name": "KSC",
                "state": "failing" if tenant_state == "failing" else "idle",
                "error": None,
                "tenants": [
                    {"id": 7, "name": "Contoso", "state": tenant_state, "error": error}
                ],
            }
        ]
        return given

    assert notifier.review(with_sync_view("ok", None), 0.0) == []
    assert notifier.review(with_sync_view("error", "timed out"), 60.0) == []
    notices = notifier.review(with_sync_view("failing", "timed out"), 120.0)
    assert [(n.title, n.message) for n in notices] == [
        ("Sync failing for Contoso", "timed out")
    ]


def test_large_batches_per_integration(notifier: Notifier) -> None:
    def cycles(*runs: tuple[str, str | None, int]) -> dict:
        given = status()
        given["sync"]["integrations"] = [
            {"id": key, "name": key, "last_run": run, "orders_opened": opened}
            for key, run, opened in runs
        ]
        return given

    assert notifier.review(cycles(("a", None, 0), ("b", None, 0)), 0.0) == []
    notices = notifier.review(cycles(("a", "t1", 15), ("b", "t1", 4)), 1.0)
    assert [n.title for n in notices] == ["15 new service orders"]
    assert notifier.review(cycles(("a", "t1", 15), ("b", "t1", 4)), 2.0) == []


def unreachable_status(*down: tuple[str, str]) -> dict:
    """A set-up status whose sync lists Tigerpaw at these addresses as unreachable,
    each once per integration that uses it (two integrations here)."""
    given = status()
    given["sync"]["integrations"] = [
        {
            "id": integration,
            "name": integration,
            "state": "idle",
            "tenants": [],
            "unreachable": [
                {"system": "Tigerpaw", "address": address, "error": error}
                for address, error in down
            ],
        }
        for integration in ("i1", "i2")
    ]
    return given


def test_an_unreachable_tigerpaw_is_told_at_once_and_once(notifier: Notifier) -> None:
    """Tigerpaw down is told at the first failed cycle (writes wait for it), once
    for both integrations that use it; its return is told too."""
    notifier.review(status(), 0.0)
    error = "Nothing is listening at 10.0.0.5:443: check the address"

    first = notifier.review(unreachable_status(("10.0.0.5:443", error)), 1.0)
    again = notifier.review(unreachable_status(("10.0.0.5:443", error)), 2.0)
    back = notifier.review(unreachable_status(), 400.0)

    assert kinds(first) == [NoticeKind.UNREACHABLE]
    assert first[0].title == "Tigerpaw at 10.0.0.5:443 is unreachable"
    assert first[0].message.startswith(error + ". The agent keeps every write")
    assert first[0].is_warning
    assert again == []
    assert kinds(back) == [NoticeKind.REACHABLE_AGAIN]
    assert back[0].title == "Tigerpaw at 10.0.0.5:443 answers again"


def test_a_flapping_tigerpaw_speaks_at_most_every_few_minutes(
    notifier: Notifier,
) -> None:
    notifier.review(status(), 0.0)
    down = unreachable_status(("10.0.0.5:443", "Timed out"))

    told = [
        notifier.review(down if n % 2 == 0 else status(), n * 10.0) for n in range(8)
    ]

    assert [kinds(notices) for notices in told if notices] == [[NoticeKind.UNREACHABLE]]
