"""Who may use the page: launch token, session cookie, CSRF token, Host and Origin.

The page listens on 127.0.0.1 only, but any web site the technician visits can make
the browser send requests there. So every request must name our own host (against DNS
rebinding), every state change must come from our own origin with the form's CSRF
token, and nothing is served without the launch token or the session it opened.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import Flask, Request, abort, current_app, redirect, request, session
from werkzeug.wrappers import Response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: Paths any local browser may read without the token: the icon holds nothing private.
PUBLIC_PATHS = frozenset({"/favicon.ico"})


def allowed_hosts(port: int) -> frozenset[str]:
    """The Host header values a browser sends for our own page."""
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def host_is_ours(req: Request, port: int) -> bool:
    """Whether the Host header names our page (not a rebound domain)."""
    return (req.host or "").lower() in allowed_hosts(port)


def origin_is_ours(req: Request, port: int) -> bool:
    """Whether Origin (or, lacking it, Referer) is our page or absent."""
    source = req.headers.get("Origin") or req.headers.get("Referer")
    if not source:
        return True
    if source == "null":
        return False
    return urlsplit(source).netloc.lower() in allowed_hosts(port)


def bearer_token(req: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    header = req.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def tokens_match(given: str | None, expected: str) -> bool:
    """Compare secrets in constant time."""
    return given is not None and hmac.compare_digest(given, expected)


def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return str(session[CSRF_FIELD])


def set_port(app: Flask, port: int) -> None:
    """Tell the guards which port the page listens on, once the server knows it."""
    app.config["AGENT_PORT"] = port
    # Cookies are shared by every port of a host: name ours after the port.
    app.config["SESSION_COOKIE_NAME"] = f"agent_session_{port}"


def install(app: Flask, launch_token: str, port: int = 0) -> None:
    """Guard every request of ``app`` and set safe response headers."""
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    set_port(app, port)
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def guard() -> Response | None:
        port = current_app.config["AGENT_PORT"]
        if not host_is_ours(request, port):
            abort(403, "This page answers only to 127.0.0.1 and localhost.")
        if request.method not in SAFE_METHODS and not origin_is_ours(request, port):
            abort(403, "Requests from other sites are refused.")

        if request.path in PUBLIC_PATHS and request.method in SAFE_METHODS:
            return None
        if tokens_match(bearer_token(request), launch_token):
            return None
        if tokens_match(request.args.get("token"), launch_token):
            session.clear()
            session["authenticated"] = True
            # Drop the token from the address bar, history and Referer headers.
            return redirect(request.path) if request.method == "GET" else None
        if not session.get("authenticated"):
            abort(
                403,
                "Open the page from the tray icon's Open settings, or use the address "
                "with the token that the agent printed when it started.",
            )
        if request.method not in SAFE_METHODS:
            sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
            if not tokens_match(sent, csrf_token()):
                abort(403, "The form has expired: reload the page and try again.")
        return None

    @app.after_request
    def harden(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # "no-referrer" would make Chromium send "Origin: null" on our own form
        # posts; "same-origin" still tells other sites nothing.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response
