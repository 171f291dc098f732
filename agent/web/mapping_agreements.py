"""The mapping grid's agreements read from Tigerpaw: the one a best guess fills in,
and the names of those a posted page chose."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from agent.errors import RemoteError
from agent.setup_grid import number_in_label
from agent.setup_tenants import MappingView, agreement_title
from agent.web.pages import setup_service

logger = logging.getLogger(__name__)


def sole_running_agreement(integration_id: str, account_number: int) -> str | None:
    """The number of an account's only running agreement, "" (several, none
    running, or Tigerpaw cannot be read now: the person then picks one), or None
    when the account has no agreement at all."""
    try:
        agreements = setup_service().agreements(integration_id, account_number)
    except RemoteError as err:
        logger.info("Agreements of account %s not read: %s", account_number, err)
        return ""

    if not agreements:
        return None
    running = [a for a in agreements if a.active_at(dt.datetime.now(dt.UTC))]
    return str(running[0].number) if len(running) == 1 else ""


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
