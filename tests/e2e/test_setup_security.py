"""The setup page's guards against a real agent: token, CSRF, Host and Origin,
escaping of typed input, and no saved secret in any response.
"""

from __future__ import annotations

import base64
import re
import stat
from typing import Any

import pytest
import requests

from tests.agent_process import AgentProcess
from tests.browser import chromium_page
from tests.e2e.setup_helpers import integrations, shot, strip_sandbox_panel

LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")
HOSTILE_NAME = '<script>alert("name")</script> & "Quotes" <b>bold</b>'
HOSTILE_ACCOUNT = "<img src=x onerror=alert(1)>"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class PageSession:
    """A requests session signed in to the page like a browser."""

    def __init__(self, agent: AgentProcess) -> None:
        info = agent.agent_info()
        assert info is not None
        self.base = agent.base_url()
        self.http = requests.Session()
        self.http.trust_env = False
        reply = self.http.get(info["url"], timeout=10)
        assert reply.ok

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET a page."""
        return self.http.get(self.base + path, timeout=30, **kwargs)

    def csrf(self, path: str = "/setup/connect") -> str:
        """The CSRF token of a page's form."""
        found = CSRF.search(self.get(path).text)
        assert found, "the form carries a CSRF token"
        return found.group(1)

    def post(self, path: str, data: dict[str, Any], **kwargs: Any) -> requests.Response:
        """POST a form with the session's CSRF token, as the page's own form does."""
        data = {"csrf_token": self.csrf(), **data}
        headers = {"Origin": self.base, **kwargs.pop("headers", {})}
        return self.http.post(
            self.base + path, data=data, headers=headers, timeout=60, **kwargs
        )


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory):
    """One sandboxed agent for the module."""
    process = AgentProcess(tmp_path_factory.mktemp("security"), "--sandbox")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def sandbox(agent: AgentProcess) -> dict[str, Any]:
    """The sandbox's addresses and credentials."""
    return agent.sandbox_info()


@pytest.fixture(scope="module")
def configured(agent: AgentProcess, sandbox: dict[str, Any]) -> PageSession:
    """A Business Hub integration with a hostile name, set up through the forms."""
    page = PageSession(agent)
    kbh, tigerpaw = sandbox["kbh"]["production"], sandbox["tigerpaw"]
    reply = page.post(
        "/setup/connect",
        {"source": "kbh", "kbh_email": kbh["email"], "kbh_password": kbh["password"]},
    )
    assert reply.url.endswith("/setup/integration"), reply.text[:2000]
    reply = page.post(
        "/setup/integration",
        {
            "platform": "Tigerpaw",
            "name": HOSTILE_NAME,
            "api_url": tigerpaw["url"],
            "soap_user": tigerpaw["soap_user"],
            "soap_password": tigerpaw["soap_password"],
            "public_key": tigerpaw["public_key"],
            "private_key": tigerpaw["private_key"],
        },
    )
    assert "/add" in reply.url, reply.text[:2000]
    ids = re.findall(r'name="tenants" value="([^"]+)"', reply.text)
    path = reply.url.replace(page.base, "").split("?")[0]
    reply = page.post(path, {"tenants": ids[:2]})
    assert "/accounts" in reply.url

    rows = re.findall(r'name="account-(\d+)"', reply.text)
    path = reply.url.replace(page.base, "").split("?")[0]
    refused = page.post(path, {f"account-{rows[0]}": HOSTILE_ACCOUNT})
    assert refused.status_code == 400
    assert HOSTILE_ACCOUNT not in refused.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in refused.text

    guesses = re.findall(r'data-fill="#account-(\d+)" data-value="([^"]+)"', reply.text)
    form = {f"account-{row}": value.replace("&#39;", "'") for row, value in guesses}
    form.update({f"orders-{row}": "on" for row, _ in guesses})
    reply = page.post(path, form)
    assert reply.url.rstrip("/") == page.base, reply.text[:3000]
    return page


def test_no_token_is_refused(agent: AgentProcess) -> None:
    base = agent.base_url()
    for path in ("/", "/setup/connect", "/settings", "/log", "/api/status"):
        assert requests.get(base + path, timeout=10).status_code == 403, path
    wrong = requests.get(base + "/?token=not-the-token", timeout=10)
    assert wrong.status_code == 403


def test_bad_csrf_is_refused(agent: AgentProcess) -> None:
    page = PageSession(agent)
    form = {"source": "kbh", "kbh_email": "a@b.example", "kbh_password": "x"}
    headers = {"Origin": page.base}
    for token in (None, "forged-token"):
        data = dict(form, **({"csrf_token": token} if token else {}))
        reply = page.http.post(
            page.base + "/setup/connect", data=data, headers=headers, timeout=10
        )
        assert reply.status_code == 403
        assert "expired" in reply.text


