"""Helpers for tests against the emulators: failures injected into the next calls,
and the agent's own Business Hub client pointed at a Business Hub emulator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from agent.sandbox.certs import TlsIdentity
from agent.sandbox.kbh import KbhEmulator
from agent.sandbox.server import Emulator
from agent.sources.kbh import KNOWN_SERVERS, KbhClient, ServerTable


def fail_next(emulator: Emulator, prefix: str, status: int, times: int) -> None:
    """Answer the next ``times`` calls under ``prefix`` ("" for every path) with an
    HTTP ``status``."""
    emulator.faults.path_prefix = prefix
    emulator.faults.error_status = status
    emulator.faults.next_errors = times


@contextlib.contextmanager
def signed_in_client(
    emulator: KbhEmulator, cert: TlsIdentity, integration_id: str
) -> Iterator[KbhClient]:
    """The agent's Business Hub client of the emulator's production server, with
    its administrator's credentials and short timeouts; closed afterwards."""
    table = ServerTable(KNOWN_SERVERS)
    table.register({"production": (emulator.url, str(cert.cert_path))})
    info = emulator.describe()
    client = KbhClient(
        info["email"],
        info["password"],
        server="production",
        integration_id=integration_id,
        table=table,
        timeout=(2.0, 5.0),
    )
    try:
        yield client
    finally:
        client.close()
