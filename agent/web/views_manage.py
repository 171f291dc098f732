"""An integration's properties: edit (re-checked), delete, tenants, test orders."""

from __future__ import annotations

import logging
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from agent.errors import ConfigError, RemoteError, SetupError
from agent.store import KBH
from agent.store.records import TENANT_LABELS
from agent.web import forms
from agent.web.pages import (
    blueprint,
    current_agent,
    draft_id,
    error_report,
    plural,
    remember_draft,
    setup_service,
    tigerpaw_error_field,
)
from agent.web.views_setup import (
    _connect_and_continue,
    connect_values,
    render_connect,
    render_integration,
    uploaded_certificate,
    uploaded_certificate_name,
)

logger = logging.getLogger(__name__)


@blueprint.get("/integrations/<integration_id>")
def integration_page(integration_id: str) -> Any:
    """An integration's properties: connection, Tigerpaw, tenants, actions."""
    service = setup_service()
    integration = service.integration(integration_id)
    return render_template(
        "integration.html",
        integration=integration,
        tenants=service.store.list_tenants(integration_id),
        kept=service.secrets_set(integration_id),
        label=TENANT_LABELS[integration.source],
        is_kbh=integration.source == KBH,
    )


@blueprint.route("/integrations/<integration_id>/connection", methods=["GET", "POST"])
def edit_connection(integration_id: str) -> Any:
    """Edit how the agent reaches the console; saved only after a new check."""
    service = setup_service()
    integration = service.integration(integration_id)
    if request.method == "GET":
        return render_connect(connect_values(integration), {}, editing=integration)

    certificate = uploaded_certificate()
    name = uploaded_certificate_name()
    result = forms.read_connect(
        request.form,
        certificate,
        certificate_name=name,
        has_certificate=bool(integration.ksc_certificate_path),
        kept_secrets=frozenset(service.secrets_set(integration_id)),
        source_fixed=integration.source,
    )
    if not result.ok:
        return render_connect(
            result.values, result.errors, editing=integration, status=400
        )
    draft = service.begin(
        result.parsed,
        certificate=certificate,
        certificate_name=name,
        editing=integration_id,
    )
    remember_draft(draft.id)
    return _connect_and_continue(
        draft.id, result.values, integration.source, editing=integration
    )


@blueprint.route("/integrations/<integration_id>/tigerpaw", methods=["GET", "POST"])
def edit_tigerpaw(integration_id: str) -> Any:
    """Edit the name and Tigerpaw settings; saved only after both APIs answer."""
    service = setup_service()
    integration = service.integration(integration_id)
    if request.method == "GET":
        values = {
            "platform": integration.platform,
            "name": integration.name,
            "api_url": integration.tigerpaw_url,
            "soap_user": integration.tigerpaw_soap_user,
            "public_key": integration.tigerpaw_public_key,
        }
        return render_integration(values, {}, editing=integration)

    kept = frozenset(service.secrets_set(integration_id))
    result = forms.read_tigerpaw(request.form, kept_secrets=kept)
    if not result.ok:
        return render_integration(
            result.values, result.errors, editing=integration, status=400
        )
    try:
        service.update_tigerpaw(integration_id, result.parsed)
    except (RemoteError, SetupError) as err:
        field = tigerpaw_error_field(err)
        return render_integration(
            result.values,
            {field: str(err)} if field else {},
            problem=error_report(err),
            editing=integration,
            status=400,
        )
    flash("Tigerpaw answered and the settings are saved.")
    return redirect(url_for("pages.integration_page", integration_id=integration_id))


