"""Limits on what the sync uses: calls at once per remote API, and memory kept.

Each remote API (one Tigerpaw site, one KSC server, Business Hub) gets a semaphore
of ``per_api`` slots; a cycle holds a slot while it talks to that API, so two
integrations on the same Tigerpaw never send it more than ``per_api`` calls at once.

Where the C library is glibc, the heap is set up for a long-running agent (as this
module is imported, before the agent's threads start) and handed back to the system
after each cycle (measured on a 1,000-tenant cycle: 2 MB less idle memory for the
trim, 5 MB for the settings).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import platform
import sys
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


#: glibc's mallopt parameters: the number of heap arenas, and the size from which
#: an allocation gets pages of its own (returned to the system when freed).
M_ARENA_MAX, M_MMAP_THRESHOLD = -8, -3
#: Heap arenas glibc may make: by default 8 per core, and each of the cycle's
#: threads then keeps a partly used heap of its own after the cycle.
ARENAS = 2
#: glibc's own starting value, kept fixed: by default it grows to the largest block
#: freed so far (a status reply for 1,000 tenants), and such blocks then come from
#: the heap, where they leave holes that the agent keeps while idle.
MMAP_THRESHOLD = 128 * 1024


def trim_heap() -> None:
    """Ask glibc to return freed heap pages to the system (it keeps them otherwise,
    and a cycle over many tenants frees tens of MB); nothing elsewhere."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def tune_heap() -> None:
    """Keep glibc's heap compact for a long-running agent: few arenas, shared by
    the sync's threads, and large blocks on pages of their own (nothing on other
    C libraries)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, ARENAS)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (which has malloc_trim and mallopt)."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError) as err:
        logger.debug("The C library's malloc_trim is not available: %s", err)
        return None
    return libc


# glibc fixes its limit on heap arenas when a thread first needs one of its own, so
# the heap is set up as this module is first imported (the agent imports it before
# it starts any thread): set up when the scheduler starts, the config watcher's
# threads had already made 6 arenas (measured: 0.8 MB more idle memory).
tune_heap()
