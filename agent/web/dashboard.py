"""What the dashboard shows per integration and tenant, gathered in a few queries."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.store import FAILED, HistoryEntry, Integration, Store, Tenant
from agent.store.records import TENANT_LABELS
from agent.sync.timing import iso
from agent.web.pages import counted, local_time, plural

if TYPE_CHECKING:
    from agent.app import Agent

logger = logging.getLogger(__name__)

#: How many recent history rows feed the "what it wrote" column.
HISTORY_WINDOW = 5000

#: What a kept change did, by the start of its target and its action (None: any),
#: as (one, many) words, in the order the dashboard lists them.
WRITE_KINDS: tuple[tuple[str, str | None, tuple[str, str]], ...] = (
    ("service order", "created", ("service order opened", "service orders opened")),
    (
        "service order",
        "note added",
        ("note added to an order", "notes added to orders"),
    ),
    ("service order", "closed", ("service order closed", "service orders closed")),
    ("service order", None, ("service order changed", "service orders changed")),
    ("note", None, ("note added to an order", "notes added to orders")),
    ("agreement", None, ("charge set", "charges set")),
    ("charge", None, ("charge set", "charges set")),
    ("account", None, ("company named on its account", "companies named on accounts")),
)
OTHER_WRITE = ("other change", "other changes")
#: Fields the agent makes once in Tigerpaw ("accounts custom field Kaspersky/...").
CUSTOM_FIELD = ("custom field created", "custom fields created")

#: The sync's states as people read them.
SYNC_STATE_WORDS = {
    "idle": "idle, waiting for the next run",
    "running": "running now",
    "paused": "paused: scheduled runs wait until you press Resume",
    "failing": "failing: see the errors below",
}

#: Tenants sharing one error from which it is said once, above their rows.
SHARED_AT = 3
#: How a 5xx answer's error begins; the outage line says the address once.
_SERVER_FAILED = re.compile(r"HTTP (5\d\d) from (\S+): (.*)", re.DOTALL)
#: The retry promise at the end of an error; the outage line makes its own.
_TRIES_AGAIN = re.compile(r"[.;]?\s*the agent tries again later\.?\s*$", re.I)


def write_kind(target: str, action: str) -> tuple[str, str]:
    """What a kept change did, in words (one, many): "service order opened"."""
    words = target.replace("_", " ").casefold()
    if " custom field " in words:
        return CUSTOM_FIELD
    for start, wanted, kind in WRITE_KINDS:
        if words.startswith(start) and wanted in (None, action):
            return kind
    return OTHER_WRITE


def sync_state_words(state: str | None) -> str:
    """The sync's state in words, or the state itself when it is a new one."""
    return SYNC_STATE_WORDS.get(state or "idle", str(state))


@dataclass
class TenantRow:
    """One tenant on the dashboard."""

    tenant: Tenant
    wrote: str = ""
    last_write_at: dt.datetime | None = None


@dataclass
class IntegrationRow:
    """One integration on the dashboard, with its tenants."""

    integration: Integration
    label: str
    tenants: list[TenantRow] = field(default_factory=list)
    mapped: int = 0
    failing: int = 0
    #: Writes Tigerpaw refused for now, waiting for their next try (or Sync now).
    waiting: int = 0
    waiting_error: str = ""
    next_try: dt.datetime | None = None

    def errors(self, status: Mapping[str, Any]) -> ErrorGroups:
        """The row's errors grouped, with its run from the agent's ``status``."""
        runs: list[dict[str, Any]] = (status.get("sync") or {}).get(
            "integrations"
        ) or []
        run = next((r for r in runs if r.get("id") == self.integration.id), {})
        errors = (item.tenant.last_error for item in self.tenants)
        return group_errors(run, errors, self.label)


@dataclass(frozen=True)
class Outage:
    """A remote system the integration cannot use now, as one sentence."""

    text: str
    #: It answers with server errors (rather than not at all).
    failing: bool


@dataclass
class ErrorGroups:
    """An integration's errors, each said once: the outages, errors many tenants
    share, and the short words of the rows whose error is said above them."""

    outages: list[Outage] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    short: dict[str, str] = field(default_factory=dict)
    #: The run's own error, unless an outage or a shared line says it already.
    run_error: str | None = None

    def cell(self, error: str | None) -> str:
        """What a tenant's row shows for its error."""
        if not error:
            return ""
        return self.short.get(error, error)


