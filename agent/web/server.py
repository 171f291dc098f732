"""Serves the setup page with waitress on 127.0.0.1, on a thread of its own."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from waitress.server import create_server

from agent.web import create_app, security

if TYPE_CHECKING:
    from agent.app import Agent

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


class WebServer:
    """The page's HTTP server, listening on 127.0.0.1 only."""

    def __init__(self, agent: Agent, port: int) -> None:
        self.app = create_app(agent)
        self._server = create_server(
            self.app, host=HOST, port=port, threads=6, ident="IntegrationAgent"
        )
        # Port 0 means "any free port": the guards learn the real one here.
        security.set_port(self.app, self.port)
        self._thread = threading.Thread(
            target=self._server.run, name="web", daemon=True
        )

    @property
    def port(self) -> int:
        """The port listened on."""
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        """The page's base address."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and wait for the serving thread."""
        self._server.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("The web server did not stop within %s s", timeout)
