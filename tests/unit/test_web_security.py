"""The page's guards: launch token, session, CSRF, Host and Origin."""

from __future__ import annotations

import pytest
from flask import Flask, render_template_string

from agent.web import security

TOKEN = "launch-token-for-tests"
PORT = 47999
HOST = f"127.0.0.1:{PORT}"


@pytest.fixture
def client():
    app = Flask(__name__)
    security.install(app, TOKEN, PORT)

    @app.get("/")
    def page() -> str:
        return render_template_string("<form>{{ csrf_token() }}</form>")

    @app.post("/save")
    def save() -> str:
        return "saved"

    return app.test_client()


def open_session(client) -> str:
    """Open a session with the launch token and return its CSRF token."""
    reply = client.get(f"/?token={TOKEN}", headers={"Host": HOST})
    assert reply.status_code == 302
    page = client.get("/", headers={"Host": HOST})
    return page.get_data(as_text=True).removeprefix("<form>").removesuffix("</form>")


def test_no_token_is_refused(client) -> None:
    reply = client.get("/", headers={"Host": HOST})
    assert reply.status_code == 403


def test_wrong_token_is_refused(client) -> None:
    assert client.get("/?token=nope", headers={"Host": HOST}).status_code == 403


def test_launch_token_opens_a_session_and_leaves_the_address(client) -> None:
    reply = client.get(f"/?token={TOKEN}", headers={"Host": HOST})
    assert reply.status_code == 302
    assert "token" not in reply.headers["Location"]
    assert client.get("/", headers={"Host": HOST}).status_code == 200
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_bearer_token_works_for_scripts(client) -> None:
    headers = {"Host": HOST, "Authorization": f"Bearer {TOKEN}"}
    assert client.get("/", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "host", [f"rebind.example:{PORT}", "127.0.0.1:1", f"127.0.0.1.nip.io:{PORT}", ""]
)
def test_foreign_host_is_refused_even_with_the_token(client, host: str) -> None:
    headers = {"Host": host, "Authorization": f"Bearer {TOKEN}"}
    assert client.get("/", headers=headers).status_code == 403


def test_localhost_name_is_ours(client) -> None:
    headers = {"Host": f"localhost:{PORT}", "Authorization": f"Bearer {TOKEN}"}
    assert client.get("/", headers=headers).status_code == 200


def test_post_needs_the_csrf_token(client) -> None:
    csrf = open_session(client)
    assert client.post("/save", headers={"Host": HOST}).status_code == 403
    bad = client.post("/save", headers={"Host": HOST}, data={"csrf_token": "x"})
    assert bad.status_code == 403
    good = client.post("/save", headers={"Host": HOST}, data={"csrf_token": csrf})
    assert good.status_code == 200


def test_post_from_another_origin_is_refused(client) -> None:
    csrf = open_session(client)
    headers = {"Host": HOST, "Origin": "http://evil.example"}
    reply = client.post("/save", headers=headers, data={"csrf_token": csrf})
    assert reply.status_code == 403
    same = {"Host": HOST, "Origin": f"http://{HOST}"}
    assert (
        client.post("/save", headers=same, data={"csrf_token": csrf}).status_code == 200
    )


def test_responses_forbid_framing_and_caching(client) -> None:
    reply = client.get("/", headers={"Host": HOST, "Authorization": f"Bearer {TOKEN}"})
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["Cache-Control"] == "no-store"
