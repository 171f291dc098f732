"""The feature tests share the browser tests' fixtures: one sandboxed agent and one
chromium page per module (see tests/e2e/conftest.py)."""

from tests.e2e.conftest import agent, page, sandbox

__all__ = ["agent", "page", "sandbox"]
