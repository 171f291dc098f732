"""The billing preview the page shows, and its approval.

Before the first live billing run of an account, a person sees the quantities the
run would set (old and new, with the counting rule) and approves them; only then
does the sync write that account's charges. Mapping the tenant to another account or
agreement withdraws the approval (the store does that).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent.config import Settings
from agent.connections import connect
from agent.secrets import SecretStore
from agent.sources.kbh import ServerTable
from agent.store import AccountMapping, Store
from agent.sync.cycle import CycleOptions, IntegrationCycle
from agent.sync.licenses import CATEGORY_LABELS
from agent.sync.limits import ApiLimits
from agent.wording import plural

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChargePreview:
    """One charge line: the item, its quantity now and after the run, and why."""

    item_id: str
    label: str
    before: int | None
    after: int
    rule: str

    @property
    def changes(self) -> bool:
        """Whether the run would write this line."""
        if self.before is None:
            return self.after > 0
        return self.before != self.after


@dataclass(frozen=True)
class AccountPreview:
    """What the next billing run would set on one account's agreement."""

    tenant_id: int
    tenant_name: str
    account_number: int
    account_name: str
    agreement_number: int | None
    billing: bool
    approved: bool
    lines: tuple[ChargePreview, ...] = ()
    #: Applications in use without a price book item: "12 workstations of X".
    not_billed: tuple[str, ...] = ()
    #: Applications with devices seen only on keys that do not count.
    excluded: tuple[str, ...] = ()
    error: str | None = None


def billing_preview(
    store: Store,
    secrets: SecretStore,
    settings: Settings | Callable[[], Settings],
    integration_id: str,
    *,
    tenant_ids: Iterable[int] | None = None,
    kbh_table: ServerTable | None = None,
    limits: ApiLimits | None = None,
) -> list[AccountPreview]:
    """Count each mapped tenant now and read its agreement; nothing is written.

    Tenants with billing off are previewed too (when they have an agreement), so
    the page can show the quantities before billing is switched on.
    """
    integration = store.get_integration(integration_id)
    if integration is None:
        return []
    provider = settings if callable(settings) else (lambda: settings)
    wanted = frozenset(tenant_ids) if tenant_ids is not None else None
    options = CycleOptions(
        licenses=True, orders=False, dry_run=True, tenant_ids=wanted, bill_all=True
    )

    stop = threading.Event()
    connections = connect(
        integration, secrets, provider, stop=stop, kbh_table=kbh_table
    )
    try:
        result = IntegrationCycle(
            store, integration, connections, limits=limits, stop=stop
        ).run(options)
    finally:
        connections.close()

    tenants = {tenant.id: tenant for tenant in store.list_tenants(integration_id)}
    previews = []
    for outcome in result.tenants:
        tenant = tenants.get(outcome.tenant_id)
        if tenant is None or tenant.mapping is None:
            continue
        mapping = tenant.mapping
        usage = outcome.usage
        previews.append(
            AccountPreview(
                tenant_id=tenant.id,
                tenant_name=tenant.name,
                account_number=mapping.account_number,
                account_name=mapping.account_name,
                agreement_number=mapping.agreement_number,
                billing=mapping.billing,
                approved=mapping.billing_approved,
                lines=tuple(
                    ChargePreview(c.item_id, c.label, c.before, c.after, c.rule)
                    for c in outcome.charges
                ),
                not_billed=tuple(
                    f"{count} {CATEGORY_LABELS.get(category, category)} of {product}"
                    for product, category, count in outcome.unmapped
                ),
                excluded=tuple(
                    f"{plural(count, 'device')} of {product} on trial, expired or "
                    "suspended keys are not counted"
                    for product, count in sorted(
                        (usage.excluded if usage else {}).items()
                    )
                ),
                error=result.error or outcome.error,
            )
        )
    return previews


def approve_billing(store: Store, tenant_id: int) -> AccountMapping:
    """Approve the preview of a tenant's account: its next run writes the charges."""
    mapping = store.update_mapping(tenant_id, billing_approved=True)
    logger.info(
        "Billing preview approved for account %s (%d)",
        mapping.account_name,
        mapping.account_number,
    )
    return mapping
