"""The setup steps: connect, create integration, add servers or companies, map."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for

from agent.errors import CertificateNotTrusted, RemoteError, SetupError
from agent.setup_grid import (
    NO_AGREEMENT_NOTE,
    GridQuery,
    fill_best_guesses,
)
from agent.setup_tenants import MappingSave, MappingView, agreement_title
from agent.store import (
    DEFAULT_INTEGRATION_NAME,
    KBH,
    KSC,
    PLATFORM,
    IntegrationSettings,
)
from agent.web import forms
from agent.web.mapping_agreements import (
    agreement_options,
    agreements_for_guess,
    posted_agreement_names,
)
from agent.web.pages import (
    blueprint,
    connect_error_field,
    current_agent,
    draft_id,
    error_report,
    plural,
    remember_draft,
    setup_service,
    tigerpaw_error_field,
)

logger = logging.getLogger(__name__)

CERTIFICATE_FIELD = "certificate"
#: The longest search the mapping grid takes (a part of a name).
SEARCH_LIMIT = 200


def uploaded_certificate() -> bytes | None:
    """The klserver.cer sent with the form, if a file was chosen."""
    upload = request.files.get(CERTIFICATE_FIELD)
    if upload is None or not upload.filename:
        return None
    return upload.read(forms.CERTIFICATE_LIMIT + 1)


def uploaded_certificate_name() -> str:
    """The name of the file chosen as klserver.cer, as the person knows it ("" if
    none): its last part only, as browsers may send a whole path."""
    upload = request.files.get(CERTIFICATE_FIELD)
    if upload is None or not upload.filename:
        return ""
    name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]
    return forms.printable(name)[:120]


def render_connect(
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    problem: dict[str, Any] | None = None,
    editing: Any = None,
    status: int = 200,
) -> Any:
    """The first page, with what was typed and what to fix."""
    service = setup_service()
    draft = service.drafts.get(draft_id())
    kept = service.secrets_set(editing.id) if editing is not None else set()
    has_certificate = bool(
        (draft and draft.settings.ksc_certificate_path)
        or (editing is not None and editing.ksc_certificate_path)
    )
    return (
        render_template(
            "setup_connect.html",
            values=values,
            errors=errors,
            problem=problem,
            editing=editing,
            kept=kept,
            has_certificate=has_certificate,
            certificate_name=draft.certificate_name if draft else "",
            sandbox=current_agent().sandbox_description,
            kes_cloud_server=service.kes_cloud_server(),
            kbh_address_known=service.kbh_address_known(),
            proxy_port=forms.PROXY_PORT,
            step="connect",
        ),
        status,
    )


@blueprint.route("/setup/connect", methods=["GET", "POST"])
def connect() -> Any:
    """Step 1: choose the solution and connect to it."""
    service = setup_service()
    if request.method == "GET":
        if request.args.get("new"):
            remember_draft(None)
        draft = service.drafts.get(draft_id())
        values = connect_values(draft.settings) if draft and not draft.editing else {}
        values.setdefault("source", KSC)
        return render_connect(values, {})

    certificate = uploaded_certificate()
    draft = service.drafts.get(draft_id())
    name = uploaded_certificate_name()
    result = forms.read_connect(
        request.form,
        certificate,
        has_certificate=bool(draft and draft.settings.ksc_certificate_path),
        certificate_name=name,
    )
    if not result.ok:
        return render_connect(result.values, result.errors, status=400)

    new_draft = service.begin(
        result.parsed,
        certificate=certificate,
        certificate_name=name,
        draft_id=draft_id(),
    )
    remember_draft(new_draft.id)
    return _connect_and_continue(new_draft.id, result.values, result.parsed.source)


def _connect_and_continue(
    draft: str, values: dict[str, Any], source: str, editing: Any = None
) -> Any:
    """Connect with a draft: on to the next step, the certificate, or the error."""
    service = setup_service()
    try:
        service.connect(draft)
    except CertificateNotTrusted:
        return redirect(url_for("pages.certificate"))
    except (RemoteError, SetupError) as err:
        field = connect_error_field(err, source)
        errors = {field: str(err)} if field else {}
        return render_connect(
            values, errors, problem=error_report(err), editing=editing, status=400
        )

    if editing is not None:
        service.apply_connection(draft)
        remember_draft(None)
        flash("The connection was checked and saved.")
        return redirect(url_for("pages.integration_page", integration_id=editing.id))
    return redirect(url_for("pages.create_integration"))


@blueprint.route("/setup/certificate", methods=["GET", "POST"])
def certificate() -> Any:
    """An unknown KSC certificate: show its fingerprint to trust or refuse."""
    service = setup_service()
    draft = service.draft(draft_id())
    if request.method == "GET":
        if not draft.pending_fingerprint:
            return redirect(url_for("pages.connect"))
        return render_template("setup_certificate.html", draft=draft, step="connect")

    if request.form.get("decision") != "trust":
        service.refuse_certificate(draft.id)
        flash(
            "The certificate was refused: nothing was trusted. Choose the server's "
            "klserver.cer with Use a certificate, or check the address."
        )
        if draft.editing:
            return redirect(
                url_for("pages.integration_page", integration_id=draft.editing)
            )
        return redirect(url_for("pages.connect"))

    editing = service.integration(draft.editing) if draft.editing else None
    try:
        service.trust_certificate(draft.id, request.form.get("fingerprint", ""))
    except (RemoteError, SetupError) as err:
        source = draft.settings.source
        field = connect_error_field(err, source)
        return render_connect(
            connect_values(draft.settings),
            {field: str(err)} if field else {},
            problem=error_report(err),
            editing=editing,
            status=400,
        )
    if editing is not None:
        service.apply_connection(draft.id)
        remember_draft(None)
        flash("The certificate is trusted and the connection saved.")
        return redirect(url_for("pages.integration_page", integration_id=editing.id))
    return redirect(url_for("pages.create_integration"))


def connect_values(settings: IntegrationSettings) -> dict[str, Any]:
    """Connection settings (a draft's or a saved integration's) as the first page's
    fields, without secrets."""
    return {
        "source": settings.source,
        "ksc_address": settings.ksc_address,
        "ksc_user": settings.ksc_user,
        "use_certificate": "on" if settings.ksc_certificate_path else "",
        "use_proxy": "on" if settings.proxy_address else "",
        "proxy_address": settings.proxy_address,
        "proxy_user": settings.proxy_user,
        "kbh_email": settings.kbh_email,
    }


def render_integration(
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    problem: dict[str, Any] | None = None,
    editing: Any = None,
    status: int = 200,
) -> Any:
    """Step 2's page, or the edit of an integration's Tigerpaw settings."""
    service = setup_service()
    if editing is None:
        draft = service.draft(draft_id())
        source, shown_id, kept = draft.settings.source, draft.id, set()
    else:
        source, shown_id = editing.source, editing.id
        kept = service.secrets_set(editing.id)
    return (
        render_template(
            "setup_integration.html",
            values=values,
            errors=errors,
            problem=problem,
            editing=editing,
            integration_id=shown_id,
            kept=kept,
            is_kbh=source == KBH,
            platform=PLATFORM,
            hosted_url=service.hosted_tigerpaw_url(),
            sandbox=current_agent().sandbox_description,
            step="integration",
        ),
        status,
    )


@blueprint.route("/setup/integration", methods=["GET", "POST"])
def create_integration() -> Any:
    """Step 2: name the integration and check Tigerpaw; then save it."""
    service = setup_service()
    draft = service.draft(draft_id())
    if not draft.connected or draft.editing:
        return redirect(url_for("pages.connect"))
    if request.method == "GET":
        values = {
            "platform": PLATFORM,
            "name": DEFAULT_INTEGRATION_NAME
            if not service.store.find_integration(DEFAULT_INTEGRATION_NAME)
            else "",
            "api_url": service.default_tigerpaw_url(),
        }
        return render_integration(values, {})

    result = forms.read_tigerpaw(request.form)
    if not result.ok:
        return render_integration(result.values, result.errors, status=400)
    try:
        created = service.create_integration(draft.id, result.parsed)
    except (RemoteError, SetupError) as err:
        field = tigerpaw_error_field(err)
        return render_integration(
            result.values,
            {field: str(err)} if field else {},
            problem=error_report(err),
            status=400,
        )

    remember_draft(None)
    flash(f"The integration {created.integration.name} is saved.")
    missing = created.check.not_cross_referenced
    if missing:
        are = "is" if len(missing) == 1 else "are"
        flash(
            f"{plural(len(missing), 'Tigerpaw account')} {are} not cross-referenced "
            "to the SOAP user's external product, so billing cannot reach them: "
            + ", ".join(a.name for a in missing[:10])
            + ". Assign the external product to each in Tigerpaw.",
            "warning",
        )
    return redirect(
        url_for("pages.add_tenants", integration_id=created.integration.id, setup=1)
    )


@blueprint.route("/integrations/<integration_id>/add", methods=["GET", "POST"])
def add_tenants(integration_id: str) -> Any:
    """Step 3: tick the virtual servers or companies to add."""
    service = setup_service()
    integration = service.integration(integration_id)
    refresh = bool(request.args.get("refresh"))
    available = service.available_tenants(integration_id, refresh=refresh)
    chosen = request.form.getlist("tenants")
    error = ""
    if request.method == "POST":
        try:
            service.add_tenants(integration_id, chosen)
        except SetupError as err:
            error = str(err)
        else:
            return redirect(
                url_for(
                    "pages.mapping",
                    integration_id=integration_id,
                    setup=request.args.get("setup"),
                )
            )

    return render_template(
        "setup_tenants.html",
        integration=integration,
        available=available,
        chosen=set(chosen),
        error=error,
        is_kbh=integration.source == KBH,
        setup=bool(request.args.get("setup")),
        step="tenants",
    ), (400 if error else 200)


def mapping_saved_message(
    service: Any, integration_id: str, billing_off: list[str] | None = None
) -> str:
    """What was saved, in words: how many are mapped, and what is left to do."""
    tenants = service.store.list_tenants(integration_id)
    mapped = sum(1 for tenant in tenants if tenant.mapping is not None)
    if mapped == len(tenants):
        said = f"The account mapping is saved: all {mapped} are mapped."
    else:
        said = (
            f"The account mapping is saved: {mapped} of {len(tenants)} are mapped. "
            "The others are not synced until you pick their account (the "
            '"Use ..." buttons offer a best guess).'
        )
    if billing_off:
        said += f" Billing is off for {', '.join(billing_off)}: {NO_AGREEMENT_NOTE}."
    return said


def grid_query(values: Mapping[str, Any], *, shown: bool = False) -> GridQuery:
    """The grid's search and page from the address (or, with ``shown``, the rows a
    posted form showed, from its hidden fields)."""
    text_key, filter_key = ("shown_q", "shown_unmapped") if shown else ("q", "unmapped")
    page = str(values.get("page", "") or "")
    tenant = str(values.get("tenant", "") or "")
    return GridQuery(
        text=" ".join(str(values.get(text_key, "") or "").split())[:SEARCH_LIMIT],
        unmapped_only=bool(values.get(filter_key)),
        page=int(page) if page.isdigit() else 1,
        tenant=int(tenant) if tenant.isdigit() and not shown else None,
    )


def grid_address(
    integration_id: str, query: GridQuery, *, page: int = 1, tenant: int | None = None
) -> str:
    """The mapping page's address for a search and a page (or the row to show)."""
    return url_for(
        "pages.mapping",
        integration_id=integration_id,
        setup=request.args.get("setup") or None,
        q=query.text or None,
        unmapped=1 if query.unmapped_only else None,
        page=page if page > 1 and tenant is None else None,
        tenant=tenant,
    )


