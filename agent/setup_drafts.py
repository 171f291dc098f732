"""What the setup holds between pages: typed input, connections in progress, a cache.

A connection being set up lives here, in memory, until its integration is saved: the
passwords typed on the first page must survive the certificate question and the
Tigerpaw page, yet never reach the browser (Flask's session is a cookie the browser
can read). Tigerpaw's lists are cached for a few minutes so that each page renders
fast even for a thousand accounts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agent.store import IntegrationSettings

logger = logging.getLogger(__name__)

#: A connection in progress is forgotten after this long without use.
DRAFT_LIFETIME = 3600.0
#: Tigerpaw and console lists are read again after this long.
CACHE_LIFETIME = 300.0

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class SourceInput:
    """The first page's fields: which console and how to reach it."""

    source: str
    ksc_address: str = ""
    ksc_user: str = ""
    ksc_password: str = ""
    use_certificate: bool = False
    use_proxy: bool = False
    proxy_address: str = ""
    proxy_user: str = ""
    proxy_password: str = ""
    kbh_email: str = ""
    kbh_password: str = ""


@dataclass(frozen=True, kw_only=True)
class TigerpawInput:
    """The Create integration page's fields."""

    name: str
    platform: str
    api_url: str
    soap_user: str
    soap_password: str = ""
    public_key: str = ""
    private_key: str = ""


@dataclass(kw_only=True)
class Draft:
    """A connection being set up (or re-checked): settings, secrets, certificate."""

    id: str
    settings: IntegrationSettings
    secrets: dict[str, str] = field(default_factory=dict)
    #: The integration being edited, or None while creating one.
    editing: str | None = None
    #: A server certificate waiting for the user to trust or refuse it.
    pending_fingerprint: str = ""
    pending_message: str = ""
    #: The name of the klserver.cer file as the person chose it (kept under
    #: another name), so that messages name the file they know.
    certificate_name: str = ""
    connected: bool = False
    tenant_count: int = 0
    touched: float = field(default_factory=time.monotonic)


class DraftBook:
    """Drafts by id, for one agent process; old ones are dropped."""

    def __init__(self, lifetime: float = DRAFT_LIFETIME) -> None:
        """Start empty."""
        self.lifetime = lifetime
        self._drafts: dict[str, Draft] = {}
        self._lock = threading.Lock()

    def put(self, draft: Draft) -> Draft:
        """Keep a draft (replacing one with the same id)."""
        draft.touched = time.monotonic()
        with self._lock:
            self._drop_old()
            self._drafts[draft.id] = draft
        return draft

    def get(self, draft_id: str | None) -> Draft | None:
        """The draft with this id, if it is still kept."""
        if not draft_id:
            return None
        with self._lock:
            self._drop_old()
            draft = self._drafts.get(draft_id)
            if draft is not None:
                draft.touched = time.monotonic()
            return draft

    def drop(self, draft_id: str | None) -> None:
        """Forget a draft (its integration was saved, or the user went away)."""
        with self._lock:
            self._drafts.pop(draft_id or "", None)

    def _drop_old(self) -> None:
        """Forget drafts unused for longer than the lifetime (lock held)."""
        limit = time.monotonic() - self.lifetime
        for key in [k for k, d in self._drafts.items() if d.touched < limit]:
            del self._drafts[key]


class TimedCache:
    """Values by key, each read again after a lifetime or when asked to."""

    def __init__(self, lifetime: float = CACHE_LIFETIME) -> None:
        """Start empty."""
        self.lifetime = lifetime
        self._values: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(
        self, key: tuple[str, ...], load: Callable[[], T], *, refresh: bool = False
    ) -> T:
        """The kept value, or a fresh one from ``load`` (which may raise)."""
        now = time.monotonic()
        with self._lock:
            kept = self._values.get(key)
        if kept is not None and not refresh and now - kept[0] < self.lifetime:
            return kept[1]  # type: ignore[no-any-return]

        value = load()
        with self._lock:
            self._values[key] = (now, value)
        return value

    def forget(self, prefix: str) -> None:
        """Drop every value whose key starts with ``prefix`` (an integration id)."""
        with self._lock:
            for key in [k for k in self._values if k[0] == prefix]:
                del self._values[key]
