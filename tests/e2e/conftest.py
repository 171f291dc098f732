"""Fixtures the browser tests of the setup share: one sandboxed agent and one page.

A module that needs its agent started otherwise defines its own ``agent`` fixture,
which takes the place of this one for that module.
"""

from __future__ import annotations

import pytest

from tests.agent_process import AgentProcess
from tests.browser import chromium_page


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """One sandboxed agent for the module, in a folder named after the module."""
    name = request.module.__name__.rpartition(".")[2]
    process = AgentProcess(tmp_path_factory.mktemp(name), "--sandbox")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def page(agent: AgentProcess):
    """One browser page for the module, signed in with the launch token."""
    with chromium_page() as browser_page:
        info = agent.agent_info()
        assert info is not None
        browser_page.goto(info["url"])
        yield browser_page


@pytest.fixture(scope="module")
def sandbox(agent: AgentProcess):
    """The sandbox's addresses and credentials."""
    return agent.sandbox_info()
