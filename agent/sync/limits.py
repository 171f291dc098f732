"""Bounded concurrency per remote API, shared by every integration's cycle.

Each remote API (one Tigerpaw site, one KSC server, Business Hub) gets a semaphore
of ``per_api`` slots; a cycle holds a slot while it talks to that API, so two
integrations on the same Tigerpaw never send it more than ``per_api`` calls at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

logger = logging.getLogger(__name__)

DEFAULT_PER_API = 4


class ApiLimits:
    """A semaphore per remote API, made on first use."""

    def __init__(self, per_api: int = DEFAULT_PER_API) -> None:
        """Allow ``per_api`` calls at once to each API (at least 1)."""
        self.per_api = max(1, int(per_api))
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def _semaphore(self, api: str) -> threading.BoundedSemaphore:
        """The semaphore of one API."""
        with self._lock:
            found = self._slots.get(api)
            if found is None:
                found = self._slots[api] = threading.BoundedSemaphore(self.per_api)
            return found

    @contextlib.contextmanager
    def hold(self, api: str) -> Iterator[None]:
        """Hold one slot of ``api`` for the block."""
        slot = self._semaphore(api)
        with slot:
            yield
