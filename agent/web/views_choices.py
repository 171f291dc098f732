"""An integration's sync settings: service orders and price book items."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import asdict, replace
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from agent.setup_choices import problem_rows
from agent.store import SEVERITY_LABELS, OrderRule, SyncChoices
from agent.store.choices import STATUS_LEVEL_LABELS, STATUS_LEVELS
from agent.sync.licenses import (
    CATEGORIES,
    CATEGORY_LABELS,
    MAILBOXES,
    price_book_item,
)
from agent.web import forms
from agent.web.pages import blueprint, setup_service

logger = logging.getLogger(__name__)

#: The categories a device application's devices split into when billed by
#: category (mailboxes are a per-user application's, which has one item).
DEVICE_CATEGORIES = tuple(c for c in CATEGORIES if c != MAILBOXES)


def choice_values(
    choices: SyncChoices,
    problems: Sequence[tuple[str, str]] = (),
    per_user: Collection[str] = (),
) -> dict[str, str]:
    """Saved choices as the settings form's fields.

    ``problems`` are the (word, description) rows of each device status section;
    an application in ``per_user`` shows in its one item row the item billing uses
    for its mailboxes.
    """
    values = {
        "rep": choices.rep,
        "new_status": choices.new_status,
        "closed_status": choices.closed_status,
        "bill_by_category": "on" if choices.bill_by_category else "",
    }
    rows = [(f"event-{k}", r) for k, r in choices.events.items()]
    for level in STATUS_LEVELS:
        for word, description in problems:
            # A row saved under the description in words shows on its word's row.
            rule = choices.status_rule(level, word, description)
            rows.append((f"status-{level}-{word}", rule or OrderRule()))
    for prefix, rule in rows:
        saved = asdict(rule)
        values[f"{prefix}-enabled"] = "on" if saved["enabled"] else ""
        values[f"{prefix}-priority"] = saved["priority"]
        values[f"{prefix}-type"] = saved["order_type"]
        values[f"{prefix}-board"] = saved["board"]
        values[f"{prefix}-lifetime"] = str(saved["lifetime_days"])

    for key, item in choices.price_book_items.items():
        values[f"item::{key}"] = item
    for product in per_user:
        # Saved before per-user applications had one row, a mailbox item wins.
        values[f"item::{product}"] = price_book_item(choices, product, MAILBOXES) or ""
    return values


@blueprint.route("/integrations/<integration_id>/settings", methods=["GET", "POST"])
def choices_page(integration_id: str) -> Any:
    """Service order rep, statuses and rules; price book item per license type."""
    service = setup_service()
    integration = service.integration(integration_id)
    refresh = bool(request.args.get("refresh"))
    lists = service.tigerpaw_lists(integration_id, refresh=refresh)
    licenses = service.license_types(integration_id, refresh=refresh)
    problems = problem_rows()
    saved = service.store.get_sync_choices(integration_id)
    values = choice_values(saved, problems, licenses.per_user)
    errors: dict[str, str] = {}

    if request.method == "POST":
        result = forms.read_choices(
            request.form,
            [word for word, _ in problems],
            licenses.products,
            list(DEVICE_CATEGORIES),
            licenses.per_user,
        )
        values, errors = result.values, result.errors
        if result.ok:
            service.save_choices(integration_id, result.parsed)
            flash(f"The settings of {integration.name} are saved.")
            return redirect(
                url_for("pages.choices_page", integration_id=integration_id)
            )

    return render_template(
        "choices.html",
        integration=integration,
        lists=lists,
        licenses=licenses,
        problems=problems,
        severities=SEVERITY_LABELS,
        status_sections=STATUS_LEVEL_LABELS,
        categories=[(c, CATEGORY_LABELS[c]) for c in DEVICE_CATEGORIES],
        values=values,
        errors=errors,
    ), (400 if errors else 200)


def default_rows(choices: SyncChoices) -> SyncChoices:
    """The choices with every event and device status row back to its default (off,
    lifetime 1, default priority, type and board); rep, statuses and items stay."""
    return replace(
        choices,
        events={severity: OrderRule() for severity in SEVERITY_LABELS},
        device_statuses={word: OrderRule() for word in choices.device_statuses},
    )


@blueprint.route(
    "/integrations/<integration_id>/settings/reset", methods=["GET", "POST"]
)
def reset_rows(integration_id: str) -> Any:
    """Put the event and device status rows back to their defaults, after asking."""
    service = setup_service()
    integration = service.integration(integration_id)
    back = url_for("pages.choices_page", integration_id=integration_id)
    if request.method == "GET":
        return render_template(
            "confirm.html",
            title=f"Reset the service order rows of {integration.name}?",
            lines=[
                "Every event row and every row of the Warning status and Critical "
                "status sections is switched off, with a lifetime of 1 day and the "
                "default priority, type and board.",
                "The service order rep, the statuses and the price book items stay "
                "as they are. Service orders already open in Tigerpaw are not touched.",
            ],
            action=url_for("pages.reset_rows", integration_id=integration_id),
            button="Reset to defaults",
            cancel=back,
        )

    saved = service.store.get_sync_choices(integration_id)
    service.save_choices(integration_id, default_rows(saved))
    logger.info("The service order rows of %s were reset", integration.id)
    flash(f"The service order rows of {integration.name} are back to their defaults.")
    return redirect(back)
