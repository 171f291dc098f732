"""The sync's buttons and the billing preview that a person approves."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for

from agent.sync.preview import approve_billing, billing_preview
from agent.web.pages import blueprint, current_agent, plural, setup_service

logger = logging.getLogger(__name__)


def scheduler() -> Any:
    """The agent's sync scheduler; 503 while the agent runs none."""
    found = getattr(current_agent(), "scheduler", None)
    if found is None:
        abort(503, "The sync is not running in this agent yet: restart the agent.")
    return found


@blueprint.post("/sync")
def sync_now() -> Any:
    """Start a sync cycle now."""
    integration_id = request.form.get("integration") or None
    if integration_id is not None:
        setup_service().integration(integration_id)
    scheduler().sync_now(integration_id)
    flash("A sync cycle was started. The dashboard shows its results as they come.")
    return redirect(url_for("pages.home"))


@blueprint.post("/sync/pause")
def sync_pause() -> Any:
    """Pause the scheduled runs (a cycle under way finishes its current step)."""
    scheduler().pause()
    flash(
        "Scheduled syncs are paused until you resume them; Sync now and test "
        "service orders still write to Tigerpaw when you press them."
    )
    return redirect(url_for("pages.home"))


@blueprint.post("/sync/resume")
def sync_resume() -> Any:
    """Resume the scheduled runs."""
    scheduler().resume()
    flash("The sync runs again on its schedule.")
    return redirect(url_for("pages.home"))


@blueprint.post("/notices/<notice_id>/dismiss")
def dismiss_notice(notice_id: str) -> Any:
    """Hide a piece of news from the banner, then show the page it was on."""
    current_agent().dismiss_notice(notice_id)

    back = request.form.get("next", "")
    # Only a path of this page: never an address elsewhere ("//host" included).
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        back = url_for("pages.home")
    return redirect(back)


@blueprint.post("/api/sync")
def api_sync() -> Any:
    """Start a sync cycle now, for scripts."""
    scheduler().sync_now()
    return jsonify({"started": True}), 202


@blueprint.route("/integrations/<integration_id>/billing", methods=["GET", "POST"])
def billing_page(integration_id: str) -> Any:
    """Per account, the charges the next run would set; approve before the first."""
    agent = current_agent()
    service = setup_service()
    integration = service.integration(integration_id)
    problem = ""

    if request.method == "POST":
        wanted = {int(t) for t in request.form.getlist("approve") if t.isdigit()}
        # Only accounts with billing on: the approval is of the charges written.
        held = {
            t.id
            for t in service.store.list_tenants(integration_id)
            if t.mapping and t.mapping.billing
        }
        chosen = sorted(wanted & held)
        for tenant_id in chosen:
            approve_billing(service.store, tenant_id)
        if chosen:
            their = "its" if len(chosen) == 1 else "their"
            flash(
                f"Approved the billing of {plural(len(chosen), 'account')}: the next "
                f"billing run writes {their} charges."
            )
            return redirect(
                url_for("pages.billing_page", integration_id=integration_id)
            )
        problem = (
            "The accounts you ticked are no longer mapped here with billing on: "
            "tick the accounts below again, then press Approve the ticked accounts."
            if wanted
            else "Tick at least one account whose charges you approve, then press "
            "Approve the ticked accounts."
        )

    previews = billing_preview(
        service.store,
        service.secrets,
        lambda: agent.config.settings,
        integration_id,
    )
    return render_template(
        "billing.html", integration=integration, previews=previews, problem=problem
    ), (400 if problem else 200)
