"""Starts the real agent as a separate process, the way a technician does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent


class AgentProcess:
    """``python -m agent`` in a data folder of the test's own."""

    def __init__(
        self,
        folder: Path,
        *args: str,
        env: dict[str, str] | None = None,
        name: str = "agent",
    ) -> None:
        self.folder = folder
        self.data_dir = folder / "data"
        self.config_path = folder / "IntegrationUI.exe.config"
        if not self.config_path.exists():
            shutil.copy(ROOT / "IntegrationUI.exe.config", self.config_path)
        self.args = list(args)
        # Without a DISPLAY of its own, the agent runs headless, as on a server.
        self.env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
        self.env.update(env or {})
        self.process: subprocess.Popen[str] | None = None
        self.output_path = folder / f"{name}-output.txt"
        #: Where the process starts (the repository, for ``-m agent``).
        self.cwd = ROOT

    def program(self) -> list[str]:
        """What runs the agent: this Python on the repository, with its config."""
        return [sys.executable, "-m", "agent", "--config", str(self.config_path)]

    def command(self) -> list[str]:
        """The command line that starts this agent."""
        return [
            *self.program(),
            "--data-dir",
            str(self.data_dir),
            "--no-browser",
            "--port",
            "0",
            *self.args,
        ]

    def launch(self) -> None:
        """Start the process without waiting for it."""
        self._output = self.output_path.open("w")
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.cwd,
            env=self.env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run_to_end(self, timeout: float = 60.0) -> int:
        """Run the command until it exits by itself; return its exit code."""
        self.launch()
        assert self.process is not None
        code = self.process.wait(timeout)
        self._output.close()
        return code

    def start(self, timeout: float = 30.0) -> dict[str, Any]:
        """Start the agent and wait until its page answers; return ``agent.json``."""
        self.launch()
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._output.close()
                raise AssertionError(f"The agent exited early:\n{self.output()}")
            info = self.agent_info()
            if info and self._answers(info):
                return info
            time.sleep(0.1)
        raise AssertionError(
            f"The agent did not come up in {timeout} s:\n{self.output()}"
        )

    def agent_info(self) -> dict[str, Any] | None:
        """The agent's ``agent.json``, if written."""
        try:
            return json.loads((self.data_dir / "agent.json").read_text())
        except (OSError, ValueError):
            return None

    def sandbox_info(self) -> dict[str, Any]:
        """The sandbox's ``sandbox.json``."""
        return json.loads((self.data_dir / "sandbox.json").read_text())

    def base_url(self) -> str:
        """The page's address without the token."""
        info = self.agent_info()
        assert info is not None
        return str(info["url"]).split("/?")[0]

    def status(self) -> dict[str, Any]:
        """``GET /api/status`` with the launch token."""
        info = self.agent_info()
        assert info is not None
        reply = requests.get(
            f"{self.base_url()}/api/status",
            headers={"Authorization": f"Bearer {info['token']}"},
            timeout=5,
        )
        reply.raise_for_status()
        return reply.json()

    def _answers(self, info: dict[str, Any]) -> bool:
        try:
            base = str(info["url"]).split("/?")[0]
            reply = requests.get(
                f"{base}/api/status",
                headers={"Authorization": f"Bearer {info['token']}"},
                timeout=2,
            )
        except requests.RequestException:
            return False
        return reply.ok

    def output(self) -> str:
        """What the agent printed so far."""
        return self.output_path.read_text() if self.output_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> int:
        """Ask the agent to stop with SIGTERM and return its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._output.close()
        return code
