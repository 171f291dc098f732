"""The README's run command: the agent with its sandbox, as a separate process."""

from __future__ import annotations

import json
import stat

import pytest
import requests

from tests.agent_process import AgentProcess
from tests.browser import chromium_page

KSC_KEYS = {"url", "user", "password", "vserver_names", "cert"}
TIGERPAW_KEYS = {
    "url",
    "asmx_url",
    "soap_user",
    "soap_password",
    "public_key",
    "private_key",
}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory):
    """One sandboxed agent for the module's tests."""
    process = AgentProcess(tmp_path_factory.mktemp("agent"), "--sandbox")
    process.start()
    yield process
    process.stop()


def test_agent_json_names_the_page_and_token(agent: AgentProcess) -> None:
    info = agent.agent_info()
    assert info is not None
    assert set(info) >= {"pid", "url", "port", "token"}
    assert info["url"].startswith(f"http://127.0.0.1:{info['port']}/?token=")
    assert info["token"] in info["url"]
    assert "Setup page: http://127.0.0.1:" in agent.output()
    mode = (agent.data_dir / "agent.json").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600, "agent.json holds the token: owner only"


def test_sandbox_json_describes_every_emulator(agent: AgentProcess) -> None:
    sandbox = agent.sandbox_info()
    assert set(sandbox["ksc"]) >= KSC_KEYS
    assert set(sandbox["proxy"]) >= {"url", "user", "password"}
    assert set(sandbox["kbh"]) == {"production", "beta", "test"}
    for kbh in sandbox["kbh"].values():
        assert set(kbh) >= {"url", "email", "password"}
    assert set(sandbox["tigerpaw"]) >= TIGERPAW_KEYS
    for url in [sandbox["ksc"]["url"], sandbox["tigerpaw"]["url"]]:
        assert url.split("://")[1].startswith("127.0.0.1:")
    cert = (agent.data_dir / "sandbox" / "klserver.cer").read_text()
    assert "BEGIN CERTIFICATE" in cert


def test_status_api_needs_the_token(agent: AgentProcess) -> None:
    base = agent.base_url()
    assert requests.get(f"{base}/api/status", timeout=5).status_code == 403
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (
        requests.get(f"{base}/api/status", headers=wrong, timeout=5).status_code == 403
    )

    status = agent.status()
    assert status["config"]["ok"] is True
    assert status["config"]["settings"]["KESCloudServer"] == "production"
    assert status["sync"]["state"] in {"idle", "running", "paused", "failing"}


def test_foreign_host_header_is_refused(agent: AgentProcess) -> None:
    info = agent.agent_info()
    assert info is not None
    reply = requests.get(
        f"{agent.base_url()}/api/status",
        headers={
            "Authorization": f"Bearer {info['token']}",
            "Host": f"rebind.example:{info['port']}",
        },
        timeout=5,
    )
    assert reply.status_code == 403


def test_first_page_shows_sandbox_credentials(
    agent: AgentProcess, artifacts_dir
) -> None:
    info = agent.agent_info()
    assert info is not None
    sandbox = agent.sandbox_info()
    with chromium_page() as page:
        page.goto(info["url"])
        assert "token=" not in page.url, "the token leaves the address bar"
        text = page.inner_text("main")
        page.screenshot(path=str(artifacts_dir / "first-page.png"), full_page=True)
    assert sandbox["ksc"]["url"] in text
    assert sandbox["tigerpaw"]["soap_user"] in text
    assert sandbox["kbh"]["beta"]["email"] in text


def test_second_start_points_at_the_running_agent(agent: AgentProcess) -> None:
    second = AgentProcess(agent.folder, "--sandbox")
    second.data_dir = agent.data_dir
    info = agent.agent_info()
    code = second.run_to_end()
    assert code == 0
    assert f"already running: {info['url']}" in second.output()
    assert json.loads((agent.data_dir / "agent.json").read_text()) == info


def test_sigterm_stops_cleanly(tmp_path) -> None:
    process = AgentProcess(tmp_path, "--sandbox")
    process.start()
    assert process.stop() == 0
    assert not (process.data_dir / "agent.json").exists()
    assert not (process.data_dir / "sandbox.json").exists()