def outage_words(outage: Mapping[str, Any]) -> Outage:
    """ "Tigerpaw at host:port does not answer (since ...): why", or "is failing"
    when it answers with server errors (the status's ``failing``); the address and
    status said once."""
    system, address = outage.get("system", ""), outage.get("address", "")
    error = str(outage.get("error") or "").strip()
    found = _SERVER_FAILED.match(error)
    if found:
        status, _, said = found.groups()
        error = said if status in said else f"HTTP {status}: {said}"
    error = _TRIES_AGAIN.sub("", error).rstrip(" .")
    failing = bool(outage.get("failing"))
    verb = "is failing" if failing else "does not answer"
    since = local_time(outage.get("since"))
    return Outage(f"{system} at {address} {verb} (since {since}): {error}", failing)


def group_errors(
    run: Mapping[str, Any], errors: Iterable[str | None], label: str
) -> ErrorGroups:
    """Say an outage once for every tenant it fails, and an error ``SHARED_AT`` or
    more tenants share once above them; their rows get a short pointer."""
    counts = Counter(error for error in errors if error)
    groups = ErrorGroups()
    said: list[str] = []
    for outage in run.get("unreachable") or []:
        words = outage_words(outage)
        groups.outages.append(words)
        state = "is failing" if words.failing else "does not answer"
        pointer = f"{outage.get('system', '')} {state}"
        hit = [e for e in counts if _from_outage(e, outage)]
        if hit:
            many = sum(counts.pop(e) for e in hit)
            groups.shared.append(f"{_tenants(many, label)}: {pointer}")
        groups.short.update({e: f"{pointer}: see above" for e in hit})
        said.append(str(outage.get("error") or ""))

    for error, many in counts.most_common():
        if many >= SHARED_AT:
            groups.shared.append(f"{_tenants(many, label)}: {error}")
            groups.short[error] = f"See above ({_tenants(many, label)} share it)"
            said.append(error)

    run_error = run.get("error")
    if run_error and not any(_mentions(run_error, text) for text in said):
        groups.run_error = run_error
    return groups


def _tenants(count: int, label: str) -> str:
    """ "1 company", "40 companies", "2 virtual servers"."""
    return plural(count, label, "companies" if label == "company" else None)


def _from_outage(error: str, outage: Mapping[str, Any]) -> bool:
    """Whether a tenant's error is the outage's (or the drain's halt for it)."""
    system = str(outage.get("system") or "")
    halted = bool(system) and error.startswith(f"{system} is unreachable")
    return halted or _mentions(error, str(outage.get("error") or ""))


def _mentions(text: str, other: str) -> bool:
    """Whether one of two errors holds the other (neither empty)."""
    return bool(text and other) and (other in text or text in other)


def dashboard_rows(
    store: Store, integrations: list[Integration]
) -> list[IntegrationRow]:
    """Each integration with its tenants and what the agent last wrote for them."""
    tenants_by_integration: dict[str, list[Tenant]] = {}
    for tenant in store.list_tenants():
        tenants_by_integration.setdefault(tenant.integration_id, []).append(tenant)
    writes = _writes_by_tenant(store.list_history(limit=HISTORY_WINDOW))

    rows = []
    for integration in integrations:
        tenants = tenants_by_integration.get(integration.id, [])
        row = IntegrationRow(integration, TENANT_LABELS[integration.source])
        for tenant in tenants:
            summary, at = writes.get(tenant.id, ("", None))
            row.tenants.append(TenantRow(tenant, summary, at))
        row.mapped = sum(1 for t in tenants if t.mapping)
        row.failing = sum(1 for t in tenants if t.last_error)
        _note_waiting_writes(store, row)
        rows.append(row)
    return rows


def _note_waiting_writes(store: Store, row: IntegrationRow) -> None:
    """Count the integration's writes waiting for a retry, with the latest reason."""
    waiting = store.list_outbox(
        state=FAILED, integration_id=row.integration.id, limit=1000
    )
    row.waiting = len(waiting)
    if waiting:
        row.waiting_error = waiting[0].last_error or ""
        row.next_try = min(item.next_attempt_at for item in waiting)


