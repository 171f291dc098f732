"""``integration-agent sync-once``: one full cycle of each integration, then exit."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from agent.config import Settings
from agent.connections import connect
from agent.errors import AgentError
from agent.secrets import SecretStore
from agent.sources.kbh import ServerTable
from agent.store import Integration, Store
from agent.store.db import utcnow
from agent.sync.cycle import CycleOptions, CycleResult, IntegrationCycle
from agent.sync.licenses import CATEGORY_LABELS
from agent.sync.limits import ApiLimits
from agent.sync.outbox import RetryPolicy
from agent.sync.tenant_sync import TenantOutcome
from agent.wording import plural

logger = logging.getLogger(__name__)

#: How long a one-off run waits for writes that come due again (Retry-After, 5xx).
SETTLE_SECONDS = 30.0


def run_sync_once(
    store: Store,
    secrets: SecretStore,
    settings: Settings | Callable[[], Settings],
    integration_name: str | None = None,
    dry_run: bool = False,
    out: TextIO = sys.stdout,
    *,
    kbh_table: ServerTable | None = None,
    policy: RetryPolicy | None = None,
    settle: float = SETTLE_SECONDS,
    stop: threading.Event | None = None,
) -> int:
    """Run one cycle (billing and service orders) of each integration, or the one
    named; print what happened. Returns 0 when everything synced, 1 when something
    failed (or nothing is set up), 2 when no integration has that name."""
    provider = settings if callable(settings) else (lambda: settings)
    if integration_name:
        found = store.find_integration(integration_name)
        if found is None:
            names = ", ".join(i.name for i in store.list_integrations()) or "none"
            print(
                f"No integration is named {integration_name!r} (integrations: {names})",
                file=out,
            )
            return 2
        integrations = [found]
    else:
        integrations = store.list_integrations()
    if not integrations:
        print(
            "No integration is set up yet: open the setup page and create one", file=out
        )
        return 1

    options = CycleOptions(dry_run=dry_run, settle=0.0 if dry_run else settle)
    limits = ApiLimits()
    ok = True
    for integration in integrations:
        result = _run_one(
            store,
            secrets,
            provider,
            integration,
            options,
            limits,
            policy,
            kbh_table,
            stop,
        )
        print_result(result, out)
        ok = ok and result.ok
    return 0 if ok else 1


def _run_one(
    store: Store,
    secrets: SecretStore,
    settings: Callable[[], Settings],
    integration: Integration,
    options: CycleOptions,
    limits: ApiLimits,
    policy: RetryPolicy | None,
    kbh_table: ServerTable | None,
    stop: threading.Event | None,
) -> CycleResult:
    """One integration's cycle; a failure to build its clients is its error."""
    stop = stop or threading.Event()
    try:
        connections = connect(
            integration, secrets, settings, stop=stop, kbh_table=kbh_table
        )
    except AgentError as err:
        failed = CycleResult(integration.id, integration.name, options, utcnow())
        failed.error = str(err)
        return failed
    try:
        cycle = IntegrationCycle(
            store, integration, connections, limits=limits, policy=policy, stop=stop
        )
        return cycle.run(options)
    finally:
        connections.close()


def print_result(result: CycleResult, out: TextIO) -> None:
    """What a cycle did, for a person at a terminal."""
    dry = result.options.dry_run
    print(f"{result.integration_name}{' (dry run)' if dry else ''}:", file=out)
    if result.error is not None:
        print(f"  FAILED: {result.error}", file=out)
    if result.setup is not None:
        for problem in result.setup.problems:
            print(f"  Service orders are off until this is fixed: {problem}", file=out)
        for missing in result.setup.missing_fields:
            print(f"  Would create the {missing}", file=out)
    for tenant in result.tenants:
        print(f"  {tenant_line(tenant)}", file=out)
        if dry or tenant.waiting_approval:
            for line in tenant.charges:
                before = "none" if line.before is None else line.before
                print(
                    f"      {line.label} ({line.item_id}): {before} -> {line.after}",
                    file=out,
                )
        for product, category, count in tenant.unmapped:
            print(
                f"      Not billed (no price book item chosen): {count} "
                f"{CATEGORY_LABELS.get(category, category)} of {product}",
                file=out,
            )
        if dry:
            for write in tenant.writes:
                print(f"      Would: {write.describe()}", file=out)
    if not dry:
        print(
            f"  Writes: {result.sent} sent, "
            f"{plural(result.failed, 'failed attempt')}, "
            f"{result.pending} waiting",
            file=out,
        )


def tenant_line(tenant: TenantOutcome) -> str:
    """One tenant's result in a line."""
    name = f"{tenant.name} -> {tenant.account}" if tenant.account else tenant.name
    if tenant.skipped and tenant.ok:
        return f"{name}: skipped ({tenant.skipped})"
    if not tenant.ok:
        return f"{name}: FAILED: {tenant.error}"
    notes = [f"{plural(len(tenant.writes), 'write')} planned"]
    if tenant.events_read:
        notes.append(f"{plural(tenant.events_read, 'new event')}")
    if tenant.waiting_approval:
        notes.append("billing waits for the preview to be approved on the page")
    return f"{name}: OK, {', '.join(notes)}"
