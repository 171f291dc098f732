"""Tests of SetupCache: what one cycle's bootstrap found, used by the next ones."""

from __future__ import annotations

from agent.sync.bootstrap import SetupCache, TigerpawSetup

FULL = TigerpawSetup(technician=7, new_status="New", closed_status="Closed")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        """Start at zero."""
        self.now = 0.0

    def __call__(self) -> float:
        """The time now."""
        return self.now


def test_a_setup_is_used_again_for_the_same_settings_and_choices() -> None:
    """Same fingerprint, within the age: the kept setup; another one: nothing."""
    cache = SetupCache(clock=Clock())
    cache.put("a", ("settings", {"rep": "Sam"}), True, FULL)

    assert cache.get("a", ("settings", {"rep": "Sam"}), True) is FULL
    assert cache.get("a", ("settings", {"rep": "Kim"}), True) is None
    assert cache.get("b", ("settings", {"rep": "Sam"}), True) is None


def test_a_setup_expires_after_its_age() -> None:
    """After max_age seconds the setup is looked up again."""
    clock = Clock()
    cache = SetupCache(max_age=60, clock=clock)
    cache.put("a", "f", True, FULL)

    clock.now = 59.0
    assert cache.get("a", "f", True) is FULL
    clock.now = 60.0
    assert cache.get("a", "f", True) is None


def test_forget_drops_one_integration_or_all() -> None:
    """Sync now or a refused write forget one integration; None forgets all."""
    cache = SetupCache(clock=Clock())
    cache.put("a", "f", True, FULL)
    cache.put("b", "f", True, FULL)

    cache.forget("a")
    assert cache.get("a", "f", True) is None
    assert cache.get("b", "f", True) is FULL
    cache.forget()
    assert cache.get("b", "f", True) is None


def test_a_setup_with_a_problem_or_a_missing_field_is_not_kept() -> None:
    """What needs a fix in Tigerpaw is looked at again every cycle."""
    cache = SetupCache(clock=Clock())
    cache.put("a", "f", True, FULL)

    cache.put("a", "f", True, TigerpawSetup(problems=("The rep is gone",)))
    assert cache.get("a", "f", True) is None
    cache.put("a", "f", True, TigerpawSetup(missing_fields=("a field",)))
    assert cache.get("a", "f", True) is None


def test_a_setup_with_orders_serves_billing_but_not_the_other_way() -> None:
    """A billing-only setup lacks the order look-ups and never replaces a full one."""
    cache = SetupCache(clock=Clock())
    billing_only = TigerpawSetup()
    cache.put("a", "f", False, billing_only)
    assert cache.get("a", "f", True) is None
    assert cache.get("a", "f", False) is billing_only

    cache.put("a", "f", True, FULL)
    cache.put("a", "f", False, billing_only)
    assert cache.get("a", "f", False) is FULL
    assert cache.get("a", "f", True) is FULL
