"""The packaged program: build/build.sh makes IntegrationUI, which runs on its own.

The program is built once per session into a temporary folder and started from a
folder outside the repository, without --config: it must find the config beside
itself and everything else (templates, static files, the WSDL, the libraries) inside
its own folder.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.agent_process import ROOT, AgentProcess

pytestmark = pytest.mark.slow

NAME = "IntegrationUI"
CONFIG_NAME = "IntegrationUI.exe.config"
#: Keeps the packaged agent (and this test) off any real keyring of the machine.
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
BUILD_TIMEOUT_S = 240
SYNC_TIMEOUT_S = 90


class SyncNotRunning(AssertionError):
    """The agent answered that it runs no sync scheduler (503 on POST /api/sync)."""


@pytest.fixture(scope="session")
def program_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Build the program once with build/build.sh; yield its folder."""
    out = tmp_path_factory.mktemp("packaged")
    log = out / "build-log.txt"
    with log.open("w") as stream:
        result = subprocess.run(
            ["bash", str(ROOT / "build" / "build.sh"), str(out)],
            stdout=stream,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
        )
    assert result.returncode == 0, f"build.sh failed:\n{log.read_text()[-4000:]}"

    yield out / "dist" / NAME
    # About 90 MB each: keep the temporary folders of past runs small.
    shutil.rmtree(out / "dist", ignore_errors=True)
    shutil.rmtree(out / "work", ignore_errors=True)


class PackagedAgent(AgentProcess):
    """The built program started as a person's login would: no --config, no repo."""

    def __init__(self, program: Path, folder: Path, *args: str) -> None:
        super().__init__(folder, *args, env=NO_KEYRING)
        self.program_folder = program
        # Nothing of the source tree may be reachable by the program, which starts
        # from the test's folder, outside the repository.
        self.env.pop("PYTHONPATH", None)
        self.cwd = folder

    def program(self) -> list[str]:
        """The built program alone: no --config, it finds the one beside it."""
        return [str(self.program_folder / NAME)]


@pytest.fixture(scope="module")
def agent(
    program_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PackagedAgent]:
    """The packaged agent, headless with its sandbox, for the module's tests."""
    process = PackagedAgent(
        program_folder, tmp_path_factory.mktemp("run"), "--sandbox", "--headless"
    )
    process.start(timeout=60)
    yield process
    process.stop()


def test_folder_holds_program_config_and_libraries(program_folder: Path) -> None:
    program = program_folder / NAME
    assert program.is_file() and os.access(program, os.X_OK)
    config = program_folder / CONFIG_NAME
    assert filecmp.cmp(config, ROOT / CONFIG_NAME, shallow=False)

    inside = program_folder / "_internal"
    assert (inside / "agent" / "web" / "templates" / "base.html").is_file()
    assert (inside / "agent" / "sandbox" / "tsiWS.wsdl").is_file()
    assert not (inside / "tkinter").exists(), "tkinter is excluded from the build"
    assert not list(inside.glob("**/_pytest")), "test packages stay out"
    out = program_folder.parent.parent
    assert (out / "work" / NAME).is_dir(), "PyInstaller's work folder is in out/"


