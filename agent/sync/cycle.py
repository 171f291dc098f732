"""One cycle of one integration: recover, bootstrap, plan every tenant, send.

The order matters for crash safety:

1. Send what earlier cycles left in the outbox (a crash, an outage), so that plans
   are made against a Tigerpaw that already holds those writes.
2. Find (or create) what the integration needs in Tigerpaw (or take what an earlier
   cycle found, see :class:`agent.sync.bootstrap.SetupCache`).
3. Read, plan and queue each tenant (bounded concurrency per remote API); one
   tenant's failure is recorded on that tenant and the others go on.
4. Send the new writes: the drain starts with step 3 and sends each tenant's writes
   as soon as they are queued, so Tigerpaw is written while the console is read.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.errors import AgentError, ConnectError, ServerError, StoreError
from agent.store import Integration, Store, SyncChoices, Tenant
from agent.store.db import utcnow
from agent.sync import writes
from agent.sync.bootstrap import SetupCache, TigerpawSetup, bootstrap
from agent.sync.health import Reachability
from agent.sync.limits import ApiLimits
from agent.sync.outbox import DrainResult, OutboxWorker, RetryPolicy, WriteFeed
from agent.sync.tenant_sync import SyncContext, TenantOutcome, sync_tenant
from agent.wording import plural

if TYPE_CHECKING:
    from agent.connections import Connections

logger = logging.getLogger(__name__)

#: Tenants read at once, per slot of the console's limit: while some wait for the
#: console, others plan and save, so the console's slots stay busy.
TENANTS_PER_SLOT = 2


@dataclass(frozen=True)
class CycleOptions:
    """What a cycle does: billing, service orders, or both; for real or dry."""

    licenses: bool = True
    orders: bool = True
    dry_run: bool = False
    #: Only these tenants (local ids); None for every mapped tenant.
    tenant_ids: frozenset[int] | None = None
    #: Seconds the last drain waits for writes coming due (a one-off run).
    settle: float = 0.0
    #: Count every mapped tenant with an agreement, billing on or off (a preview;
    #: honoured in dry runs only).
    bill_all: bool = False


@dataclass
class CycleResult:
    """What a cycle did, for the scheduler, the status API and ``sync-once``."""

    integration_id: str
    integration_name: str
    options: CycleOptions
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    error: str | None = None
    tenants: list[TenantOutcome] = field(default_factory=list)
    setup: TigerpawSetup | None = None
    sent: int = 0
    failed: int = 0
    #: Service orders the cycle's writes opened in Tigerpaw (sent, not planned).
    opened: int = 0
    pending: int = 0
    stopped: bool = False

    @property
    def ok(self) -> bool:
        """Whether the integration and every tenant synced without an error."""
        return self.error is None and all(t.ok for t in self.tenants)

    @property
    def orders_opened(self) -> int:
        """Service orders the cycle opened in Tigerpaw (the tray's "large batch"
        notice); for a dry run, those it would open."""
        if self.options.dry_run:
            return sum(1 for write in self.planned if write.kind == writes.ORDER_OPEN)
        return self.opened

    @property
    def planned(self) -> list[writes.Write]:
        """Every write the cycle planned (for a dry run, what it would write)."""
        return [write for tenant in self.tenants for write in tenant.writes]


@dataclass(frozen=True)
class TenantSummary:
    """What the status shows of one tenant's part of the last cycle."""

    tenant_id: int
    name: str
    ok: bool
    error: str | None
    waiting_approval: bool


@dataclass(frozen=True)
class CycleSummary:
    """What the status needs of the last cycle; the full result (every planned
    write) is let go when the cycle ends, so an idle agent holds little.

    The tenants are packed into one JSON document: thousands of small objects made
    as a cycle ends would land in the memory the cycle just freed and keep it from
    going back to the system.
    """

    error: str | None
    orders_opened: int
    packed: bytes

    @classmethod
    def of(cls, result: CycleResult) -> CycleSummary:
        """The summary of a finished cycle."""
        rows = [
            [t.tenant_id, t.name, t.ok, t.error, t.waiting_approval]
            for t in result.tenants
        ]
        return cls(
            error=result.error,
            orders_opened=result.orders_opened,
            packed=json.dumps(rows, separators=(",", ":")).encode(),
        )

    @property
    def tenants(self) -> list[TenantSummary]:
        """Each tenant's part of the cycle."""
        return [TenantSummary(*row) for row in json.loads(self.packed)]