def _writes_by_tenant(
    entries: list[HistoryEntry],
) -> dict[int, tuple[str, dt.datetime | None]]:
    """Per tenant: the writes of its latest day of activity, in words, and when."""
    latest: dict[int, dt.datetime] = {}
    counts: dict[int, Counter[tuple[str, str]]] = {}
    for entry in entries:
        if entry.tenant_id is None:
            continue
        newest = latest.setdefault(entry.tenant_id, entry.at)
        if newest - entry.at > dt.timedelta(days=1):
            continue
        counts.setdefault(entry.tenant_id, Counter())[
            write_kind(entry.target, entry.action)
        ] += 1

    order = [kind for _, _, kind in WRITE_KINDS] + [CUSTOM_FIELD, OTHER_WRITE]
    return {
        tenant_id: (
            ", ".join(
                f"{n} {one if n == 1 else many}"
                for (one, many), n in sorted(
                    counter.items(), key=lambda item: order.index(item[0])
                )
            ),
            latest[tenant_id],
        )
        for tenant_id, counter in counts.items()
    }


def sync_controls(agent: Agent, status: dict[str, Any]) -> dict[str, Any]:
    """The sync's state and which buttons apply (none while no scheduler runs)."""
    scheduler = getattr(agent, "scheduler", None)
    state = scheduler.status() if scheduler is not None else status.get("sync", {})
    return {
        "available": scheduler is not None,
        "state": state.get("state", "idle"),
        "state_words": sync_state_words(state.get("state")),
        "last_run": state.get("last_run"),
        "next_run": state.get("next_run"),
    }


def add_dashboard_facts(
    status: dict[str, Any], rows: list[IntegrationRow]
) -> dict[str, Any]:
    """The status reply with what the dashboard adds: per integration the writes
    waiting for a retry, per tenant what the agent last wrote and when."""
    by_id = {row.integration.id: row for row in rows}
    for integration in status.get("integrations", []):
        row = by_id.get(integration["id"])
        if row is None:
            continue
        integration["waiting"] = {
            "count": row.waiting,
            "error": row.waiting_error or None,
            "next_try": iso(row.next_try),
        }
        written = {item.tenant.id: item for item in row.tenants}
        for tenant in integration["tenants"]:
            item = written.get(tenant["id"])
            tenant["wrote"] = item.wrote if item else ""
            tenant["last_write"] = iso(item.last_write_at) if item else None
    return status


# The same facts as text, for ``integration-agent status``.

SOURCE_NAMES = {"ksc": "Kaspersky Security Center", "kbh": "Kaspersky Business Hub"}


def status_text(
    status: dict[str, Any], *, url: str, pid: int | None, every_tenant: bool = False
) -> str:
    """What the running agent reports, as lines a person reads in a terminal.

    Each integration gets a summary and the tenants that need action; with
    ``every_tenant`` every tenant is listed.
    """
    sync = status.get("sync") or {}
    running = f" (process {pid})" if pid else ""
    lines = [
        f"Tigerpaw integration agent {status.get('version', '')} is running{running}.",
        f"Page: {url}",
    ]
    lines += _config_lines(status.get("config") or {})
    if (status.get("secrets") or {}).get("fallback"):
        lines.append(
            "Passwords and keys: no system keyring works here, so they are kept in "
            "a file only this user can read."
        )
    lines.append("Sync: " + _run_words(sync, sync_state_words(sync.get("state"))))

    runs = {item["id"]: item for item in sync.get("integrations", [])}
    integrations = status.get("integrations") or []
    if not integrations:
        lines += ["", "No integration is set up yet: open the page to set one up."]
    for integration in integrations:
        run = runs.get(integration["id"], {})
        lines += _integration_lines(integration, run, sync.get("state"), every_tenant)
    return "\n".join(lines)


