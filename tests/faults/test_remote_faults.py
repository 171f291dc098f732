"""Remote faults a sync must survive: Tigerpaw slow, KSC sessions ending mid-sync,
KSC down for a cycle, and the proxy refusing the integration's credentials.

Each fault ends in a clear error on the tenants (saying what to fix), loses nothing
(no event consumed, no write dropped), and the first cycle after recovery ends
exactly as the seed says it should.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import connections
from agent.sandbox.server import Request, Response
from agent.secrets import secret_name
from tests.integration.sync_support import SyncWorld, kaspersky_charges, open_titles

pytestmark = pytest.mark.usefixtures("no_os_keyring")

#: (connect, read) seconds of the sync's clients in the slow-Tigerpaw tests.
SHORT_TIMEOUT = (2.0, 0.4)
#: Emulator latency well beyond SHORT_TIMEOUT's read timeout.
SLOW_MS = 900


def assert_exact(world: SyncWorld) -> None:
    """Tigerpaw holds exactly the expected orders and charges; nothing waits."""
    orders = world.our_orders()
    assert open_titles(orders) == world.expected_orders()
    references = [o["reference"] for o in orders]
    assert len(references) == len(set(references))
    expected = world.expected_charges()
    charges = world.charges()
    assert kaspersky_charges({a: charges[a] for a in expected}) == expected
    assert world.store.pending_count() == 0
    tenants = world.store.list_tenants(world.integration_id)
    assert [t.last_error for t in tenants] == [None] * len(tenants)


def tenant_errors(world: SyncWorld) -> list[str]:
    """The error each tenant of the integration shows on the page ("" for none)."""
    return [t.last_error or "" for t in world.store.list_tenants(world.integration_id)]


def nothing_consumed(world: SyncWorld) -> None:
    """No tenant's event cursor moved and no service order reached Tigerpaw."""
    tenants = world.store.list_tenants(world.integration_id)
    assert all(world.store.get_cursor(t.id, "events") is None for t in tenants)
    assert world.our_orders() == []


@pytest.fixture
def kbh_world(tmp_path: Path) -> Iterator[SyncWorld]:
    """A Business Hub integration of 5 companies, set up and approved."""
    made = SyncWorld(tmp_path)
    made.set_up()
    yield made
    made.close()


@pytest.fixture
def ksc_world(tmp_path: Path) -> Iterator[SyncWorld]:
    """A KSC integration of 5 virtual servers, set up and approved."""
    made = SyncWorld(tmp_path, source="ksc")
    made.set_up()
    yield made
    made.close()


def use_proxy(world: SyncWorld, password: str) -> None:
    """Route the KSC integration through the sandbox proxy with this password."""
    proxy = world.description["proxy"]
    integration = world.store.get_integration(world.integration_id)
    assert integration is not None
    world.store.update_integration(
        integration.id,
        dataclasses.replace(
            integration.settings,
            proxy_address=proxy["url"].removeprefix("http://"),
            proxy_user=proxy["user"],
        ),
    )
    world.secrets.set(secret_name(integration.id, "proxy_password"), password)


# Tigerpaw slow.


