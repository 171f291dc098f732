"""Setup steps 3 and 4: add servers or companies, then map each to an account."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from agent.errors import SetupError
from agent.setup_base import SetupBase
from agent.setup_matching import (
    Candidate,
    account_from_text,
    account_label,
    check_capacity,
    free_accounts,
    suggest_accounts,
)
from agent.sources import records as source_records
from agent.store import KBH, Integration, NewTenant, Tenant, console_identity
from agent.store.records import TENANT_LABELS
from agent.tigerpaw.models import Account, Agreement

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Available:
    """What the console offers to add, and how many it holds back."""

    tenants: list[source_records.Tenant]
    #: Held by another integration: not listed.
    held_elsewhere: int
    #: Already in this integration: not listed again.
    already_here: int


@dataclass(frozen=True)
class MappingChoice:
    """One row of the mapping grid as the form sent it."""

    tenant_id: int
    account: str
    agreement: str
    billing: bool
    service_orders: bool


@dataclass
class MappingView:
    """Everything the mapping grid shows."""

    integration: Integration
    label: str
    tenants: list[Tenant]
    #: Accounts this integration may choose: free ones and its own.
    accounts: list[Candidate]
    suggestions: dict[int, Candidate]
    #: Accounts no server or company holds.
    unmapped_accounts: list[Candidate]
    unmapped_tenants: list[Tenant]
    shortage: str = ""
    labels: dict[int, str] = field(default_factory=dict)


class TenantSteps(SetupBase):
    """Adding, removing and mapping tenants."""

    # Step 3: add servers or companies.

    def available_tenants(
        self, integration_id: str, *, refresh: bool = False
    ) -> Available:
        """The console's tenants not yet in this or any other integration."""
        integration = self.integration(integration_id)
        listed = self._console_tenants(integration, refresh=refresh)
        here = {t.source_id for t in self.store.list_tenants(integration_id)}
        elsewhere = self._held_elsewhere(integration)

        offered = [t for t in listed if t.id not in here and t.id not in elsewhere]
        return Available(
            tenants=sorted(offered, key=lambda t: t.name.casefold()),
            held_elsewhere=sum(1 for t in listed if t.id in elsewhere),
            already_here=sum(1 for t in listed if t.id in here),
        )

    def add_tenants(self, integration_id: str, source_ids: list[str]) -> list[Tenant]:
        """Add the chosen tenants, if Tigerpaw has a free account for each."""
        integration = self.integration(integration_id)
        label = TENANT_LABELS[integration.source]
        if not source_ids:
            raise SetupError(f"Tick at least one {label} to add", field="tenants")
        offered = {t.id: t for t in self.available_tenants(integration_id).tenants}
        missing = [s for s in source_ids if s not in offered]
        if missing:
            raise SetupError(
                f"{len(missing)} of the ticked {label}s can no longer be added "
                "(another integration took them, or the console no longer has "
                "them): look at the list again",
                field="tenants",
            )

        unmapped = [t for t in self.store.list_tenants(integration_id) if not t.mapping]
        accounts = self.accounts(integration_id)
        mapped = self.store.mapped_accounts()
        free = [a for a in accounts if a.number not in mapped]
        check_capacity(len(unmapped) + len(source_ids), len(free), label)

        chosen = [NewTenant(s, offered[s].name) for s in source_ids]
        added = self.store.add_tenants(integration_id, chosen)
        self.changed()
        return added

    def remove_tenant(self, tenant_id: int) -> bool:
        """Take a tenant out of its integration; nothing changes in Tigerpaw."""
        removed = self.store.remove_tenant(tenant_id)
        self.changed()
        return removed

    # Step 4: map to Tigerpaw accounts.

    def accounts(
        self, integration_id: str, *, refresh: bool = False
    ) -> list[Candidate]:
        """Tigerpaw's accounts (number and name), read at most every few minutes."""
        return [
            Candidate(a.number, a.name)
            for a in self.tigerpaw_accounts(integration_id, refresh=refresh)
        ]

    def tigerpaw_accounts(
        self, integration_id: str, *, refresh: bool = False
    ) -> list[Account]:
        """Tigerpaw's accounts with their cross-reference flag, cached."""
        integration = self.integration(integration_id)

        def load() -> list[Account]:
            with self.tigerpaw(integration) as client:
                return sorted(client.list_accounts(), key=lambda a: a.name.casefold())

        return self.cache.get((integration_id, "accounts"), load, refresh=refresh)

    def agreements(self, integration_id: str, account_number: int) -> list[Agreement]:
        """The recurring agreements of one account, cached."""
        integration = self.integration(integration_id)

        def load() -> list[Agreement]:
            with self.tigerpaw(integration) as client:
                return client.agreements_of_account(account_number)

        key = (integration_id, "agreements", str(int(account_number)))
        return self.cache.get(key, load)

    def mapping_view(
        self, integration_id: str, *, refresh: bool = False
    ) -> MappingView:
        """The grid: tenants, the accounts to choose from, guesses and what is left."""
        integration = self.integration(integration_id)
        tenants = self.store.list_tenants(integration_id)
        accounts = self.accounts(integration_id, refresh=refresh)
        mapped = self.store.mapped_accounts()

        own_ids = [t.id for t in tenants]
        choosable = free_accounts(accounts, mapped, own_ids)
        unmapped_tenants = [t for t in tenants if t.mapping is None]
        unheld = [a for a in accounts if a.number not in mapped]
        suggestions = suggest_accounts({t.id: t.name for t in unmapped_tenants}, unheld)

        label = TENANT_LABELS[integration.source]
        shortage = ""
        if len(unmapped_tenants) > len(unheld):
            shortage = (
                f"{len(unmapped_tenants)} {label}(s) wait for an account but only "
                f"{len(unheld)} Tigerpaw account(s) are free: add accounts in "
                f"Tigerpaw, or remove {label}s you do not bill"
            )
        return MappingView(
            integration=integration,
            label=label,
            tenants=tenants,
            accounts=choosable,
            suggestions=suggestions,
            unmapped_accounts=unheld,
            unmapped_tenants=unmapped_tenants,
            shortage=shortage,
            labels={a.number: account_label(a.number, a.name) for a in choosable},
        )

    def save_mappings(
        self, integration_id: str, choices: list[MappingChoice]
    ) -> dict[int, str]:
        """Check every row, then save them all; errors by tenant id (none saved)."""
        view = self.mapping_view(integration_id)
        tenants = {t.id: t for t in view.tenants}
        every_account = self.accounts(integration_id)
        errors: dict[int, str] = {}
        planned: dict[
            int, tuple[Candidate | None, Agreement | None, MappingChoice]
        ] = {}
        owner_of: dict[int, int] = {}

        for choice in choices:
            tenant = tenants.get(choice.tenant_id)
            if tenant is None:
                continue
            try:
                account = self._chosen_account(choice, view, every_account)
                if account is not None and account.number in owner_of:
                    other = tenants[owner_of[account.number]]
                    raise SetupError(
                        f"{account.name} is chosen for {other.name} too: each "
                        f"Tigerpaw account takes one {view.label}",
                        field="account",
                    )
                if account is not None:
                    owner_of[account.number] = tenant.id
                agreement = self._chosen_agreement(integration_id, choice, account)
            except SetupError as err:
                errors[tenant.id] = str(err)
                continue
            planned[tenant.id] = (account, agreement, choice)
        if errors:
            return errors

        self._write_mappings(tenants, planned)
        self.changed()
        return {}

    # Helpers.

    def _console_tenants(
        self, integration: Integration, *, refresh: bool
    ) -> list[source_records.Tenant]:
        """Every tenant the integration's console lists, cached a few minutes."""

        def load() -> list[source_records.Tenant]:
            client = self.source(integration)
            try:
                if integration.source == KBH:
                    return list(client.companies())
                return list(client.vservers())
            finally:
                client.close()

        return self.cache.get((integration.id, "tenants"), load, refresh=refresh)

    def _held_elsewhere(self, integration: Integration) -> dict[str, str]:
        """Tenants of the same console held by other integrations: id to owner."""
        console = console_identity(integration.settings)
        owners = {
            other.id: other.name
            for other in self.store.list_integrations()
            if other.id != integration.id
            and console_identity(other.settings) == console
        }
        return {
            tenant.source_id: owners[tenant.integration_id]
            for tenant in self.store.list_tenants()
            if tenant.integration_id in owners
        }

    def _chosen_account(
        self,
        choice: MappingChoice,
        view: MappingView,
        every_account: list[Candidate],
    ) -> Candidate | None:
        """The account a row names, if this integration may take it."""
        account = account_from_text(choice.account, every_account)
        if account is None or account in view.accounts:
            return account

        holder = self.store.mapped_accounts().get(account.number)
        tenant = self.store.get_tenant(holder) if holder is not None else None
        owner = self.store.get_integration(tenant.integration_id) if tenant else None
        raise SetupError(
            f"{account.name} is already mapped to "
            f"{tenant.name if tenant else 'another tenant'} in "
            f"{owner.name if owner else 'another integration'}: unmap it there first, "
            "or pick another account",
            field="account",
        )

    def _chosen_agreement(
        self, integration_id: str, choice: MappingChoice, account: Candidate | None
    ) -> Agreement | None:
        """The agreement a row names, which must be one of its account's."""
        text = choice.agreement.strip()
        if account is None:
            return None
        if not text:
            if choice.billing:
                raise SetupError(
                    f"Select the agreement of {account.name} that carries the charges, "
                    "or switch billing off",
                    field="agreement",
                )
            return None

        agreements = self.agreements(integration_id, account.number)
        found = next((a for a in agreements if str(a.number) == text), None)
        if found is None:
            raise SetupError(
                f"Agreement {text} is not one of {account.name}'s agreements: "
                "select one from the list",
                field="agreement",
            )
        return found

    def _write_mappings(
        self,
        tenants: dict[int, Tenant],
        planned: dict[int, tuple[Candidate | None, Agreement | None, MappingChoice]],
    ) -> None:
        """Unlink changed rows first, so two tenants can swap accounts, then map.

        One transaction: a save that fails half-way (the file locked or the disk
        full) must not leave a tenant unlinked from the account it had.
        """
        with self.store.transaction():
            for tenant_id, (account, _agreement, _choice) in planned.items():
                current = tenants[tenant_id].mapping
                if current and (
                    account is None or current.account_number != account.number
                ):
                    self.store.unmap(tenant_id)

            for tenant_id, (account, agreement, choice) in planned.items():
                if account is None:
                    continue
                self.store.map_account(
                    tenant_id,
                    account.number,
                    account.name,
                    agreement.number if agreement else None,
                    agreement_title(agreement) if agreement else "",
                    billing=choice.billing,
                    service_orders=choice.service_orders,
                )


def agreement_title(agreement: Agreement, now: dt.datetime | None = None) -> str:
    """How the page names an agreement: type, number, and whether it runs."""
    running = agreement.active_at(now or dt.datetime.now(dt.UTC))
    return f"{agreement.type} {agreement.number}{'' if running else ' (not running)'}"
