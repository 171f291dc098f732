"""The local setup page and status API: a Flask app served by waitress."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

from agent.web import security, views

if TYPE_CHECKING:
    from agent.app import Agent


def create_app(agent: Agent, port: int = 0) -> Flask:
    """The page's Flask app, guarded by the agent's launch token."""
    app = Flask(__name__)
    app.extensions["agent"] = agent
    security.install(app, agent.token, port)
    # The newest notices a person must act on, as the tray shows them.
    app.jinja_env.globals["notices"] = agent.current_notices
    app.register_blueprint(views.blueprint)
    return app
