"""What the benchmarks share: the sandbox and the agent as processes, set-up, reports.

Every script prints its figures beside their targets for people, and one
``BENCHMARK {json}`` line per figure, which ``run_all.py`` collects into its table.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import keyring  # noqa: E402
import keyring.backends.fail  # noqa: E402
import requests  # noqa: E402

from agent.sandbox import seed  # noqa: E402
from agent.sandbox.tigerpaw import TigerpawEmulator  # noqa: E402
from agent.secrets import SecretStore, secret_name  # noqa: E402
from agent.store import KSC, IntegrationSettings, NewTenant, Store  # noqa: E402
from tests.agent_process import AgentProcess  # noqa: E402
from tests.integration.sync_support import CHOICES  # noqa: E402

logger = logging.getLogger(__name__)

#: Secrets go to the owner-only file of the benchmark's own data folder, in this
#: process and in the agent's, never into a keyring of the machine.
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
#: The marker of the machine-readable lines ``run_all.py`` reads.
MARK = "BENCHMARK "
#: The name of the integration the benchmarks store.
INTEGRATION_NAME = "Benchmark integration"
#: Seconds a started process has to become ready.
READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class Figure:
    """One measured figure beside its target."""

    benchmark: str
    name: str
    value: float
    unit: str
    target: str
    ok: bool

    def line(self) -> str:
        """The figure for people: value, target and whether it is met."""
        mark = "pass" if self.ok else "MISS"
        return (
            f"  {self.name:<34} {self.value:10.3f} {self.unit:<5} "
            f"target {self.target:<12} {mark}"
        )


def report(title: str, figures: list[Figure], notes: list[str] = ()) -> int:
    """Print the figures (and notes) and their machine lines; 1 if one misses."""
    print(title)
    for figure in figures:
        print(figure.line())
    for note in notes:
        print(f"  note: {note}")
    for figure in figures:
        print(MARK + json.dumps(asdict(figure)))
    sys.stdout.flush()
    return 0 if all(f.ok for f in figures) else 1


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share 0.95 is p95) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-int(share * 1000) * len(ordered) // 1000))
    return ordered[min(rank, len(ordered)) - 1]


def no_os_keyring() -> None:
    """Keep this process's secrets out of the machine's keyring (see NO_KEYRING)."""
    os.environ.update(NO_KEYRING)
    keyring.set_keyring(keyring.backends.fail.Keyring())


def quiet_environment() -> dict[str, str]:
    """This environment without proxies for 127.0.0.1, and without a keyring."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(NO_KEYRING)
    return env


# The config file.


def with_values(text: str, **values: str) -> str:
    """Config text with appSettings values set; a key that is only in a comment (as
    ``KESCloudServer`` in the shipped file) is added as an element."""
    for key, value in values.items():
        comments = [m.span() for m in re.finditer(r"<!--.*?-->", text, re.DOTALL)]
        pattern = re.compile(rf'(<add key="{key}" value=")[^"]*(")')
        found = next(
            (
                m
                for m in pattern.finditer(text)
                if not any(start <= m.start() < end for start, end in comments)
            ),
            None,
        )
        if found is not None:
            text = f"{text[: found.end(1)]}{value}{text[found.start(2) :]}"
        else:
            element = f'<add key="{key}" value="{value}" />'
            text = text.replace("<appSettings>", f"<appSettings>\n    {element}", 1)
    return text