def _integration_lines(
    integration: dict[str, Any],
    run: dict[str, Any],
    sync_state: str | None,
    every_tenant: bool,
) -> list[str]:
    """One integration: its sync, a summary, and the tenants to list."""
    label = TENANT_LABELS.get(integration.get("source", ""), "tenant")
    tenants = integration.get("tenants") or []
    states = {t["id"]: t for t in run.get("tenants", [])}
    source = SOURCE_NAMES.get(integration.get("source", ""), "")
    state = run.get("state")
    # The pause holds every integration; one between runs is paused, not waiting.
    if sync_state == "paused" and state in (None, "idle"):
        state = "paused"
    lines = [
        "",
        f"{integration['name']} ({source})",
        "  Sync: " + _run_words(run, sync_state_words(state)),
    ]
    errors = (t.get("error") or states.get(t["id"], {}).get("error") for t in tenants)
    groups = group_errors(run, errors, label)
    if groups.run_error:
        lines.append(f"  Error: {counted(groups.run_error)}")
    lines += [f"  {outage.text}" for outage in groups.outages]
    lines += [f"  {counted(line)}" for line in groups.shared]

    needs = [t for t in tenants if _needs_action(t, states.get(t["id"], {}))]
    waiting = integration.get("waiting") or {}
    lines.append("  " + _summary(tenants, states, label, waiting.get("count") or 0))
    if waiting.get("count"):
        lines.append(
            f"  {plural(waiting['count'], 'write')} to Tigerpaw waiting to be "
            f"sent (next try {local_time(waiting.get('next_try'))}, or press "
            f"Sync now on the page): {counted(waiting.get('error')) or 'no reason'}"
        )

    shown = tenants if every_tenant else needs
    if shown and not every_tenant:
        lines.append(f"  Needing action ({len(needs)}):")
    for tenant in shown:
        lines += _tenant_lines(tenant, states.get(tenant["id"], {}), groups)
    hidden = len(tenants) - len(shown)
    if hidden:
        lines.append(
            f"  Not listed: {plural(hidden, label)} with nothing to do "
            "(integration-agent status --all lists every one)"
        )
    return lines


def _needs_action(tenant: dict[str, Any], run: dict[str, Any]) -> bool:
    """Whether a tenant has an error, no Tigerpaw account, or billing to approve."""
    return bool(
        not tenant.get("account")
        or tenant.get("error")
        or run.get("error")
        or run.get("state") == "waiting_approval"
    )


def _summary(
    tenants: list[dict[str, Any]],
    states: dict[Any, dict[str, Any]],
    label: str,
    writes_waiting: int,
) -> str:
    """Counts of one integration's tenants: mapped, with errors, awaiting approval."""
    mapped = sum(1 for t in tenants if t.get("account"))
    failing = sum(
        1 for t in tenants if t.get("error") or states.get(t["id"], {}).get("error")
    )
    approval = sum(
        1 for t in tenants if states.get(t["id"], {}).get("state") == "waiting_approval"
    )
    return (
        f"{plural(len(tenants), label)}: {mapped} mapped, {failing} with errors, "
        f"{approval} waiting for billing approval, "
        f"{plural(writes_waiting, 'write')} waiting"
    )


def _config_lines(config: dict[str, Any]) -> list[str]:
    """The config file, and what to fix in it when it is broken."""
    lines = [f"Config: {config.get('path', '')}"]
    error = config.get("error")
    if not config.get("ok", True) and error:
        lines.append(
            f"  Problem: {error.get('message')}. The agent keeps the last good "
            "settings until the file is fixed."
        )
    return lines


def _run_words(run: dict[str, Any], state: str) -> str:
    """A sync's state with its last and next run."""
    words = [state]
    if run.get("last_run"):
        words.append(f"last run {local_time(run['last_run'])}")
    if run.get("next_run"):
        words.append(f"next run {local_time(run['next_run'])}")
    if run.get("next_license_run"):
        words.append(f"next billing run {local_time(run['next_license_run'])}")
    return "; ".join(words)


def _tenant_lines(
    tenant: dict[str, Any], run: dict[str, Any], groups: ErrorGroups
) -> list[str]:
    """One tenant: its account, last sync, what was written and what is wrong
    (shortly, when the integration's lines say it already)."""
    account = tenant.get("account")
    if account:
        where = f"Tigerpaw account {account['name']} ({account['number']})"
    else:
        where = "not mapped: map it to a Tigerpaw account on the page (Map accounts)"
    synced = local_time(tenant.get("last_sync")) or "never"
    lines = [f"  {tenant['name']}: {where}", f"    Last sync {synced}"]
    if tenant.get("wrote"):
        lines[-1] += f"; in Tigerpaw over its last day: {tenant['wrote']}"
    if run.get("state") == "waiting_approval":
        lines.append(
            "    Billing waits for your approval: approve it on the page's Billing "
            "preview."
        )
    error = tenant.get("error") or run.get("error")
    if error:
        lines.append(f"    Error: {counted(groups.cell(error))}")
        if run.get("state") == "failing":
            lines.append(
                "    The agent tries again on each run; once the cause is fixed, "
                "press Sync now on the page to try at once."
            )
    return lines