class TenantWorkers:
    """A few threads that sync the chosen tenants, each taking the next one when
    done; ``feed`` hears of each tenant's queued writes and is closed when the
    last thread ends.

    Threads pulling from one list, rather than a pool holding a future per
    tenant, keep a cycle over thousands of tenants light.
    """

    def __init__(
        self,
        sync: Callable[[Tenant], TenantOutcome],
        tenants: list[Tenant],
        workers: int,
        feed: WriteFeed | None,
    ) -> None:
        """Sync ``tenants`` with ``sync`` on up to ``workers`` threads."""
        self._sync = sync
        self._next = iter(enumerate(tenants))
        self._outcomes: list[TenantOutcome | None] = [None] * len(tenants)
        self._feed = feed
        self._lock = threading.Lock()
        count = max(1, min(workers, len(tenants)))
        self._running = count
        self._threads = [
            threading.Thread(target=self._work, name=f"sync-tenant-{n}", daemon=True)
            for n in range(count)
        ]

    def start(self) -> TenantWorkers:
        """Start the threads."""
        for thread in self._threads:
            thread.start()
        return self

    def join(self) -> list[TenantOutcome]:
        """Wait for every tenant; their outcomes in the order given."""
        for thread in self._threads:
            thread.join()
        return [outcome for outcome in self._outcomes if outcome is not None]

    def _work(self) -> None:
        """Sync tenants until none is left."""
        try:
            while True:
                with self._lock:
                    found = next(self._next, None)
                if found is None:
                    return
                index, tenant = found
                self._outcomes[index] = self._sync(tenant)
                if self._feed is not None:
                    self._feed.queued()
        finally:
            with self._lock:
                self._running -= 1
                last = self._running == 0
            if last and self._feed is not None:
                self._feed.close()