def write_config(path: Path, **values: str) -> None:
    """Write the shipped config with some appSettings values set."""
    text = (ROOT / "IntegrationUI.exe.config").read_text(encoding="utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(with_values(text, **values), encoding="utf-8")


def save_by_rename(path: Path, text: str) -> None:
    """Save as editors do that write a temp file and rename it over the original."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


# The processes.


class SandboxProcess:
    """``python -m agent sandbox`` in its own process and data folder."""

    def __init__(self, folder: Path, tenants: int, devices: int) -> None:
        """A sandbox of ``tenants`` companies of ``devices`` devices each."""
        self.folder = folder
        self.tenants = tenants
        self.devices = devices
        self.process: subprocess.Popen[bytes] | None = None
        self.description: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        """Start it and wait for ``sandbox.json``; return what it holds."""
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "sandbox-output.txt").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "sandbox",
                "--tenants",
                str(self.tenants),
                "--devices",
                str(self.devices),
                "--data-dir",
                str(self.folder),
            ],
            cwd=ROOT,
            env=quiet_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        ready = self.folder / "sandbox.json"
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready.exists():
            if self.process.poll() is not None:
                raise SystemExit("The sandbox exited before it was ready")
            if time.monotonic() > deadline:
                raise SystemExit(f"The sandbox was not ready in {READY_TIMEOUT} s")
            time.sleep(0.05)
        self.description = json.loads(ready.read_text(encoding="utf-8"))
        return self.description

    def stop(self) -> None:
        """Stop the sandbox (SIGTERM, then kill after 20 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def agent_process(folder: Path, name: str = "agent") -> AgentProcess:
    """A headless agent (no sandbox of its own) in ``folder``, without a keyring;
    ``name`` names the file its output goes to."""
    return AgentProcess(folder, "--headless", env=quiet_environment(), name=name)


def wait_until_answering(agent: AgentProcess, timeout: float = 30.0) -> float:
    """Wait until a launched agent's status API answers; the seconds waited."""
    assert agent.process is not None
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if agent.process.poll() is not None:
            raise SystemExit(f"The agent exited early:\n{agent.output()[-3000:]}")
        info = agent.agent_info()
        if info and answers(info):
            return time.monotonic() - started
        time.sleep(0.01)
    raise SystemExit(f"The agent did not answer within {timeout:.0f} s")


def answers(info: dict[str, Any]) -> bool:
    """Whether the agent of ``agent.json`` answers ``GET /api/status``."""
    base = str(info["url"]).split("/?")[0]
    try:
        reply = requests.get(
            f"{base}/api/status",
            headers={"Authorization": f"Bearer {info['token']}"},
            timeout=2,
        )
    except requests.RequestException:
        return False
    return reply.ok


# The emulators' sandbox endpoints.


def sandbox_get(emulator: dict[str, Any], what: str) -> dict[str, Any]:
    """``GET /_sandbox/<what>`` of an emulator of ``sandbox.json``."""
    reply = requests.get(
        f"{emulator['url']}/_sandbox/{what}",
        timeout=120,
        verify=emulator.get("cert", True),
    )
    reply.raise_for_status()
    return dict(reply.json())


def sandbox_post(emulator: dict[str, Any], what: str, payload: Any) -> dict[str, Any]:
    """``POST /_sandbox/<what>`` to an emulator of ``sandbox.json``."""
    reply = requests.post(
        f"{emulator['url']}/_sandbox/{what}",
        json=payload,
        timeout=120,
        verify=emulator.get("cert", True),
    )
    reply.raise_for_status()
    return dict(reply.json())


def calls(emulator: dict[str, Any]) -> Counter[str]:
    """The emulator's request counters ("METHOD /path" to count)."""
    return Counter(sandbox_get(emulator, "state")["calls"])


# An integration, stored as the page stores it.


def set_up_ksc_integration(
    data_dir: Path, description: dict[str, Any], tenants: int, devices: int
) -> str:
    """Store a KSC integration with every virtual server mapped to its Tigerpaw
    account and Managed Security agreement, billing approved and service orders on,
    with the test suite's choices (critical events and every device problem open
    orders); the integration's id. Run it before the agent opens the store."""
    no_os_keyring()
    ksc, tigerpaw = description["ksc"], description["tigerpaw"]
    fleet = seed.make_fleet("ksc", tenants, 1, devices)
    # The sandbox process seeded Tigerpaw from the same names and seed.
    world = TigerpawEmulator(seed.tigerpaw_account_names(tenants), seed=1).world

    store = Store.open_in(data_dir)
    try:
        integration = store.create_integration(
            IntegrationSettings(
                source=KSC,
                name=INTEGRATION_NAME,
                ksc_address=ksc["url"],
                ksc_user=ksc["user"],
                ksc_certificate_path=ksc["cert"],
                tigerpaw_url=tigerpaw["url"],
                tigerpaw_soap_user=tigerpaw["soap_user"],
                tigerpaw_public_key=tigerpaw["public_key"],
            )
        )
        secrets = SecretStore(data_dir)
        for field, value in (
            ("ksc_password", ksc["password"]),
            ("tigerpaw_soap_password", tigerpaw["soap_password"]),
            ("tigerpaw_private_key", tigerpaw["private_key"]),
        ):
            secrets.set(secret_name(integration.id, field), value)
        store.set_sync_choices(integration.id, CHOICES)

        added = store.add_tenants(
            integration.id, [NewTenant(t.uid, t.name) for t in fleet.tenants]
        )
        accounts = {account.name: account for account in world.accounts}
        agreements = {
            g.account_number: g
            for g in world.agreements
            if g.type == "Managed Security"
        }
        for tenant in added:
            account = accounts[tenant.name]
            agreement = agreements[account.number]
            store.map_account(
                tenant.id, account.number, account.name, agreement.number,
                agreement.type, billing=True, service_orders=True,
            )  # fmt: skip
            store.update_mapping(tenant.id, billing_approved=True)
        return integration.id
    finally:
        store.close()


def copy_config(source: Path, folder: Path) -> Path:
    """Copy a config file into a folder; its new path."""
    target = folder / "IntegrationUI.exe.config"
    shutil.copy(source, target)
    return target