def test_tigerpaw_slower_than_the_timeout_fails_clearly_then_catches_up(
    kbh_world: SyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Tigerpaw answer later than the timeout: a clear error, nothing lost."""
    world = kbh_world
    monkeypatch.setattr(connections, "SYNC_TIMEOUT", SHORT_TIMEOUT)
    world.tigerpaw_faults(latency_ms=SLOW_MS)

    code, out = world.sync(settle=0)

    assert code == 1
    assert "FAILED" in out
    errors = tenant_errors(world)
    assert all("Tigerpaw" in e and "answer" in e.lower() for e in errors), errors
    nothing_consumed(world)

    world.tigerpaw_faults(reset=True)
    code, out = world.sync()

    assert code == 0, out
    assert_exact(world)


def test_order_creates_answered_too_late_are_not_made_twice(
    kbh_world: SyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creates that reach Tigerpaw but whose answers come too late: no duplicate."""
    world = kbh_world
    monkeypatch.setattr(connections, "SYNC_TIMEOUT", SHORT_TIMEOUT)
    # Reads are quick; each service order call is done but answered too late.
    world.tigerpaw_faults(latency_ms=SLOW_MS, path_prefix="/api/ServiceOrders")

    code, out = world.sync(settle=0)

    assert code == 1, out
    assert any("Tigerpaw" in e for e in tenant_errors(world)), tenant_errors(world)
    assert world.store.pending_count() > 0
    # The orders were made in Tigerpaw although the agent heard nothing back.
    landed = len(world.state()["service_orders"])

    world.tigerpaw_faults(reset=True)
    code, out = world.sync()

    assert code == 0, out
    assert landed > 0
    assert_exact(world)


# KSC sessions, outage and proxy.


def expire_on_calls(world: SyncWorld, calls: set[int]) -> list[int]:
    """End every KSC session just before the numbered Open API calls are served;
    returns the list of call numbers at which sessions were ended."""
    ksc = world.sandbox.ksc
    assert ksc is not None
    handle = ksc.handle
    counter = iter(range(1, 1 << 30))
    lock = threading.Lock()
    expired: list[int] = []

    def handle_and_expire(request: Request) -> Response:
        """Serve the call, ending every session first when its number is due."""
        with lock:
            number = next(counter)
        if number in calls:
            ksc.expire_sessions()
            expired.append(number)
        return handle(request)

    ksc.handle = handle_and_expire  # type: ignore[method-assign]
    return expired


def test_ksc_session_ending_during_a_sync_is_survived(ksc_world: SyncWorld) -> None:
    """KSC ends every session mid-sync (as a restart of its service does): the
    sync logs in again and ends exact, with no error on any tenant."""
    world = ksc_world
    # A cycle of five servers makes about 150 calls to KSC.
    expired = expire_on_calls(world, {60})

    code, out = world.sync()

    assert code == 0, out
    assert expired == [60]
    assert_exact(world)


def test_ksc_sessions_ending_again_and_again_lose_nothing(
    ksc_world: SyncWorld,
) -> None:
    """Sessions ended every few calls: whatever fails says so and loses nothing;
    the next cycle, with KSC calm again, ends exact."""
    world = ksc_world
    expired = expire_on_calls(world, set(range(5, 150, 12)))

    code, out = world.sync()

    assert len(expired) >= 4, expired
    tenants = world.store.list_tenants(world.integration_id)
    failed = [t for t in tenants if t.last_error]
    assert all("KSC" in (t.last_error or "") for t in failed), out
    # A server that failed consumed no event.
    assert all(world.store.get_cursor(t.id, "events") is None for t in failed)

    # KSC calm again: the emulator's own handler, without the ends.
    del world.sandbox.ksc.handle  # type: ignore[union-attr]
    code, out = world.sync()

    assert code == 0, out
    assert_exact(world)


def test_ksc_down_for_a_cycle_then_back(ksc_world: SyncWorld) -> None:
    """KSC unreachable: every server fails naming KSC; nothing moves; then exact."""
    world = ksc_world
    ksc = world.sandbox.ksc
    assert ksc is not None
    ksc.faults.down = True

    code, out = world.sync(settle=0)

    assert code == 1
    errors = tenant_errors(world)
    assert all("KSC" in e or "Kaspersky Security Center" in e for e in errors), errors
    nothing_consumed(world)
    assert world.charges() and all(
        not kaspersky_charges({a: c})[a] for a, c in world.charges().items()
    )

    ksc.faults.down = False
    code, out = world.sync()

    assert code == 0, out
    assert_exact(world)


def test_proxy_password_changed_on_the_proxy(ksc_world: SyncWorld) -> None:
    """The proxy's password changes after setup: a clear proxy error, then exact
    once the proxy takes the saved password again."""
    world = ksc_world
    proxy = world.sandbox.proxy
    assert proxy is not None
    use_proxy(world, proxy.password)
    old_password = proxy.password
    proxy.password = "Changed-By-The-Network-Team-1!"

    code, out = world.sync(settle=0)

    assert code == 1
    errors = tenant_errors(world)
    assert all("proxy" in e.lower() and "password" in e.lower() for e in errors), errors
    nothing_consumed(world)
    assert proxy.state()["refused_auth"] > 0

    proxy.password = old_password
    code, out = world.sync()

    assert code == 0, out
    assert_exact(world)
    assert proxy.state()["tunnels_opened"] > 0


def test_proxy_password_wrong_in_the_secret_store(ksc_world: SyncWorld) -> None:
    """A wrong saved proxy password: a clear proxy error until it is entered again."""
    world = ksc_world
    proxy = world.sandbox.proxy
    assert proxy is not None
    use_proxy(world, "Not-The-Proxy-Password-1!")

    code, out = world.sync(settle=0)

    assert code == 1
    errors = tenant_errors(world)
    assert all("proxy" in e.lower() and "password" in e.lower() for e in errors), errors
    nothing_consumed(world)

    world.secrets.set(
        secret_name(world.integration_id, "proxy_password"), proxy.password
    )
    code, out = world.sync()

    assert code == 0, out
    assert_exact(world)