class IntegrationCycle:
    """Runs cycles of one integration with clients built for it."""

    def __init__(
        self,
        store: Store,
        integration: Integration,
        connections: Connections,
        *,
        limits: ApiLimits | None = None,
        policy: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        reachability: Reachability | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        setups: SetupCache | None = None,
    ) -> None:
        """Cycles over ``connections``, which the caller closes; ``setups`` keeps
        what the bootstrap found for the next cycles."""
        self.store = store
        self.setups = setups
        self.integration = integration
        self.connections = connections
        self.limits = limits or ApiLimits()
        self.policy = policy or RetryPolicy()
        self.stop = stop or threading.Event()
        self.reachability = reachability or Reachability(
            f"Tigerpaw at {connections.tigerpaw.api_url}"
        )
        self.clock = clock

    def run(self, options: CycleOptions = CycleOptions()) -> CycleResult:
        """One cycle (see the module); errors end up in the result, never raised."""
        integration = self.integration
        result = CycleResult(integration.id, integration.name, options, self.clock())
        worker = OutboxWorker(
            self.store,
            self.connections.tigerpaw,
            integration.id,
            policy=self.policy,
            stop=self.stop,
            limits=self.limits,
            reachability=self.reachability,
            clock=self.clock,
        )
        try:
            if not options.dry_run:
                self._count(result, self._drained(worker.drain()))
            choices = self.store.get_sync_choices(integration.id)
            result.setup = self._bootstrap(worker, choices, options)
        except AgentError as err:
            if isinstance(err, ConnectError | ServerError):
                self.reachability.failed(err)
            return self._failed(result, err)

        context = SyncContext(
            store=self.store,
            integration_id=integration.id,
            source=self.connections.source,
            source_api=self.connections.source_api,
            source_label=self.connections.source_label,
            tigerpaw=self.connections.tigerpaw,
            choices=choices,
            setup=result.setup,
            limits=self.limits,
            clock=self.clock,
            licenses=options.licenses,
            orders=options.orders,
            dry_run=options.dry_run,
            bill_all=options.bill_all and options.dry_run,
        )
        if options.dry_run:
            result.tenants = self._tenants(context, options, None)
        else:
            self._sync_and_send(context, options, worker, result)
        result.pending = self.store.pending_count(integration.id)
        result.stopped = self.stop.is_set()
        result.finished_at = self.clock()
        self._log(result)
        return result

    def _bootstrap(
        self, worker: OutboxWorker, choices: SyncChoices, options: CycleOptions
    ) -> TigerpawSetup:
        """What the integration needs in Tigerpaw: found by an earlier cycle with
        the same settings and choices, or looked up (and created) now."""
        fingerprint = (self.integration.settings, choices)
        cached = None
        if self.setups is not None and not options.dry_run:
            cached = self.setups.get(self.integration.id, fingerprint, options.orders)
        if cached is not None:
            return cached

        with self.limits.hold(worker.api):
            setup = bootstrap(
                self.connections.tigerpaw,
                choices,
                ensure_field=None if options.dry_run else self._ensurer(worker),
                orders=options.orders,
            )
        self.reachability.answered()
        if self.setups is not None and not options.dry_run:
            self.setups.put(self.integration.id, fingerprint, options.orders, setup)
        return setup

    def _sync_and_send(
        self,
        context: SyncContext,
        options: CycleOptions,
        worker: OutboxWorker,
        result: CycleResult,
    ) -> None:
        """Sync the tenants while the drain sends what each one queues."""
        feed = WriteFeed()
        drained = None
        tenants = self._tenant_workers(context, options, feed)
        try:
            drained = self._drained(worker.drain(settle=options.settle, feed=feed))
        except StoreError as err:
            self._store_failed(result, err)
        finally:
            result.tenants = tenants.join()
        if drained is None:
            return

        try:
            self._count(result, drained)
            self._record(result, drained)
        except StoreError as err:
            self._store_failed(result, err)

    def _store_failed(self, result: CycleResult, error: StoreError) -> None:
        """The file is locked or full: what was sent but not recorded is found by
        its key next cycle; this run stops and says why."""
        result.error = str(error)
        logger.warning("Sync of %s stopped: %s", result.integration_name, error)

    def _drained(self, drained: DrainResult) -> DrainResult:
        """A drain's result; a refused write makes the next bootstrap look again."""
        if drained.refused and self.setups is not None:
            self.setups.forget(self.integration.id)
        return drained

    def _ensurer(self, worker: OutboxWorker):
        """Bootstrap's way to create a field: through the outbox, sent at once."""

        def ensure(entity: str, category: str, label: str) -> None:
            """Queue the field's creation and send it now."""
            worker.send_now(writes.ensure_field_write(entity, category, label))

        return ensure

    def _chosen(self, options: CycleOptions) -> list[Tenant]:
        """The tenants this cycle syncs."""
        return [
            tenant
            for tenant in self.store.list_tenants(self.integration.id)
            if options.tenant_ids is None or tenant.id in options.tenant_ids
        ]

    def _tenants(
        self, context: SyncContext, options: CycleOptions, feed: WriteFeed | None
    ) -> list[TenantOutcome]:
        """Sync every chosen tenant, a few at a time; a stop skips the rest."""
        return self._tenant_workers(context, options, feed).join()

    def _tenant_workers(
        self, context: SyncContext, options: CycleOptions, feed: WriteFeed | None
    ) -> TenantWorkers:
        """Start syncing every chosen tenant on a few threads."""
        tenants = self._chosen(options)
        workers = self.limits.per_api * TENANTS_PER_SLOT
        return TenantWorkers(
            lambda tenant: self._one(context, tenant), tenants, workers, feed
        ).start()

    def _one(self, context: SyncContext, tenant: Tenant) -> TenantOutcome:
        """Sync one tenant; a stop skips it and a bug becomes its error."""
        if self.stop.is_set():
            return TenantOutcome(tenant.id, tenant.name, skipped="the agent stops")
        try:
            return sync_tenant(context, tenant)
        except Exception as err:
            # A bug in one tenant's data must not stop the others.
            logger.exception("Syncing %s failed unexpectedly", tenant.name)
            outcome = TenantOutcome(tenant.id, tenant.name)
            outcome.fail(f"Unexpected error ({type(err).__name__}): {err}")
            return outcome

    def _count(self, result: CycleResult, drained: DrainResult) -> None:
        """Add a drain's figures to the result."""
        result.sent += drained.sent
        result.failed += drained.failed
        result.opened += drained.opened

    def _record(self, result: CycleResult, drained: DrainResult) -> None:
        """Fold write failures into the tenants and save each tenant's result."""
        for outcome in result.tenants:
            failure = drained.errors.get(outcome.tenant_id)
            if outcome.ok and failure is not None:
                outcome.fail(failure)
            if outcome.skipped is not None and outcome.ok and not outcome.had_error:
                continue
            # A skipped tenant that showed an error (from a cycle that could not
            # start) has nothing wrong now: its error is cleared.
            self.store.note_tenant_result(outcome.tenant_id, error=outcome.error)

    def _failed(self, result: CycleResult, error: AgentError) -> CycleResult:
        """End a cycle that could not start: every mapped tenant shows why."""
        result.error = str(error)
        result.finished_at = self.clock()
        if not result.options.dry_run:
            try:
                for tenant in self.store.list_tenants(self.integration.id):
                    if tenant.mapping is not None:
                        self.store.note_tenant_result(tenant.id, error=result.error)
            except StoreError as err:
                # The run's own error still says why; the notes wait for a write.
                logger.warning("Could not note the failed sync: %s", err)
        result.pending = self.store.pending_count(self.integration.id)
        # An outage is logged once by Reachability; other causes need a person.
        outage = isinstance(error, ConnectError | ServerError)
        logger.log(
            logging.INFO if outage else logging.WARNING,
            "Sync of %s stopped: %s",
            self.integration.name,
            error,
        )
        return result

    def _log(self, result: CycleResult) -> None:
        """One line per cycle: what was done and what failed."""
        failed = [t for t in result.tenants if not t.ok]
        named = "; ".join(f"{t.name}: {t.error}" for t in failed[:3])
        logger.info(
            "Sync of %s%s: %s; writes to Tigerpaw: %d sent, %s, %d waiting; %s",
            self.integration.name,
            " (dry run)" if result.options.dry_run else "",
            plural(len(result.tenants), "tenant"),
            result.sent,
            plural(result.failed, "failed attempt"),
            result.pending,
            f"{plural(len(failed), 'tenant')} failed ({named})"
            if failed
            else "all tenants OK",
        )
