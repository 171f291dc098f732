"""The Scheduler: one thread that starts cycles when they are due, on a small pool.

- Service orders every ``ServiceOrderSyncMinutes``, billing daily at
  ``LicenseSyncTime`` (both read from the settings at every decision, so a changed
  config applies at once); ``sync_now`` runs both at once.
- One cycle at a time per integration; at most ``max_cycles`` integrations at once;
  calls to each remote API bounded by ``per_api`` (shared :class:`ApiLimits`).
- Pause keeps new cycles from starting (a running one finishes; Sync now still
  runs); Resume lets them start again.
- Stop sets the stop event every client and drain waits on: a drain stops between
  writes, and a write already sent is marked in the outbox or found by its key
  after the next start.
- The thread sleeps until the next cycle is due or something wakes it (never longer
  than a minute, so new integrations are picked up without a call).
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Any

from agent.config import Settings
from agent.connections import connect
from agent.errors import AgentError
from agent.secrets import SecretStore
from agent.sources.kbh import ServerTable
from agent.store import Store
from agent.store.db import utcnow
from agent.sync.bootstrap import SetupCache
from agent.sync.cycle import CycleOptions, CycleResult, CycleSummary, IntegrationCycle
from agent.sync.health import Notify, Reachability, TenantHealth
from agent.sync.limits import DEFAULT_PER_API, ApiLimits, trim_heap, tune_heap
from agent.sync.outbox import RetryPolicy
from agent.sync.timing import iso, next_licenses_run, next_orders_run
from agent.transport import describe_address

logger = logging.getLogger(__name__)

ORDERS, LICENSES = "orders", "licenses"
#: The longest the scheduler sleeps without looking at the store again.
MAX_SLEEP = 60.0
DEFAULT_MAX_CYCLES = 2
#: Minutes between service order cycles while an integration's Tigerpaw is down.
OUTAGE_RETRY_MINUTES = 1


@dataclass
class IntegrationState:
    """What the scheduler knows of one integration between cycles."""

    id: str
    name: str
    reachability: Reachability
    running: bool = False
    requested: set[str] = field(default_factory=set)
    last_run: dt.datetime | None = None
    last_orders_start: dt.datetime | None = None
    last_licenses_start: dt.datetime | None = None
    last_result: CycleSummary | None = None
    future: Future[Any] | None = None
    #: Cycles finished since the scheduler started.
    runs: int = 0


def orders_minutes(state: IntegrationState, settings: Settings) -> int:
    """Minutes between service order cycles: the config's, or fewer while the
    integration's Tigerpaw does not answer, so that the writes waiting for it go out
    (and the page, tray and status clear) soon after it is back."""
    minutes = settings.service_order_sync_minutes
    if state.reachability.down:
        return min(minutes, OUTAGE_RETRY_MINUTES)
    return minutes


class Scheduler:
    """Runs every integration's cycles on time (see the module)."""

    def __init__(
        self,
        store: Store,
        secrets: SecretStore,
        settings_provider: Callable[[], Settings],
        *,
        per_api: int = DEFAULT_PER_API,
        max_cycles: int = DEFAULT_MAX_CYCLES,
        policy: RetryPolicy | None = None,
        notify: Notify | None = None,
        kbh_table: ServerTable | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        """Schedule the store's integrations; ``notify`` tells people of failures."""
        self.store = store
        self.secrets = secrets
        self.settings_provider = settings_provider
        self.limits = ApiLimits(per_api)
        self.policy = policy or RetryPolicy()
        self.kbh_table = kbh_table
        self.clock = clock
        #: What each integration's bootstrap found, used again by its next cycles.
        self.setups = SetupCache()
        self.tenant_health = TenantHealth(notify)
        # An integration is back when its cycles run again; its tenants each say
        # for themselves whether they sync.
        self.integration_health = TenantHealth(notify, back="Sync of %s runs again")
        self._max_cycles = max(1, max_cycles)
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._woken = False
        self._paused = False
        self._states: dict[str, IntegrationState] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._started_at = clock()

    # Control.

    def start(self) -> None:
        """Start the scheduler thread (the first service order cycle starts now)."""
        if self._thread is not None:
            return
        self._started_at = self.clock()
        tune_heap()
        self._pool = ThreadPoolExecutor(self._max_cycles, thread_name_prefix="sync")
        self._thread = threading.Thread(
            target=self._loop, name="sync-scheduler", daemon=True
        )
        self._thread.start()
        logger.info("Sync scheduler started")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop starting cycles and wait for running ones; True if all stopped."""
        self._stop.set()
        self.wake()
        deadline = self.clock() + dt.timedelta(seconds=timeout)
        if self._thread is not None:
            self._thread.join(max(0.0, timeout))

        with self._lock:
            running = {s.name: s.future for s in self._states.values() if s.future}
        pending = [f for f in running.values() if f is not None and not f.done()]
        if pending:
            left = max(0.0, (deadline - self.clock()).total_seconds())
            wait_for(pending, timeout=left)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

        stuck = [name for name, f in running.items() if f is not None and not f.done()]
        if self._thread is not None and self._thread.is_alive():
            stuck.append("scheduler")
        if stuck:
            logger.warning(
                "Sync did not stop within %.0f s: %s (writes in flight are kept in "
                "the outbox and checked at the next start)",
                timeout,
                ", ".join(stuck),
            )
            return False
        logger.info("Sync scheduler stopped")
        return True

    def sync_now(self, integration_id: str | None = None) -> None:
        """Run billing and service orders now (for one integration, or all)."""
        self._refresh_states()
        with self._lock:
            chosen = [
                state
                for state in self._states.values()
                if integration_id is None or state.id == integration_id
            ]
            for state in chosen:
                state.requested |= {ORDERS, LICENSES}
        # A person asked now: writes waiting for a later retry (after an account was
        # fixed in Tigerpaw, say) are tried in this cycle too.
        for state in chosen:
            self.store.retry_waiting(state.id)
            self.setups.forget(state.id)
        logger.info("Sync now asked for %s", integration_id or "every integration")
        self.wake()

    def pause(self) -> None:
        """Start no more scheduled cycles until resumed."""
        with self._lock:
            self._paused = True
        logger.info("Sync paused")

    def resume(self) -> None:
        """Start scheduled cycles again."""
        with self._lock:
            self._paused = False
        logger.info("Sync resumed")
        self.wake()

    def wake(self) -> None:
        """Look at the schedule now (settings or integrations changed)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def settings_changed(self, old: Settings, new: Settings) -> None:
        """A ConfigManager subscriber: new timings apply from the next decision."""
        if (
            old.service_order_sync_minutes != new.service_order_sync_minutes
            or old.license_sync_time != new.license_sync_time
        ):
            self.wake()

    # The loop.

    def _loop(self) -> None:
        """Start due cycles, then sleep until the next is due or a wake."""
        while not self._stop.is_set():
            try:
                sleep = self._start_due()
            except Exception:
                logger.exception("The sync scheduler failed; it tries again shortly")
                sleep = MAX_SLEEP
            with self._cond:
                if not self._woken and not self._stop.is_set():
                    self._cond.wait(max(0.05, min(sleep, MAX_SLEEP)))
                self._woken = False

    def _refresh_states(self) -> list[IntegrationState]:
        """Follow the store: new integrations get a state, deleted ones lose it."""
        integrations = self.store.list_integrations()
        with self._lock:
            known = {}
            for integration in integrations:
                state = self._states.get(integration.id)
                if state is None:
                    label = f"Tigerpaw ({integration.name})"
                    state = IntegrationState(
                        integration.id,
                        integration.name,
                        Reachability(label, "Tigerpaw"),
                    )
                state.name = integration.name
                url = integration.tigerpaw_url
                state.reachability.address = describe_address(url) if url else ""
                known[integration.id] = state
            for gone in set(self._states) - set(known):
                if self._states[gone].running:
                    known[gone] = self._states[gone]
            self._states = known
            return list(known.values())

    def _due(self, state: IntegrationState, now: dt.datetime) -> set[str]:
        """The kinds of cycle due for an integration now."""
        settings = self.settings_provider()
        kinds = set(state.requested)
        if not self._paused:
            orders_at = next_orders_run(
                state.last_orders_start,
                orders_minutes(state, settings),
                self._started_at,
            )
            licenses_at = next_licenses_run(
                state.last_licenses_start,
                settings.license_sync_time,
                self._started_at,
            )
            if now >= orders_at:
                kinds.add(ORDERS)
            if now >= licenses_at:
                kinds.add(LICENSES)
        return kinds

    def _start_due(self) -> float:
        """Start every due cycle; the seconds until the next one is due."""
        states = self._refresh_states()
        now = self.clock()
        for state in states:
            with self._lock:
                if state.running or self._stop.is_set():
                    continue
                kinds = self._due(state, now)
                if not kinds:
                    continue
                state.requested.clear()
                state.running = True
                assert self._pool is not None
                state.future = self._pool.submit(self._run, state, kinds)
        return self._seconds_to_next()

    def _seconds_to_next(self) -> float:
        """Seconds until the earliest next cycle of an idle integration."""
        nexts = [
            moment
            for info in self._schedule().values()
            if not info["running"]
            for moment in (info["next_orders"], info["next_licenses"])
            if moment is not None
        ]
        if not nexts:
            return MAX_SLEEP
        return max(0.0, (min(nexts) - self.clock()).total_seconds())

    def _schedule(self) -> dict[str, dict[str, Any]]:
        """Per integration: running, and when each kind of cycle is next due."""
        settings = self.settings_provider()
        with self._lock:
            paused = self._paused
            return {
                s.id: {
                    "running": s.running,
                    "next_orders": None
                    if paused
                    else next_orders_run(
                        s.last_orders_start,
                        orders_minutes(s, settings),
                        self._started_at,
                    ),
                    "next_licenses": None
                    if paused
                    else next_licenses_run(
                        s.last_licenses_start,
                        settings.license_sync_time,
                        self._started_at,
                    ),
                }
                for s in self._states.values()
            }

    def _run(self, state: IntegrationState, kinds: set[str]) -> None:
        """One cycle of one integration on a pool thread."""
        started = self.clock()
        options = CycleOptions(licenses=LICENSES in kinds, orders=ORDERS in kinds)
        try:
            result = self._cycle(state, options)
        except Exception as err:
            # The top of a worker: log the bug whole, keep the scheduler going.
            logger.exception("Sync of %s failed unexpectedly", state.name)
            result = CycleResult(state.id, state.name, options, started)
            result.error = f"Unexpected error ({type(err).__name__}): {err}"

        self._note_health(state, result)
        summary = CycleSummary.of(result)
        del result
        # Before the cycle counts as finished, so a cycle asked for meanwhile (Sync
        # now) starts the moment this one is marked done.
        self._release_memory()
        with self._lock:
            state.running = False
            state.future = None
            state.last_run = started
            state.last_result = summary
            state.runs += 1
            if ORDERS in kinds:
                state.last_orders_start = started
            if LICENSES in kinds:
                state.last_licenses_start = started
        self.wake()

    def _release_memory(self) -> None:
        """Hand back what the cycle used: the database connections of its threads
        (each holds a page cache) and the heap it freed, so an idle agent is small."""
        try:
            self.store.release_idle()
        except AgentError as err:
            logger.debug("Could not close idle database connections: %s", err)
        gc.collect()
        trim_heap()

    def _cycle(self, state: IntegrationState, options: CycleOptions) -> CycleResult:
        """Build the integration's clients and run one cycle with them."""
        integration = self.store.get_integration(state.id)
        if integration is None:
            return CycleResult(state.id, state.name, options, self.clock())
        try:
            connections = connect(
                integration,
                self.secrets,
                self.settings_provider,
                stop=self._stop,
                kbh_table=self.kbh_table,
            )
        except AgentError as err:
            failed = CycleResult(state.id, state.name, options, self.clock())
            failed.error = str(err)
            return failed
        try:
            cycle = IntegrationCycle(
                self.store,
                integration,
                connections,
                limits=self.limits,
                policy=self.policy,
                stop=self._stop,
                reachability=state.reachability,
                clock=self.clock,
                setups=self.setups,
            )
            return cycle.run(options)
        finally:
            connections.close()

    def _note_health(self, state: IntegrationState, result: CycleResult) -> None:
        """Count failures per integration and tenant (notify once per failing run)."""
        if result.error is not None:
            self.integration_health.failed(state.id, state.name, result.error)
            return
        self.integration_health.succeeded(state.id, state.name)
        for outcome in result.tenants:
            # Only a tenant that failed before has a count to reset; keeping none
            # for the others keeps an idle agent small.
            known = self.tenant_health.state(outcome.tenant_id) is not None
            if not outcome.ok:
                self.tenant_health.failed(
                    outcome.tenant_id, outcome.name, outcome.error or ""
                )
            elif outcome.skipped is None and known:
                self.tenant_health.succeeded(outcome.tenant_id, outcome.name)

    # Status.

    def status(self) -> dict[str, Any]:
        """The "sync" part of /api/status, with each integration and tenant."""
        self._refresh_states()
        schedule = self._schedule()
        with self._lock:
            paused = self._paused
            states = list(self._states.values())
        integrations = [self._integration_status(s, schedule.get(s.id)) for s in states]

        if paused:
            overall = "paused"
        elif any(i["state"] == "running" for i in integrations):
            overall = "running"
        elif any(i["state"] == "failing" for i in integrations):
            overall = "failing"
        else:
            overall = "idle"
        runs = [s.last_run for s in states if s.last_run is not None]
        nexts = [
            moment
            for info in schedule.values()
            for moment in (info["next_orders"], info["next_licenses"])
            if moment is not None
        ]
        return {
            "state": overall,
            "paused": paused,
            "last_run": iso(max(runs)) if runs else None,
            "next_run": iso(min(nexts)) if nexts else None,
            "integrations": integrations,
        }

    def _integration_status(
        self, state: IntegrationState, schedule: dict[str, Any] | None
    ) -> dict[str, Any]:
        """One integration's sync status, with its tenants."""
        result = state.last_result
        health = self.integration_health.state(state.id)
        tenants = []
        for outcome in result.tenants if result else []:
            tenant_health = self.tenant_health.state(outcome.tenant_id)
            failing = bool(tenant_health and tenant_health.failing)
            if failing:
                tenant_state = "failing"
            elif not outcome.ok:
                tenant_state = "error"
            elif outcome.waiting_approval:
                tenant_state = "waiting_approval"
            else:
                tenant_state = "ok"
            tenants.append(
                {
                    "id": outcome.tenant_id,
                    "name": outcome.name,
                    "state": tenant_state,
                    "error": outcome.error,
                    "failures": tenant_health.failures if tenant_health else 0,
                }
            )

        if state.running:
            current = "running"
        elif (health and health.failing) or any(
            t["state"] == "failing" for t in tenants
        ):
            current = "failing"
        else:
            current = "idle"
        schedule = schedule or {}
        return {
            "id": state.id,
            "name": state.name,
            "state": current,
            "last_run": iso(state.last_run),
            "runs": state.runs,
            "next_run": iso(schedule.get("next_orders")),
            "next_license_run": iso(schedule.get("next_licenses")),
            "error": result.error if result else None,
            "orders_opened": result.orders_opened if result else 0,
            "pending_writes": self.store.pending_count(state.id),
            "unreachable": [
                outage
                for outage in (state.reachability.outage(),)
                if outage is not None
            ],
            "tenants": tenants,
        }
