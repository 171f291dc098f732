"""The mapping grid's decisions that need no I/O: pages, searches, account lists.

With a thousand servers or companies, one page of every row is too long to read
and too slow to render, so the grid shows a page of rows at a time, found by a
part of the name. Tigerpaw's account list is indexed once per read: the labels the
choice box offers, and the accounts billing cannot reach because they are not
cross-referenced to the SOAP user's external product.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.setup_matching import Candidate, account_label
from agent.store import Tenant
from agent.tigerpaw.models import Account
from agent.wording import plural

if TYPE_CHECKING:
    from agent.setup_tenants import MappingChoice

logger = logging.getLogger(__name__)

#: Rows on one page of the grid.
PAGE_SIZE = 100

_NUMBER_IN_BRACKETS = re.compile(r"\((\d+)\)\s*$")


@dataclass(frozen=True)
class GridQuery:
    """Which rows the grid shows: a part of the name, a filter, and where."""

    text: str = ""
    #: Only the servers or companies still waiting for an account.
    unmapped_only: bool = False
    #: The page to show, counted from 1.
    page: int = 1
    #: Show the page holding this tenant instead (a link to one row).
    tenant: int | None = None


@dataclass(frozen=True)
class GridPage:
    """One page of the grid's rows, and where it sits in the whole list."""

    rows: list[Tenant]
    query: GridQuery
    number: int
    pages: int
    #: Rows the search found, on every page.
    matching: int
    #: Rows of the integration, found or not.
    total: int
    #: The first row of the next and of the previous page, if there are such pages.
    next_anchor: int | None = None
    previous_anchor: int | None = None
    size: int = PAGE_SIZE

    @property
    def first(self) -> int:
        """The position (from 1) of this page's first row among the found ones."""
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def last(self) -> int:
        """The position (from 1) of this page's last row among the found ones."""
        return self.first + len(self.rows) - 1 if self.rows else 0

    @property
    def searched(self) -> bool:
        """Whether a search or filter narrows the rows."""
        return bool(self.query.text) or self.query.unmapped_only


