"""The page's views: the dashboard (or the first setup step), the log, the status API.

The setup steps live in ``views_setup.py``, an integration's properties in
``views_manage.py``, its sync settings in ``views_choices.py`` and the sync buttons
and billing preview in ``views_sync.py``; all add routes to one blueprint.
"""

from __future__ import annotations

import functools
import io
import logging
from typing import Any

from flask import Response, jsonify, redirect, render_template, request, url_for
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
from agent.web.dashboard import add_dashboard_facts, dashboard_rows, sync_controls
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

#: The sizes in the page's icon file: browser tabs, bookmarks and high-DPI screens.
ICON_SIZES = (16, 32, 48)

#: Headings of the error page, for the codes a person may meet.
ERROR_HEADINGS = {
    400: "The page could not read this request",
    403: "Not allowed",
    404: "There is no page at this address",
    405: "This address takes only the page's own buttons",
    409: "This cannot be done now",
    500: "The agent hit an unexpected problem",
    503: "Not available yet",
}

#: What to do, for the codes whose standard description is written for developers.
ERROR_ADVICE = {
    404: "The link may be old, or the item was removed. Go back to the dashboard "
    "and follow its links.",
    405: "Go back to the dashboard and use the page's buttons and links.",
    500: "The Log page says what went wrong. Try again; if it happens again, send "
    "the log file from the agent's data folder to support.",
}


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
    """The agent's status as JSON, for the page, the tray and scripts; with what the
    dashboard shows too (writes waiting, what was last written per tenant)."""
    agent = current_agent()
    status = agent.status()
    if agent.store is not None:
        rows = dashboard_rows(agent.store, agent.store.list_integrations())
        add_dashboard_facts(status, rows)
    return jsonify(status)


@blueprint.get("/favicon.ico")
def favicon() -> Response:
    """The agent's icon for the browser's tab: the tray's picture (served without
    the launch token, which security.py allows for this one path)."""
    response = Response(icon_file(), mimetype="image/x-icon")
    # Browsers ask for it on every page unless they may keep it.
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@functools.cache
def icon_file() -> bytes:
    """The tray's "up to date" picture as an .ico file of several sizes."""
    from agent.tray.icons import draw_icon
    from agent.tray.state import TrayState

    images = [draw_icon(TrayState.OK, size) for size in ICON_SIZES]
    output = io.BytesIO()
    images[-1].save(
        output,
        format="ICO",
        sizes=[(size, size) for size in ICON_SIZES],
        append_images=images[:-1],
    )
    return output.getvalue()


@blueprint.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> Any:
    """Errors as JSON for the API and as a short page for people, in words."""
    if request.path.startswith("/api/"):
        return jsonify({"error": error.description}), error.code
    code = error.code or 500
    return render_template(
        "error.html",
        heading=ERROR_HEADINGS.get(code, "Something went wrong"),
        message=ERROR_ADVICE.get(code, error.description),
    ), code


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
