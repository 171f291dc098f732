"""The whole sandbox: a restart keeps its addresses and certificates."""

from __future__ import annotations

import socket
from pathlib import Path

from agent.sandbox.runner import Sandbox


def start_and_stop(data_dir: Path) -> dict:
    sandbox = Sandbox(data_dir, tenants=2)
    try:
        return sandbox.start()
    finally:
        sandbox.stop()


def test_a_restarted_sandbox_keeps_its_addresses_and_certificates(
    tmp_path: Path,
) -> None:
    first = start_and_stop(tmp_path)
    cert = (tmp_path / "sandbox" / "klserver.cer").read_bytes()

    second = start_and_stop(tmp_path)

    assert second["ksc"]["url"] == first["ksc"]["url"]
    assert second["tigerpaw"]["url"] == first["tigerpaw"]["url"]
    assert second["kbh"] == first["kbh"]
    assert second["tigerpaw"]["private_key"] == first["tigerpaw"]["private_key"]
    assert (tmp_path / "sandbox" / "klserver.cer").read_bytes() == cert


def test_a_port_taken_meanwhile_moves_that_emulator_only(tmp_path: Path) -> None:
    first = start_and_stop(tmp_path)
    taken = int(first["tigerpaw"]["url"].rsplit(":", 1)[1])

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        second = start_and_stop(tmp_path)

    assert second["tigerpaw"]["url"] != first["tigerpaw"]["url"]
    assert second["ksc"]["url"] == first["ksc"]["url"]