def page_of(
    tenants: Sequence[Tenant], query: GridQuery, size: int = PAGE_SIZE
) -> GridPage:
    """The page of ``tenants`` (already in the grid's order) that ``query`` asks for.

    A page number past the end shows the last page; a tenant the search does not
    find leaves the page number as asked.
    """
    wanted = " ".join(query.text.split()).casefold()
    found = [
        tenant
        for tenant in tenants
        if wanted in tenant.name.casefold()
        and not (query.unmapped_only and tenant.mapping is not None)
    ]
    pages = max(1, -(-len(found) // size))

    number = query.page
    if query.tenant is not None:
        position = next(
            (index for index, t in enumerate(found) if t.id == query.tenant), None
        )
        if position is not None:
            number = position // size + 1
    number = min(max(1, number), pages)

    start = (number - 1) * size
    rows = list(found[start : start + size])
    after = found[start + size] if start + size < len(found) else None
    before = found[start - 1] if start > 0 else None
    return GridPage(
        rows=rows,
        query=query,
        number=number,
        pages=pages,
        matching=len(found),
        total=len(tenants),
        next_anchor=after.id if after else None,
        previous_anchor=before.id if before else None,
        size=size,
    )


@dataclass(frozen=True)
class AccountIndex:
    """Tigerpaw's accounts as the grid uses them, built once per read."""

    candidates: list[Candidate]
    #: Account number to its label in the choice box, "Name (number)".
    labels: dict[int, str] = field(default_factory=dict)
    #: Accounts Tigerpaw says lack the SOAP user's external product.
    not_cross_referenced: frozenset[int] = frozenset()


def index_accounts(accounts: Sequence[Account]) -> AccountIndex:
    """The grid's view of an account list (kept in its order)."""
    candidates = [Candidate(a.number, a.name) for a in accounts]
    missing = frozenset(a.number for a in accounts if a.cross_referenced is False)
    if missing:
        logger.debug(
            "%s not cross-referenced", plural(len(missing), "Tigerpaw account")
        )
    return AccountIndex(
        candidates=candidates,
        labels={c.number: account_label(c.number, c.name) for c in candidates},
        not_cross_referenced=missing,
    )


def number_in_label(text: str) -> int | None:
    """The account number a choice box's text ends with, "Name (number)", or a
    bare number; None for anything else."""
    text = text.strip()
    found = _NUMBER_IN_BRACKETS.search(text)
    if found:
        return int(found.group(1))
    return int(text) if text.isdigit() else None


def cross_reference_advice(account: str, soap_user: str) -> str:
    """What to do in Tigerpaw so that billing can write an account's charges."""
    return (
        f"{account} is not cross-referenced to the external product of the SOAP "
        f"user '{soap_user}', so its charges cannot be written: in Tigerpaw, open "
        "the account and assign that product to it (Assign External Products to "
        "an Account), then read the accounts from Tigerpaw again"
    )


def unbillable_accounts_advice(accounts: Sequence[str], soap_user: str) -> str:
    """What to do in Tigerpaw about several accounts billing cannot reach."""
    return (
        f"Billing cannot write charges to {', '.join(accounts)}: "
        f"{'it is' if len(accounts) == 1 else 'they are'} not cross-referenced to "
        f"the external product of the SOAP user '{soap_user}'. In Tigerpaw, open "
        f"{'the account' if len(accounts) == 1 else 'each'} and assign that product "
        "to it (Assign External Products to an Account) before you map and bill it"
    )


#: Beside a row whose account has no agreement, and in the saved message.
NO_AGREEMENT_NOTE = "no agreement in Tigerpaw: billing off until one is added"


#: What the rows a best guess cannot bill yet are for.
CHARGES = "Kaspersky charges"


@dataclass(frozen=True)
class AccountAgreements:
    """What a best guess knows of an account's agreements: the running ones (number
    and title, as the drop-down names them) and how many it has in all (None when
    Tigerpaw could not be read)."""

    running: tuple[tuple[str, str], ...] = ()
    total: int | None = 0


def choose_agreement_note(found: AccountAgreements) -> str:
    """Beside a guessed row left unbilled because the person must pick one of its
    account's agreements: how many there are, and what to do."""
    ask = f"choose the one that carries the {CHARGES}, then tick Billing"
    if found.total is None:
        return f"The agreements could not be read from Tigerpaw: {ask}"
    if len(found.running) > 1:
        return f"{len(found.running)} agreements in Tigerpaw: {ask}"
    return f"{plural(found.total, 'agreement')} in Tigerpaw, none running: {ask}"


@dataclass(frozen=True)
class GuessedRows:
    """What filling the best guesses did: the rows filled, which of them had
    billing switched off because their account has no agreement, and which were
    left unbilled until the person picks one of several (with the words to say)."""

    filled: list[int]
    without_agreement: set[int]
    choose_agreement: dict[int, str] = field(default_factory=dict)


def fill_best_guesses(
    rows: Sequence[Tenant],
    suggestions: Mapping[int, Candidate],
    labels: Mapping[int, str],
    values: dict[str, str],
    agreements_of: Callable[[int], AccountAgreements],
) -> GuessedRows:
    """Put each row's best guess into its blank account box, in ``values`` (the
    form's fields); nothing is saved.

    A guess never leaves a row that cannot be saved: the agreement is filled in
    when the guessed account has exactly one running; otherwise billing is
    switched off, since a billed row without an agreement is refused (an account
    with none at all says so; one with several asks the person to choose). A row
    whose box holds anything, even a different account, keeps it.
    """
    filled: list[int] = []
    without: set[int] = set()
    choose: dict[int, str] = {}
    for tenant in rows:
        guess = suggestions.get(tenant.id)
        box = f"account-{tenant.id}"
        if guess is None or values.get(box, "").strip():
            continue

        values[box] = labels.get(guess.number, account_label(guess.number, guess.name))
        filled.append(tenant.id)
        agreement = f"agreement-{tenant.id}"
        if values.get(agreement):
            continue

        found = agreements_of(guess.number)
        if len(found.running) == 1:
            values[agreement] = found.running[0][0]
            continue
        values[agreement] = ""
        values.pop(f"billing-{tenant.id}", None)
        if found.total == 0:
            without.add(tenant.id)
        else:
            choose[tenant.id] = choose_agreement_note(found)
    return GuessedRows(filled, without, choose)


def mapping_unchanged(
    tenant: Tenant, account: Candidate | None, choice: MappingChoice
) -> bool:
    """Whether a row says what the tenant's mapping holds already (so a page saved
    again writes nothing and asks Tigerpaw for nothing)."""
    current = tenant.mapping
    if account is None or current is None:
        return account is None and current is None
    agreement = str(current.agreement_number) if current.agreement_number else ""
    return (
        current.account_number == account.number
        and current.account_name == account.name
        and agreement == choice.agreement.strip()
        and current.billing == choice.billing
        and current.service_orders == choice.service_orders
    )
