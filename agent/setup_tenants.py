"""Setup steps 3 and 4: add servers or companies, then map each to an account.

The mapping grid shows a page of rows at a time (:mod:`agent.setup_grid`); a page
is saved on its own, so a choice is kept when the person moves to another page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from agent.errors import SetupError
from agent.setup_base import SetupBase
from agent.setup_grid import (
    AccountIndex,
    GridPage,
    GridQuery,
    cross_reference_advice,
    index_accounts,
    mapping_unchanged,
    number_in_label,
    page_of,
    unbillable_accounts_advice,
)
from agent.setup_matching import (
    Candidate,
    account_from_text,
    check_capacity,
    free_accounts,
    suggest_accounts,
)
from agent.sources import records as source_records
from agent.store import KBH, Integration, NewTenant, Tenant, console_identity
from agent.store.records import TENANT_LABELS
from agent.tigerpaw.models import Agreement
from agent.wording import plural

logger = logging.getLogger(__name__)

#: What :meth:`TenantSteps._chosen_agreement` gives for a new row whose account
#: has no agreement: save it with billing off.
NO_AGREEMENT = object()


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
    """Everything the mapping grid shows: one page of rows, and what is left."""

    integration: Integration
    label: str
    tenants: list[Tenant]
    #: Accounts this integration may choose: free ones and its own.
    accounts: list[Candidate]
    suggestions: dict[int, Candidate]
    #: Accounts no server or company holds.
    unmapped_accounts: list[Candidate]
    unmapped_tenants: list[Tenant]
    grid: GridPage
    shortage: str = ""
    labels: dict[int, str] = field(default_factory=dict)
    #: Accounts whose charges cannot be written (no external product).
    not_cross_referenced: frozenset[int] = frozenset()

    def cross_reference_warning(self, text: str) -> str:
        """What to do in Tigerpaw when the account a choice box names cannot be
        billed; "" when it can, or when the text names no account."""
        number = number_in_label(text)
        if number is None or number not in self.not_cross_referenced:
            return ""
        shown = self.labels.get(number, text.strip())
        return cross_reference_advice(shown, self.integration.tigerpaw_soap_user)

    def unbillable_unmapped(self) -> str:
        """What to do about the free accounts billing cannot reach ("" if none)."""
        lacking = [
            self.labels.get(a.number, a.name)
            for a in self.unmapped_accounts
            if a.number in self.not_cross_referenced
        ]
        if not lacking:
            return ""
        soap_user = self.integration.tigerpaw_soap_user
        return unbillable_accounts_advice(lacking, soap_user)

    def warning_pattern(self) -> str:
        """The warning with "{account}" where the account goes (for the script)."""
        return cross_reference_advice("{account}", self.integration.tigerpaw_soap_user)


@dataclass(frozen=True)
class MappingSave:
    """What saving a page of the grid did: errors by tenant id, or rows changed."""

    errors: dict[int, str]
    changed: int = 0
    #: The rows newly mapped with billing off: their account has no agreement.
    billing_off: list[str] = field(default_factory=list)


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
        return self.account_index(integration_id, refresh=refresh).candidates

    def account_index(
        self, integration_id: str, *, refresh: bool = False
    ) -> AccountIndex:
        """Tigerpaw's accounts as the grid uses them, built once per read."""
        integration = self.integration(integration_id)

        def load() -> AccountIndex:
            with self.tigerpaw(integration) as client:
                listed = client.list_accounts()
            return index_accounts(sorted(listed, key=lambda a: a.name.casefold()))

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
        self,
        integration_id: str,
        *,
        refresh: bool = False,
        query: GridQuery | None = None,
    ) -> MappingView:
        """The grid: a page of tenants, the accounts to choose from, guesses and
        what is left."""
        integration = self.integration(integration_id)
        tenants = self.store.list_tenants(integration_id)
        index = self.account_index(integration_id, refresh=refresh)
        accounts = index.candidates
        mapped = self.store.mapped_accounts()

        own_ids = [t.id for t in tenants]
        choosable = free_accounts(accounts, mapped, own_ids)
        unmapped_tenants = [t for t in tenants if t.mapping is None]
        unheld = [a for a in accounts if a.number not in mapped]
        suggestions = self._suggestions(integration_id, unmapped_tenants, unheld)

        label = TENANT_LABELS[integration.source]
        shortage = ""
        if len(unmapped_tenants) > len(unheld):
            shortage = (
                f"{plural(len(unmapped_tenants), label)} wait for an account but "
                f"only {plural(len(unheld), 'Tigerpaw account')} free: add accounts in "
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
            grid=page_of(tenants, query or GridQuery()),
            shortage=shortage,
            labels=index.labels,
            not_cross_referenced=index.not_cross_referenced,
        )

    def save_mappings(
        self, integration_id: str, choices: list[MappingChoice]
    ) -> dict[int, str]:
        """Check the rows given, then save those that changed; errors by tenant id
        (and then nothing is saved)."""
        return self.save_mapping_rows(integration_id, choices).errors

    def save_mapping_rows(
        self, integration_id: str, choices: list[MappingChoice]
    ) -> MappingSave:
        """Check the rows given (a page of the grid), then save those that changed.

        Nothing is saved when a row is wrong. Rows not given keep their mapping,
        and the accounts they hold stay theirs.
        """
        view = self.mapping_view(integration_id)
        tenants = {t.id: t for t in view.tenants}
        given = {choice.tenant_id for choice in choices}
        held = self.store.mapped_accounts()
        every_account = self.accounts(integration_id)
        errors: dict[int, str] = {}
        planned: dict[
            int, tuple[Candidate | None, Agreement | None, MappingChoice]
        ] = {}
        owner_of: dict[int, int] = {}
        billing_off: list[str] = []

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
                    self._refuse_held_on_other_page(account, tenant, held, given)
                if mapping_unchanged(tenant, account, choice):
                    continue
                new = tenant.mapping is None or (
                    account is not None
                    and tenant.mapping.account_number != account.number
                )
                agreement = self._chosen_agreement(
                    integration_id, choice, account, new=new
                )
            except SetupError as err:
                errors[tenant.id] = str(err)
                continue
            if agreement is NO_AGREEMENT:
                # A new row billed by the page's default, on an account with no
                # agreement to carry charges: saved with billing off instead.
                choice = dataclasses.replace(choice, billing=False)
                agreement = None
                billing_off.append(tenant.name)
            planned[tenant.id] = (account, agreement, choice)
        if errors:
            return MappingSave(errors)

        changed = self._write_mappings(tenants, planned)
        if changed:
            self.changed()
        return MappingSave({}, changed, billing_off)

    # Helpers.

    def _suggestions(
        self, integration_id: str, waiting: list[Tenant], free: list[Candidate]
    ) -> dict[int, Candidate]:
        """Best guesses for the tenants waiting for an account, worked out again
        only when those tenants or the free accounts change."""
        names = {t.id: t.name for t in waiting}
        # Flat tuples: a pair per row would be thousands of objects for the
        # garbage collector to look at on every page.
        inputs = (
            tuple(names),
            tuple(names.values()),
            tuple(a.number for a in free),
            tuple(a.name for a in free),
        )

        def guess() -> tuple[Any, dict[int, Candidate]]:
            return inputs, suggest_accounts(names, free)

        key = (integration_id, "suggestions")
        kept = self.cache.get(key, guess)
        if kept[0] != inputs:
            kept = self.cache.get(key, guess, refresh=True)
        return kept[1]

    def _refuse_held_on_other_page(
        self, account: Candidate, tenant: Tenant, held: dict[int, int], given: set[int]
    ) -> None:
        """SetupError when a tenant of this grid not being saved holds the account."""
        holder = held.get(account.number)
        if holder is None or holder == tenant.id or holder in given:
            return
        other = self.store.get_tenant(holder)
        name = other.name if other else f"another {TENANT_LABELS[tenant.source]}"
        raise SetupError(
            f"{account.name} is mapped to {name}: search for {name} and clear its "
            "account first, or pick another account",
            field="account",
        )

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
        self,
        integration_id: str,
        choice: MappingChoice,
        account: Candidate | None,
        *,
        new: bool = False,
    ) -> Any:
        """The agreement a row names, which must be one of its account's.

        A billed row without an agreement is refused, except a ``new`` mapping
        whose account has no agreement at all: NO_AGREEMENT says to save it with
        billing off.
        """
        text = choice.agreement.strip()
        if account is None:
            return None
        if not text:
            if not choice.billing:
                return None
            if not self.agreements(integration_id, account.number):
                if new:
                    return NO_AGREEMENT
                raise SetupError(
                    f"{account.name} has no agreement in Tigerpaw: switch billing "
                    "off for this row until one is added",
                    field="agreement",
                )
            raise SetupError(
                f"Select the agreement of {account.name} that carries the charges, "
                "or switch billing off",
                field="agreement",
            )

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
    ) -> int:
        """Unlink changed rows first, so two tenants can swap accounts, then map;
        how many rows changed.

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
        return len(planned)


def agreement_title(agreement: Agreement, now: dt.datetime | None = None) -> str:
    """How the page names an agreement: type, number, and whether it runs."""
    running = agreement.active_at(now or dt.datetime.now(dt.UTC))
    return f"{agreement.type} {agreement.number}{'' if running else ' (not running)'}"