def test_check_config_reads_the_config_beside_the_program(
    program_folder: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(program_folder / NAME), "--data-dir", str(tmp_path), "check-config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"OK: {(program_folder / CONFIG_NAME).resolve()}" in result.stdout
    assert "ServiceOrderSyncMinutes = 5" in result.stdout


def test_default_config_is_the_one_beside_the_program(
    agent: PackagedAgent, program_folder: Path
) -> None:
    status = agent.status()
    assert status["config"]["path"] == str((program_folder / CONFIG_NAME).resolve())
    assert status["config"]["ok"] is True
    assert status["config"]["settings"]["KESCloudServer"] == "production"
    assert status["sandbox"] is True
    assert "Running without a tray icon" in agent.output()


def test_page_answers_with_the_token(agent: PackagedAgent) -> None:
    info = agent.agent_info()
    assert info is not None
    assert info["url"].startswith(f"http://127.0.0.1:{info['port']}/?token=")
    base = agent.base_url()
    assert requests.get(f"{base}/", timeout=5).status_code == 403

    with requests.Session() as browser:
        page = browser.get(info["url"], timeout=10)
        assert page.status_code == 200
        assert "token=" not in page.url, "the token leaves the address bar"
        assert "text/html" in page.headers["Content-Type"]
        assert agent.sandbox_info()["tigerpaw"]["soap_user"] in page.text
        # The static files are inside the program's folder too.
        css = browser.get(f"{base}/static/agent.css", timeout=5)
        assert css.status_code == 200 and len(css.content) > 100


def test_sandbox_serves_its_wsdl_from_the_package(agent: PackagedAgent) -> None:
    asmx_url = agent.sandbox_info()["tigerpaw"]["asmx_url"]
    reply = requests.get(f"{asmx_url}?WSDL", timeout=10)
    assert reply.status_code == 200
    assert "wsdl:definitions" in reply.text or "<definitions" in reply.text


def test_a_sync_completes(agent: PackagedAgent, no_os_keyring: None) -> None:
    sandbox = agent.sandbox_info()
    tigerpaw_url = sandbox["tigerpaw"]["url"]
    before = sandbox_state(tigerpaw_url)
    agreements = set_up_integration(agent, sandbox, before)

    info = agent.agent_info()
    assert info is not None
    reply = requests.post(
        f"{agent.base_url()}/api/sync",
        headers={"Authorization": f"Bearer {info['token']}"},
        timeout=10,
    )
    if reply.status_code == 503:
        raise SyncNotRunning(reply.text)
    assert reply.status_code == 202, reply.text

    sync = wait_for_sync(agent)
    assert sync["state"] == "idle", sync
    tenants = [t for i in agent.status()["integrations"] for t in i["tenants"]]
    assert tenants and all(t["last_sync"] and not t["error"] for t in tenants)
    after = sandbox_state(tigerpaw_url)
    charged = [
        g
        for g in after["agreements"]
        if g["number"] in agreements and any(c["quantity"] for c in g["charges"])
    ]
    assert charged, "billing set charges on the mapped agreements"
    assert len(after["service_orders"]) > len(before["service_orders"])


def sandbox_state(url: str, verify: str | bool = True) -> dict[str, Any]:
    """An emulator's ``/_sandbox/state``."""
    reply = requests.get(f"{url}/_sandbox/state", timeout=10, verify=verify)
    reply.raise_for_status()
    return dict(reply.json())


def set_up_integration(
    agent: PackagedAgent, sandbox: dict[str, Any], tigerpaw: dict[str, Any]
) -> set[int]:
    """Save a Business Hub integration as the setup page does, in the running agent's
    data folder: each company mapped to its own account's Managed Security agreement,
    billing approved. Returns the agreement numbers."""
    from agent.secrets import SecretStore, secret_name
    from agent.store import IntegrationSettings, NewTenant, Store
    from tests.integration.sync_support import CHOICES

    kbh = sandbox["kbh"]["production"]
    companies = sandbox_state(kbh["url"], verify=kbh["cert"])["companies"]
    managed = [g for g in tigerpaw["agreements"] if g["type"] == "Managed Security"]
    assert len(managed) >= len(companies), "one agreement per company"

    store = Store.open_in(agent.data_dir)
    try:
        integration = store.create_integration(
            IntegrationSettings(
                source="kbh",
                name="Packaged program",
                kbh_email=kbh["email"],
                tigerpaw_url=sandbox["tigerpaw"]["url"],
                tigerpaw_soap_user=sandbox["tigerpaw"]["soap_user"],
                tigerpaw_public_key=sandbox["tigerpaw"]["public_key"],
            )
        )
        secrets = SecretStore(agent.data_dir)
        for field, value in (
            ("kbh_password", kbh["password"]),
            ("tigerpaw_soap_password", sandbox["tigerpaw"]["soap_password"]),
            ("tigerpaw_private_key", sandbox["tigerpaw"]["private_key"]),
        ):
            secrets.set(secret_name(integration.id, field), value)
        store.set_sync_choices(integration.id, CHOICES)

        tenants = store.add_tenants(
            integration.id, [NewTenant(c["id"], c["name"]) for c in companies]
        )
        for tenant, agreement in zip(tenants, managed, strict=False):
            store.map_account(
                tenant.id, agreement["account"], tenant.name, agreement["number"],
                agreement["type"], billing=True, service_orders=True,
            )  # fmt: skip
            store.update_mapping(tenant.id, billing_approved=True)
    finally:
        store.close()
    return {g["number"] for g in managed[: len(companies)]}


def wait_for_sync(agent: PackagedAgent) -> dict[str, Any]:
    """The status API's ``sync`` once a cycle has run and none is running."""
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while time.monotonic() < deadline:
        sync = agent.status()["sync"]
        if sync["last_run"] and sync["state"] != "running":
            return dict(sync)
        time.sleep(0.5)
    raise AssertionError(f"No sync finished in {SYNC_TIMEOUT_S} s:\n{agent.output()}")


def test_sigterm_exits_zero(program_folder: Path, tmp_path: Path) -> None:
    process = PackagedAgent(program_folder, tmp_path, "--sandbox", "--headless")
    process.start(timeout=60)
    assert process.stop() == 0, process.output()
    assert not (process.data_dir / "agent.json").exists()
    assert not (process.data_dir / "sandbox.json").exists()