def after_saving(integration_id: str, view: MappingView, saved: MappingSave) -> Any:
    """Where the grid goes once a page is saved: the dashboard (Proceed), the
    results of a new search, or the next or previous page."""
    move = request.form.get("go", "done")
    message = mapping_saved_message(setup_service(), integration_id, saved.billing_off)
    if move == "done":
        flash(message)
        return redirect(url_for("pages.home"))
    if saved.changed:
        flash(message)

    shown, wanted = view.grid.query, grid_query(request.form)
    if (shown.text, shown.unmapped_only) != (wanted.text, wanted.unmapped_only):
        return redirect(grid_address(integration_id, wanted))
    anchor = {"next": view.grid.next_anchor, "previous": view.grid.previous_anchor}
    if anchor.get(move) is not None:
        # By row, not by number: rows saved under "without an account" leave
        # that list, and the page numbers after them move up.
        return redirect(grid_address(integration_id, shown, tenant=anchor[move]))
    return redirect(grid_address(integration_id, shown, page=view.grid.number))


@blueprint.route("/integrations/<integration_id>/accounts", methods=["GET", "POST"])
def mapping(integration_id: str) -> Any:
    """Step 4: map each server or company to a Tigerpaw account and agreement, a
    page of rows at a time."""
    service = setup_service()
    posting = request.method == "POST"
    query = (
        grid_query(request.form, shown=True) if posting else grid_query(request.args)
    )
    view = service.mapping_view(
        integration_id, refresh=bool(request.args.get("refresh")), query=query
    )
    errors: dict[int, str] = {}
    posted: dict[str, str] = {}
    guessed: list[int] = []
    without_agreement: set[int] = set()
    choose_agreement: dict[int, str] = {}
    if posting and request.form.get("go") == "guesses":
        # Only fills the boxes: the person checks them, and saving saves them.
        posted = forms.shown_values(request.form)
        filled = fill_best_guesses(
            view.grid.rows,
            view.suggestions,
            view.labels,
            posted,
            lambda number: agreements_for_guess(integration_id, number),
        )
        guessed, without_agreement = filled.filled, filled.without_agreement
        choose_agreement = filled.choose_agreement
    elif posting:
        # The rows this page showed are those whose account box was sent (a text
        # box is always sent, even blank); rows on other pages keep their mapping.
        ids = [t.id for t in view.tenants if f"account-{t.id}" in request.form]
        saved = service.save_mapping_rows(
            integration_id, forms.read_mappings(request.form, ids)
        )
        if not saved.errors:
            return after_saving(integration_id, view, saved)
        errors = saved.errors
        posted = forms.shown_values(request.form)

    return render_template(
        "setup_mapping.html",
        view=view,
        grid=view.grid,
        errors=errors,
        posted=posted,
        guessed=set(guessed),
        without_agreement=without_agreement,
        choose_agreement=choose_agreement,
        agreement_options=agreement_options(integration_id, choose_agreement, posted),
        no_agreement_note=NO_AGREEMENT_NOTE,
        agreement_names=posted_agreement_names(integration_id, view, posted),
        is_post=posting,
        # After a post the box shows the search the rows were found by: a search
        # typed but not run would hide rows the page speaks of (rows to fix).
        search=query.text,
        unmapped_only=query.unmapped_only,
        instant_filter=view.grid.pages == 1 and not view.grid.searched,
        setup=bool(request.args.get("setup")),
        step="accounts",
    ), (400 if errors else 200)


@blueprint.get("/integrations/<integration_id>/agreements")
def agreements_json(integration_id: str) -> Any:
    """An account's agreements as JSON, for the mapping grid's drop-downs."""
    number = request.args.get("account", "")
    if not number.isdigit():
        return jsonify({"error": "Name an account number"}), 400
    agreements = setup_service().agreements(integration_id, int(number))
    return jsonify(
        {
            "agreements": [
                {"number": a.number, "title": agreement_title(a)} for a in agreements
            ]
        }
    )
