"""An integration's sync settings: Tigerpaw's lists, the choices, a test order."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.errors import SetupError
from agent.setup_base import SetupBase
from agent.sources.records import PROBLEM_DESCRIPTIONS, LicenseUsage
from agent.store import SyncChoices
from agent.tigerpaw.models import MasterTableEntry, PriceBookItem, Rep

logger = logging.getLogger(__name__)

#: At most this many tenants are read to learn which applications are licensed.
LICENSE_SCAN_LIMIT = 50
TEST_ORDER_TITLE = "Test service order from the Kaspersky integration agent"


@dataclass(frozen=True)
class TigerpawLists:
    """Tigerpaw's master tables and price book, for the settings' drop-downs."""

    reps: list[Rep] = field(default_factory=list)
    statuses: list[MasterTableEntry] = field(default_factory=list)
    priorities: list[MasterTableEntry] = field(default_factory=list)
    types: list[MasterTableEntry] = field(default_factory=list)
    boards: list[MasterTableEntry] = field(default_factory=list)
    items: list[PriceBookItem] = field(default_factory=list)


@dataclass(frozen=True)
class LicenseTypes:
    """The applications the integration's tenants hold licenses for."""

    products: list[str]
    #: How many tenants were read (fewer than the integration holds if limited).
    scanned: int
    total: int
    #: The applications licensed per user (see licensed_per_user): one item each.
    per_user: frozenset[str] = frozenset()


class ChoiceSteps(SetupBase):
    """The settings page of an integration."""

    def tigerpaw_lists(
        self, integration_id: str, *, refresh: bool = False
    ) -> TigerpawLists:
        """Reps, statuses, priorities, types, boards and price book items, cached."""
        integration = self.integration(integration_id)

        def load() -> TigerpawLists:
            with self.tigerpaw(integration) as client:
                return TigerpawLists(
                    reps=client.reps(),
                    statuses=client.service_order_statuses(),
                    priorities=client.priorities(),
                    types=client.service_order_types(),
                    boards=client.dispatch_boards(),
                    items=[i for i in client.search_price_book() if not i.inactive],
                )

        return self.cache.get((integration_id, "lists"), load, refresh=refresh)

    def license_types(
        self, integration_id: str, *, refresh: bool = False
    ) -> LicenseTypes:
        """The applications licensed in the first tenants, with those already chosen."""
        integration = self.integration(integration_id)
        tenants = self.store.list_tenants(integration_id)
        choices = self.store.get_sync_choices(integration_id)
        scanned = tenants[:LICENSE_SCAN_LIMIT]

        def load() -> dict[str, bool]:
            client = self.source(integration)
            usages: list[LicenseUsage] = []
            try:
                for tenant in scanned:
                    usages += client.license_usage(tenant.source_id)
            finally:
                client.close()
            return licensed_per_user(usages)

        seen = self.cache.get((integration_id, "products"), load, refresh=refresh)
        products = set(seen)
        products.update(
            key.partition("/")[0] for key in choices.price_book_items if key
        )
        return LicenseTypes(
            products=sorted(products, key=str.casefold),
            scanned=len(scanned),
            total=len(tenants),
            per_user=frozenset(product for product, yes in seen.items() if yes),
        )

    def save_choices(self, integration_id: str, choices: SyncChoices) -> SyncChoices:
        """Save the integration's sync settings."""
        self.integration(integration_id)
        return self.store.set_sync_choices(integration_id, choices)

    def create_test_order(self, tenant_id: int) -> int:
        """Open a service order on a tenant's account, to see where orders land."""
        tenant = self.store.get_tenant(tenant_id)
        if tenant is None or tenant.mapping is None:
            raise SetupError(
                "Map the server or company to a Tigerpaw account first",
                field="account",
            )
        integration = self.integration(tenant.integration_id)
        choices = self.store.get_sync_choices(integration.id)
        when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")

        with self.tigerpaw(integration) as client:
            number = client.create_service_order(
                tenant.mapping.account_number,
                TEST_ORDER_TITLE,
                status=choices.new_status or None,
                taken_by=int(choices.rep) if choices.rep.isdigit() else None,
                work_requested=(
                    f"Sent from the setup page at {when} to test the integration "
                    f"{integration.name} for {tenant.name}. Close it when seen."
                ),
            )
        logger.info(
            "Test service order %d created on account %d for %s",
            number,
            tenant.mapping.account_number,
            tenant.name,
        )
        return number


def licensed_per_user(usages: Iterable[LicenseUsage]) -> dict[str, bool]:
    """Each application the licenses name, and whether it is licensed per user:
    its licenses count protected mailboxes (Office 365) and none names a device."""
    named: set[str] = set()
    devices: set[str] = set()
    mailboxes: set[str] = set()
    for usage in usages:
        if not usage.product:
            continue
        named.add(usage.product)
        if usage.device_ids:
            devices.add(usage.product)
        if usage.mailboxes:
            mailboxes.add(usage.product)

    return {product: product in mailboxes - devices for product in sorted(named)}


def problem_rows() -> list[tuple[str, str]]:
    """Device problems that can open orders: (word, description)."""
    return list(PROBLEM_DESCRIPTIONS.items())