def test_foreign_host_and_origin_are_refused(agent: AgentProcess) -> None:
    page = PageSession(agent)
    port = page.base.rsplit(":", 1)[1]
    for host in (f"rebind.example:{port}", f"127.0.0.1.nip.io:{port}"):
        reply = page.get("/setup/connect", headers={"Host": host})
        assert reply.status_code == 403
    reply = page.post(
        "/setup/connect",
        {"source": "kbh"},
        headers={"Origin": "http://evil.example"},
    )
    assert reply.status_code == 403
    assert page.get("/setup/connect").status_code == 200


def test_typed_input_is_escaped_everywhere(
    agent: AgentProcess, configured: PageSession, artifacts_dir
) -> None:
    integration = next(i for i in integrations(agent) if i["name"] == HOSTILE_NAME)
    paths = [
        "/",
        f"/integrations/{integration['id']}",
        f"/integrations/{integration['id']}/tigerpaw",
        f"/integrations/{integration['id']}/accounts",
        f"/integrations/{integration['id']}/settings",
        f"/integrations/{integration['id']}/delete",
    ]
    for path in paths:
        html = configured.get(path).text
        assert "<script>alert" not in html, path
        assert "<b>bold</b>" not in html, path
        assert "&lt;script&gt;" in html, path

    info = agent.agent_info()
    assert info is not None
    dialogs: list[str] = []
    with chromium_page() as page:
        page.on(
            "dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss())
        )
        page.goto(info["url"])
        heading = page.locator("section.integration h2").first.inner_text()
        assert heading == HOSTILE_NAME
        page.get_by_role("link", name=HOSTILE_NAME).click()
        assert page.locator("h1").inner_text() == HOSTILE_NAME
        shot(page, artifacts_dir, "hostile-name-shown-as-text")
    assert dialogs == [], "no typed script ran"


def test_no_secret_in_any_response(
    agent: AgentProcess, configured: PageSession, sandbox: dict[str, Any]
) -> None:
    kbh, tigerpaw = sandbox["kbh"]["production"], sandbox["tigerpaw"]
    secrets = [kbh["password"], tigerpaw["soap_password"], tigerpaw["private_key"]]
    integration = integrations(agent)[0]
    base = f"/integrations/{integration['id']}"
    paths = [
        "/",
        "/setup/connect",
        "/settings",
        "/log?level=Debug",
        base,
        f"{base}/connection",
        f"{base}/tigerpaw",
        f"{base}/add",
        f"{base}/accounts",
        f"{base}/settings",
        f"{base}/billing",
        f"{base}/delete",
        f"{base}/agreements?account=1006",
    ]
    checked = 0
    for path in paths:
        reply = configured.get(path)
        assert reply.status_code == 200, (path, reply.text[:500])
        body = strip_sandbox_panel(reply.text)
        for secret in secrets:
            assert secret not in body, f"a saved secret is in {path}"
        assert 'type="password" value=' not in body
        checked += 1

    status = requests.get(
        configured.base + "/api/status",
        headers={"Authorization": f"Bearer {agent.agent_info()['token']}"},
        timeout=10,
    ).text
    for secret in secrets:
        assert secret not in status
    assert checked == len(paths)
    shown = configured.get(f"{base}/tigerpaw").text
    assert "A soap password is saved" in shown


def test_no_secret_on_disk_or_in_the_log_after_setup(
    agent: AgentProcess, configured: PageSession, sandbox: dict[str, Any]
) -> None:
    """The data folder, the config file, the log and the console hold no secret.

    The sandbox's own files (``sandbox.json``, ``sandbox/``) list its test credentials
    on purpose; ``secrets.json`` is where secrets go when no keyring works, so it
    must be readable by its owner only.
    """
    kbh, tigerpaw = sandbox["kbh"]["production"], sandbox["tigerpaw"]
    secrets = [kbh["password"], tigerpaw["soap_password"], tigerpaw["private_key"]]
    forms = secrets + [base64.b64encode(s.encode()).decode() for s in secrets]
    assert integrations(agent), "the setup saved an integration"

    scanned = [agent.config_path]
    for path in sorted(agent.data_dir.rglob("*")):
        relative = path.relative_to(agent.data_dir).parts
        if not path.is_file() or relative[0] in ("sandbox.json", "sandbox"):
            continue
        if relative == ("secrets.json",):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            continue
        scanned.append(path)
    assert any(p.name == "agent.log" for p in scanned)
    assert any(p.name.startswith("agent.db") for p in scanned)

    for path in scanned:
        content = path.read_bytes()
        for secret in forms:
            assert secret.encode() not in content, f"a secret is in {path}"
    # The console also shows the sandbox's credential banner, on purpose: check the
    # log lines printed there.
    logged = [line for line in agent.output().splitlines() if LOG_LINE.match(line)]
    assert logged
    for secret in forms:
        assert not any(secret in line for line in logged), "a secret was logged"
