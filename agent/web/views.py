"""The page's views: the dashboard (or the first setup step), the log, the status API.

The setup steps live in ``views_setup.py``, an integration's properties in
``views_manage.py``, its sync settings in ``views_choices.py`` and the sync buttons
and billing preview in ``views_sync.py``; all add routes to one blueprint.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from agent.errors import AgentError, RemoteError, SetupError
from agent.logs import LEVELS
from agent.web import (
    views_admins,
    views_choices,
    views_history,
    views_manage,
    views_setup,
    views_sync,
)
from agent.web.dashboard import dashboard_rows, sync_controls
from agent.web.pages import blueprint, current_agent, error_report, setup_service

__all__ = [
    "blueprint",
    "current_agent",
    "views_admins",
    "views_choices",
    "views_history",
    "views_manage",
    "views_setup",
    "views_sync",
]

logger = logging.getLogger(__name__)

#: The most log lines the page shows at once.
LOG_LINES = 500


@blueprint.get("/")
def home() -> Any:
    """The dashboard, or the first setup step while no integration exists."""
    agent = current_agent()
    service = setup_service()
    integrations = service.store.list_integrations()
    if not integrations:
        return redirect(url_for("pages.connect"))

    status = agent.status()
    return render_template(
        "dashboard.html",
        status=status,
        rows=dashboard_rows(service.store, integrations),
        sync=sync_controls(agent, status),
        sandbox=agent.sandbox_description,
    )


@blueprint.get("/log")
def log_page() -> str:
    """The recent log, filtered by level."""
    level_name = request.args.get("level", "Info")
    if level_name not in LEVELS:
        level_name = "Info"
    records = current_agent().recent_log.snapshot(LEVELS[level_name])
    return render_template(
        "log.html",
        records=records[-LOG_LINES:],
        level=level_name,
        levels=list(LEVELS),
        limit=LOG_LINES,
    )


@blueprint.get("/api/status")
def api_status() -> Any:
    """The agent's status as JSON, for the page, the tray and scripts."""
    return jsonify(current_agent().status())


@blueprint.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> Any:
    """Errors as JSON for the API and as a short page for people."""
    if request.path.startswith("/api/"):
        return jsonify({"error": error.description}), error.code
    return render_template("error.html", error=error), error.code


@blueprint.app_errorhandler(AgentError)
def agent_error(error: AgentError) -> Any:
    """A problem a page could not show beside a field: its words and a way back."""
    code = 502 if isinstance(error, RemoteError) else 409
    if isinstance(error, SetupError) and error.field == "draft":
        return redirect(url_for("pages.connect"))
    if request.path.startswith("/api/") or request.accept_mimetypes.best == (
        "application/json"
    ):
        return jsonify({"error": str(error)}), code
    logger.info("Page %s: %s", request.path, error)
    again = request.full_path if request.method == "GET" else None
    return (
        render_template("problem.html", problem=error_report(error), again=again),
        code,
    )
