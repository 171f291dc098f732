"""Starts every emulator on free ports of 127.0.0.1 and writes ``sandbox.json``."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, TypeVar

import psutil

from agent.errors import AgentError
from agent.paths import write_json_atomically
from agent.sandbox import seed
from agent.sandbox.certs import load_or_make_certificate
from agent.sandbox.kbh import KbhEmulator
from agent.sandbox.ksc import KscEmulator
from agent.sandbox.proxy import ProxyEmulator
from agent.sandbox.server import Emulator
from agent.sandbox.tigerpaw import TigerpawEmulator

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Emulator)

SANDBOX_FILE = "sandbox.json"
PORTS_FILE = "ports.json"
KBH_ENVIRONMENTS = ("production", "beta", "test")


class Sandbox:
    """The emulated KSC server, its proxy, three Business Hub servers and Tigerpaw."""

    def __init__(
        self,
        data_dir: Path,
        *,
        tenants: int = 5,
        seed: int = 1,
        devices: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.tenants = tenants
        self.seed = seed
        self.devices = devices
        self.ksc: KscEmulator | None = None
        self.proxy: ProxyEmulator | None = None
        self.kbh: dict[str, KbhEmulator] = {}
        self.tigerpaw: TigerpawEmulator | None = None
        self.description: dict[str, Any] = {}

    @property
    def emulators(self) -> list[Emulator]:
        """Every started emulator."""
        started: list[Emulator | None] = [self.ksc, self.proxy, self.tigerpaw]
        started += list(self.kbh.values())
        return [emulator for emulator in started if emulator is not None]

    def start(self) -> dict[str, Any]:
        """Seed and start every emulator; return what ``sandbox.json`` holds."""
        refuse_second_sandbox(self.data_dir)
        folder = self.data_dir / "sandbox"
        klserver = load_or_make_certificate(folder, "klserver")
        kbh_identity = load_or_make_certificate(folder, "kbh")
        ports = PortBook(folder / PORTS_FILE)

        ksc_fleet = seed.make_fleet("ksc", self.tenants, self.seed, self.devices)
        self.ksc = ksc = ports.start(
            KscEmulator(ksc_fleet, tls=klserver, seed=self.seed)
        )
        self.proxy = proxy = ports.start(ProxyEmulator(seed=self.seed))
        for environment in KBH_ENVIRONMENTS:
            fleet = seed.make_fleet(environment, self.tenants, self.seed, self.devices)
            self.kbh[environment] = ports.start(
                KbhEmulator(
                    fleet, environment=environment, tls=kbh_identity, seed=self.seed
                )
            )
        self.tigerpaw = tigerpaw = ports.start(
            TigerpawEmulator(seed.tigerpaw_account_names(self.tenants), seed=self.seed)
        )
        ports.save()

        self.description = {
            "pid": os.getpid(),
            "ksc": {**ksc.describe(), "cert": str(klserver.cert_path)},
            "proxy": proxy.describe(),
            "kbh": {
                environment: {
                    **emulator.describe(),
                    "cert": str(kbh_identity.cert_path),
                }
                for environment, emulator in self.kbh.items()
            },
            "tigerpaw": tigerpaw.describe(),
        }
        write_json_atomically(self.data_dir / SANDBOX_FILE, self.description)
        logger.info(
            "Sandbox started: KSC at %s, Tigerpaw at %s",
            self.ksc.url,
            self.tigerpaw.url,
        )
        return self.description

    def stop(self) -> None:
        """Stop every emulator and remove our ``sandbox.json``."""
        for emulator in self.emulators:
            emulator.stop()
        if self.description and sandbox_owner(self.data_dir) == os.getpid():
            (self.data_dir / SANDBOX_FILE).unlink(missing_ok=True)


class PortBook:
    """The ports the emulators had last time, so a restarted sandbox keeps its
    addresses and integrations set up against it keep working."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.ports = {
                str(name): int(port)
                for name, port in json.loads(path.read_text("utf-8")).items()
            }
        except (OSError, ValueError, AttributeError):
            self.ports = {}

    def start(self, emulator: E) -> E:
        """Start on the emulator's port of last time, or any free one if taken."""
        emulator.requested_port = self.ports.get(emulator.name, 0)
        try:
            emulator.start()
        except OSError:
            logger.info(
                "Port %s of the %s emulator is taken; it moves to a free port "
                "(integrations set up against the old address need editing)",
                emulator.requested_port,
                emulator.name,
            )
            emulator.requested_port = 0
            emulator.start()
        self.ports[emulator.name] = emulator.port
        return emulator

    def save(self) -> None:
        """Keep the ports for the next start."""
        write_json_atomically(self.path, self.ports)


def sandbox_owner(data_dir: Path) -> int | None:
    """The process id written in the data folder's ``sandbox.json``, if any."""
    try:
        payload = json.loads((data_dir / SANDBOX_FILE).read_text(encoding="utf-8"))
        return int(payload["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def refuse_second_sandbox(data_dir: Path) -> None:
    """Refuse to start where another live process's sandbox keeps its files."""
    owner = sandbox_owner(data_dir)
    if owner is not None and owner != os.getpid() and psutil.pid_exists(owner):
        raise AgentError(
            f"A sandbox already runs with the data folder {data_dir} (process "
            f"{owner}): use its servers, stop it first, or give this one another "
            "--data-dir"
        )


def credentials_text(description: dict[str, Any]) -> str:
    """The sandbox's addresses and test credentials, for a person to read."""
    ksc, proxy, tigerpaw = (description[k] for k in ("ksc", "proxy", "tigerpaw"))
    lines = [
        "Sandbox servers (test data only, on this computer):",
        f"  KSC Administration Server: {ksc['url']}",
        f"    user {ksc['user']}, password {ksc['password']}",
        f"    virtual servers: {', '.join(ksc['vserver_names'][:5])}"
        + (" ..." if len(ksc["vserver_names"]) > 5 else ""),
        f"    certificate: {ksc['cert']}",
        f"  Proxy: {proxy['url']}, user {proxy['user']}, password {proxy['password']}",
    ]
    for environment, kbh in description["kbh"].items():
        lines.append(
            f"  Business Hub ({environment}): {kbh['url']}, "
            f"{kbh['email']} / {kbh['password']}"
        )
    lines += [
        f"  Tigerpaw: {tigerpaw['url']} (ASMX {tigerpaw['asmx_url']})",
        f"    SOAP user {tigerpaw['soap_user']}, password {tigerpaw['soap_password']}",
        f"    REST public key {tigerpaw['public_key']}",
        f"    REST private key {tigerpaw['private_key']}",
    ]
    return "\n".join(lines)