@blueprint.route("/integrations/<integration_id>/delete", methods=["GET", "POST"])
def delete_integration(integration_id: str) -> Any:
    """Remove an integration after asking; nothing in Tigerpaw is deleted."""
    service = setup_service()
    integration = service.integration(integration_id)
    if request.method == "GET":
        count = len(service.store.list_tenants(integration_id))
        return render_template(
            "confirm.html",
            title=f"Remove the integration {integration.name}?",
            lines=[
                f"The agent stops syncing its "
                f"{plural(count, TENANT_LABELS[integration.source])} and forgets "
                "its settings, passwords and keys.",
                "Nothing is deleted in Tigerpaw (accounts, agreements, charges and "
                "service orders stay) or in Kaspersky.",
            ],
            action=url_for("pages.delete_integration", integration_id=integration_id),
            button="Remove integration",
            cancel=url_for("pages.integration_page", integration_id=integration_id),
        )

    service.delete_integration(integration_id)
    if draft_id() == integration_id:
        remember_draft(None)
    flash(f"The integration {integration.name} is removed. Tigerpaw is unchanged.")
    return redirect(url_for("pages.home"))


@blueprint.route("/tenants/<int:tenant_id>/remove", methods=["GET", "POST"])
def remove_tenant(tenant_id: int) -> Any:
    """Take a server or company out of its integration after asking."""
    service = setup_service()
    tenant = service.store.get_tenant(tenant_id)
    if tenant is None:
        flash("That server or company was already removed.")
        return redirect(url_for("pages.home"))
    back = url_for("pages.integration_page", integration_id=tenant.integration_id)
    if request.method == "GET":
        account = (
            f" from Tigerpaw account {tenant.mapping.account_name}"
            if tenant.mapping
            else ""
        )
        return render_template(
            "confirm.html",
            title=f"Remove the {tenant.label} {tenant.name}?",
            lines=[
                f"The agent stops syncing {tenant.name} and unlinks it{account}.",
                "Nothing is deleted in Tigerpaw or in Kaspersky; you can add it again "
                "later.",
            ],
            action=url_for("pages.remove_tenant", tenant_id=tenant_id),
            button=f"Remove {tenant.label}",
            cancel=back,
        )

    service.remove_tenant(tenant_id)
    flash(f"{tenant.name} is removed from the integration. Tigerpaw is unchanged.")
    return redirect(back)


@blueprint.post("/tenants/<int:tenant_id>/test-order")
def test_order(tenant_id: int) -> Any:
    """Open a test service order on the tenant's account."""
    service = setup_service()
    try:
        number = service.create_test_order(tenant_id)
    except (RemoteError, SetupError) as err:
        flash(f"No test service order was created: {err}", "error")
    else:
        flash(f"Test service order {number} was created in Tigerpaw.")
    return redirect(request.form.get("next") or url_for("pages.home"))


@blueprint.route("/settings", methods=["GET", "POST"])
def config_page() -> Any:
    """The config file's settings: edited here, written back to the file."""
    agent = current_agent()
    current = agent.config.settings.as_dict()
    # Problems the file has now: a bad value is shown beside its field, anything
    # else (a misspelt key, broken markup) below the form.
    broken: dict[str, str] = {}
    elsewhere: list[str] = []
    for problem in agent.config.errors:
        if problem.key in current and problem.key not in broken:
            broken[problem.key] = str(problem)
        else:
            elsewhere.append(str(problem))
    values: dict[str, Any] = dict(current)
    errors: dict[str, str] = {}
    if request.method == "POST":
        # A key whose value in the file is bad must be written even when the form
        # shows the value last in force, or saving could never repair it.
        baseline = {k: v for k, v in current.items() if k not in broken}
        result = forms.read_config(request.form, baseline)
        values, errors = result.values, result.errors
        if result.ok and result.parsed:
            try:
                agent.config.write(result.parsed)
            except ConfigError as err:
                errors[err.key if err.key in current else "file"] = str(err)
            else:
                flash(
                    "Saved to the config file: "
                    + ", ".join(f"{k} = {v}" for k, v in result.parsed.items())
                )
                return redirect(url_for("pages.config_page"))
        elif result.ok:
            flash("Nothing changed.")
            return redirect(url_for("pages.config_page"))

    return render_template(
        "config.html",
        values=values,
        errors=errors,
        field_errors={**broken, **errors},
        file_problems=elsewhere,
        path=str(agent.options.config_path),
        config_error=agent.config.error,
    ), (400 if errors else 200)
