"""The page's views: the first page, the log and the status API."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from flask import Blueprint, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from agent.logs import LEVELS

if TYPE_CHECKING:
    from agent.app import Agent

blueprint = Blueprint("pages", __name__)


def current_agent() -> Agent:
    """The agent this page belongs to."""
    return cast("Agent", current_app.extensions["agent"])


@blueprint.get("/")
def home() -> str:
    """The first page: what the agent is doing and, in the sandbox, test credentials."""
    agent = current_agent()
    return render_template(
        "home.html", status=agent.status(), sandbox=agent.sandbox_description
    )


@blueprint.get("/log")
def log_page() -> str:
    """The recent log, filtered by level."""
    level_name = request.args.get("level", "Info")
    level = LEVELS.get(level_name, logging.INFO)
    records = current_agent().recent_log.snapshot(level)
    return render_template(
        "log.html", records=records[-500:], level=level_name, levels=list(LEVELS)
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
