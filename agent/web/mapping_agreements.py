"""The mapping grid's agreements read from Tigerpaw: those a best guess weighs, the
choices shown with the page, and the names of those a posted page chose."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from agent.errors import RemoteError
from agent.setup_grid import AccountAgreements, number_in_label
from agent.setup_tenants import MappingView, agreement_title
from agent.web.pages import setup_service

logger = logging.getLogger(__name__)


def agreements_for_guess(integration_id: str, account_number: int) -> AccountAgreements:
    """An account's agreements as a best guess weighs them: the running ones, and
    how many in all (None when Tigerpaw cannot be read now: the person then
    picks one)."""
    try:
        agreements = setup_service().agreements(integration_id, account_number)
    except RemoteError as err:
        logger.info("Agreements of account %s not read: %s", account_number, err)
        return AccountAgreements(total=None)

    now = dt.datetime.now(dt.UTC)
    running = tuple(
        (str(a.number), agreement_title(a, now)) for a in agreements if a.active_at(now)
    )
    return AccountAgreements(running=running, total=len(agreements))


def agreement_options(
    integration_id: str, rows: Mapping[int, str], posted: Mapping[str, str]
) -> dict[str, list[tuple[str, str]]]:
    """The drop-down choices (number, title) of the rows a best guess asked the
    person to choose an agreement for, by tenant id, so that the page shows them
    at once instead of an empty list. Their agreements were read (and cached)
    just before, so this asks Tigerpaw nothing new."""
    options: dict[str, list[tuple[str, str]]] = {}
    for tenant_id in rows:
        number = number_in_label(posted.get(f"account-{tenant_id}", ""))
        if number is None:
            continue
        try:
            agreements = setup_service().agreements(integration_id, number)
        except RemoteError:
            continue
        options[str(tenant_id)] = [
            (str(a.number), agreement_title(a)) for a in agreements
        ]
    return options


def posted_agreement_names(
    integration_id: str, view: MappingView, posted: Mapping[str, str]
) -> dict[str, str]:
    """The titles (type and number) of the agreements a posted page names, by
    tenant id, so that a page shown again names them as the drop-down does."""
    names: dict[str, str] = {}
    for tenant in view.grid.rows:
        tid = str(tenant.id)
        chosen = posted.get(f"agreement-{tid}", "")
        number = number_in_label(posted.get(f"account-{tid}", ""))
        if not chosen or number is None:
            continue
        try:
            agreements = setup_service().agreements(integration_id, number)
        except RemoteError as err:
            logger.info("Agreements of account %s not read: %s", number, err)
            continue
        found = next((a for a in agreements if str(a.number) == chosen), None)
        if found is not None:
            names[tid] = agreement_title(found)
    return names
