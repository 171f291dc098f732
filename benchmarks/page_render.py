"""How long each page of the setup takes to render with 1,000 tenants.

Run: .venv/bin/python benchmarks/page_render.py [--tenants 1000] [--runs 15]

Builds an agent (store, secrets, config) around real emulators on 127.0.0.1: a
Business Hub server with twice the tenants (one integration holds half of them,
so another integration's Add page lists the other half) and Tigerpaw with more
accounts than tenants. Half the tenants are mapped, half wait, so the mapping
page computes a best guess for each. Every page is asked through Flask with the
launch token, first cold (reading the emulators, then cached), then warm; the
target is a warm render under 100 ms. The billing preview is left out: it counts
every device live by design.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.app import Agent, AgentOptions  # noqa: E402
from agent.logs import RecentRecords  # noqa: E402
from agent.sandbox import seed  # noqa: E402
from agent.sandbox.certs import make_certificate  # noqa: E402
from agent.sandbox.kbh import KbhEmulator  # noqa: E402
from agent.sandbox.tigerpaw import TigerpawEmulator  # noqa: E402
from agent.secrets import SecretStore, secret_name  # noqa: E402
from agent.sources import kbh  # noqa: E402
from agent.store import KBH, IntegrationSettings, NewTenant, Store  # noqa: E402
from agent.web import create_app  # noqa: E402

TARGET_MS = 100.0
PORT = 47999


def build(folder: Path, tenants: int) -> tuple[Agent, list, list[str]]:
    """An agent with two Business Hub integrations over real emulators."""
    fleet = seed.make_fleet("production", tenants * 2, 1, devices=2)
    identity = make_certificate(folder / "certs", "kbh")
    hub = KbhEmulator(fleet, environment="production", tls=identity, seed=1).start()
    names = seed.client_names(tenants * 2 + 100)
    tigerpaw = TigerpawEmulator(names, seed=1).start()
    kbh.register_servers({"production": (hub.url, str(identity.cert_path))})
    description = hub.describe()
    tp = tigerpaw.describe()

    shutil.copy(ROOT / "IntegrationUI.exe.config", folder / "IntegrationUI.exe.config")
    options = AgentOptions(
        config_path=folder / "IntegrationUI.exe.config", data_dir=folder / "data"
    )
    agent = Agent(options, RecentRecords())
    agent.config.load()
    agent.store = store = Store.open_in(options.data_dir)
    agent.secrets = secrets = SecretStore(options.data_dir)

    ids = []
    for name in ("Integration with Tigerpaw", "Second integration"):
        integration = store.create_integration(
            IntegrationSettings(
                source=KBH,
                name=name,
                kbh_email=description["email"],
                tigerpaw_url=tp["url"],
                tigerpaw_soap_user=tp["soap_user"],
                tigerpaw_public_key=tp["public_key"],
            )
        )
        for field, value in (
            ("kbh_password", description["password"]),
            ("tigerpaw_soap_password", tp["soap_password"]),
            ("tigerpaw_private_key", tp["private_key"]),
        ):
            secrets.set(secret_name(integration.id, field), value)
        ids.append(integration.id)

    held = [NewTenant(t.uid, t.name) for t in fleet.tenants[:tenants]]
    added = store.add_tenants(ids[0], held)
    for number, tenant in enumerate(added[: tenants // 2], start=1001):
        store.map_account(tenant.id, number, tenant.name, 5000 + number, "Managed")
    for index in range(20):
        agent.recent_log.emit(
            logging.LogRecord("agent", logging.INFO, "", 0, f"line {index}", (), None)
        )
    return agent, [hub, tigerpaw], ids


def measure(agent: Agent, paths: dict[str, str], runs: int) -> list[tuple]:
    """(page, cold ms, warm median ms, warm max ms) per page."""
    app = create_app(agent, PORT)
    client = app.test_client()
    headers = {"Host": f"127.0.0.1:{PORT}"}
    assert client.get(f"/?token={agent.token}", headers=headers).status_code == 302

    results = []
    for name, path in paths.items():
        started = time.perf_counter()
        reply = client.get(path, headers=headers)
        cold = (time.perf_counter() - started) * 1000
        if reply.status_code != 200:
            raise SystemExit(f"{name}: HTTP {reply.status_code}\n{reply.text[:500]}")
        warm = []
        for _ in range(runs):
            started = time.perf_counter()
            client.get(path, headers=headers)
            warm.append((time.perf_counter() - started) * 1000)
        results.append((name, cold, statistics.median(warm), max(warm)))
    return results


def main() -> int:
    """Build, measure, print; non-zero when a page misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as temp:
        agent, emulators, ids = build(Path(temp), args.tenants)
        try:
            first, second = ids
            paths = {
                "dashboard": "/",
                "integration": f"/integrations/{first}",
                "map accounts": f"/integrations/{first}/accounts",
                "add companies": f"/integrations/{second}/add",
                "sync settings": f"/integrations/{first}/settings",
                "edit Tigerpaw": f"/integrations/{first}/tigerpaw",
                "connect": "/setup/connect",
                "config settings": "/settings",
                "log": "/log",
                "status API": "/api/status",
            }
            results = measure(agent, paths, args.runs)
        finally:
            for emulator in emulators:
                emulator.stop()
            kbh.clear_registered_servers()
            assert agent.store is not None
            agent.store.close()

    print(f"Page render times with {args.tenants} tenants (target {TARGET_MS:.0f} ms)")
    print(f"{'page':<16} {'cold ms':>9} {'warm median':>12} {'warm max':>9}")
    failed = False
    for name, cold, median, worst in results:
        mark = "ok" if median < TARGET_MS else "SLOW"
        failed |= median >= TARGET_MS
        print(f"{name:<16} {cold:9.1f} {median:12.1f} {worst:9.1f}  {mark}")
    print("cold: the first request, which reads Tigerpaw and the console and caches")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
