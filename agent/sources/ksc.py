"""The KSC Open API client: virtual servers, devices, license usage and events.

The setup page and the sync call :class:`KscClient`; nothing else here speaks to
KSC. Choices where specs/ksc-open-api.md leaves room:

- **Credentials with a certificate.** KSC's Open API authenticates only the server
  (there is no client-certificate login), so ``klserver.cer`` decides which server
  certificate to trust (see ``ksc_tls.py``) and the user name and password of a KSC
  account are still needed to log in. A missing one is
  :class:`~agent.errors.WrongCredentials` naming the field ``user`` or ``password``.
- **Sessions.** Token sessions (``Session.StartSession``, ``X-KSC-Session``), one per
  virtual server, renewed once when KSC answers 401 or 403 (``ksc_session.py``).
- **Tenants.** A tenant is a virtual server; its id is ``KLVSRV_UID``, which stays
  the same when the virtual server is renamed, and its name ``KLVSRV_DN``, which is
  what the login takes (``X-KSC-VServer``). Methods take a tenant, its id or its
  display name. A client set up for one virtual server (``vserver=``, for an account
  that may not log in to the main server) knows that server only by its name, so
  there the tenant's id is the display name.
- **Devices** are read in chunks in ``KLHST_WKS_HOSTNAME`` order and survive a
  session that ends mid-read (``ksc_readers.py``); problems come from the bits of
  ``KLHST_WKS_STATUS_MASK`` and the kind from ``KLHST_WKS_CTYPE``
  (``ksc_records.py``).
- **Events**: the cursor is the last ``event_db_id`` read, as text; an empty cursor
  reads from the first event KSC holds.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from agent.errors import ProtocolError, SetupError
from agent.sources import records
from agent.sources.ksc_readers import RESULT_LIFETIME, Reader
from agent.sources.ksc_records import parse_vserver
from agent.sources.ksc_route import Route
from agent.sources.ksc_session import MAIN, KscSession, KscTransport
from agent.sources.ksc_tls import (
    DEFAULT_PORT,
    ProxySettings,
    TlsPolicy,
    fingerprint,
    parse_address,
)
from agent.sources.ksc_wire import SYSTEM, VirtualServerLoginFailed, unwrap
from agent.transport import DEFAULT_TIMEOUT

__all__ = [
    "DEFAULT_PORT",
    "KscClient",
    "ProxySettings",
    "VirtualServerLoginFailed",
    "fetch_certificate",
]

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 1000
DEFAULT_EVENT_LIMIT = 100
MAX_EVENT_LIMIT = 5000
#: KSC keeps a search open at most this long (documented for FindHosts).
MAX_RESULT_LIFETIME = 7200

Timeout = tuple[float, float] | float


def _timeouts(timeout: Timeout) -> tuple[float, float]:
    """(connect, read) seconds from one number or a pair."""
    return timeout if isinstance(timeout, tuple) else (timeout, timeout)


def fetch_certificate(
    address: str, proxy: ProxySettings | None = None, timeout: Timeout = 10.0
) -> tuple[str, str]:
    """The certificate KSC presents, for the setup page: (PEM, SHA-256 fingerprint).

    The fingerprint reads ``AB:CD:...``, as people compare it with the one the KSC
    server shows. Only the TLS handshake takes place; nothing is sent.
    """
    route = Route(
        parse_address(address), TlsPolicy(None, None), proxy, _timeouts(timeout)[0]
    )
    der = route.peer_certificate()
    return ssl.DER_cert_to_PEM_cert(der), fingerprint(der)


class KscClient:
    """Reads one KSC Administration Server for one integration.

    ``page_size`` is the number of records per chunk; ``result_lifetime`` the
    seconds KSC keeps a search open between chunks (at most 7200); ``attempts`` and
    ``sleep`` drive the retries of transient failures.
    """

    def __init__(
        self,
        address: str,
        user: str | None = None,
        password: str | None = None,
        *,
        vserver: str | None = None,
        certificate: Path | str | None = None,
        accepted_fingerprint: str | None = None,
        proxy: ProxySettings | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        page_size: int = DEFAULT_PAGE_SIZE,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 4,
        result_lifetime: int = RESULT_LIFETIME,
    ) -> None:
        timeouts = _timeouts(timeout)
        self.route = Route(
            parse_address(address),
            TlsPolicy(certificate, accepted_fingerprint),
            proxy,
            timeouts[0],
        )
        self.vserver = (vserver or "").strip() or None
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        transport = KscTransport(
            self.route,
            timeout=timeouts,
            attempts=attempts,
            sleep=sleep,
            pool_size=pool_size,
        )
        self._session = KscSession(transport, user, password)
        lifetime = max(1, min(result_lifetime, MAX_RESULT_LIFETIME))
        self._reader = Reader(self._session, self.page_size, lifetime)
        self._known: dict[str, records.Tenant] = {}
        self._lock = threading.Lock()
        # One listing at a time, counted: threads that missed a tenant while
        # another listed take that listing instead of asking KSC again.
        self._listing = threading.Lock()
        self._listings = 0

    def close(self) -> None:
        """End the sessions and close the pooled connections."""
        self._session.end_all()
        self._session.transport.close()

    def __enter__(self) -> KscClient:
        """Use the client in a ``with`` block that closes it."""
        return self

    def __exit__(self, *_: object) -> None:
        """Close the client at the end of the ``with`` block."""
        self.close()

    # What callers read.

    def check(self) -> list[records.Tenant]:
        """Log in afresh and list the virtual servers (the setup page's Proceed)."""
        if self.vserver is not None:
            self._session.login(self.vserver, force=True)
            return [self._scoped_tenant()]
        self._session.login(MAIN, force=True)
        return self.vservers()

    def vservers(self) -> list[records.Tenant]:
        """The enabled virtual servers, as tenants (id KLVSRV_UID, name KLVSRV_DN)."""
        if self.vserver is not None:
            self._session.login(self.vserver)
            return [self._scoped_tenant()]

        reply = self._session.call(MAIN, "VServers.GetVServers", {"lParentGroup": -1})
        rows = unwrap(reply.get("PxgRetVal"))
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise self._unreadable("VServers.GetVServers", "no list of servers")
        try:
            found = [parse_vserver(row) for row in rows]
        except ValueError as err:
            raise self._unreadable("VServers.GetVServers", str(err)) from err
        tenants = [tenant for tenant in found if tenant is not None]

        known = {tenant.id: tenant for tenant in tenants}
        known.update({tenant.name: tenant for tenant in tenants})
        with self._lock:
            self._known = known
            self._listings += 1
        return tenants

    def devices(self, vserver: records.Tenant | str) -> Iterator[records.Device]:
        """The virtual server's devices, read lazily one chunk at a time.

        The login happens now, so a wrong virtual server fails here rather than
        at the first device.
        """
        tenant = self._tenant(vserver)
        self._session.login(tenant.name)
        return self._reader.hosts(tenant.name, tenant.id)

    def license_usage(
        self, vserver: records.Tenant | str
    ) -> list[records.LicenseUsage]:
        """Each license key of the virtual server with the devices using it."""
        tenant = self._tenant(vserver)
        return self._reader.keys(tenant.name, tenant.id)

    def events(
        self,
        vserver: records.Tenant | str,
        cursor: str = "",
        limit: int = DEFAULT_EVENT_LIMIT,
    ) -> records.EventPage:
        """Up to ``limit`` events after ``cursor``, oldest first, and the new cursor."""
        tenant = self._tenant(vserver)
        limit = max(1, min(limit, MAX_EVENT_LIMIT))
        return self._reader.events(tenant.name, tenant.id, cursor, limit)

    # Virtual servers.

    def _scoped_tenant(self) -> records.Tenant:
        """The one virtual server of a client set up for it."""
        assert self.vserver is not None
        return records.Tenant(source=records.KSC, id=self.vserver, name=self.vserver)

    def _tenant(self, vserver: records.Tenant | str) -> records.Tenant:
        """The tenant a caller means, with its current display name for the login."""
        key = vserver.id if isinstance(vserver, records.Tenant) else str(vserver)
        key = key.strip()
        if not key:
            raise SetupError("Choose a KSC virtual server", field="vserver")
        if self.vserver is not None:
            if key != self.vserver:
                raise SetupError(
                    f'This KSC connection is set up for virtual server "{self.vserver}"'
                    f' only, not "{key}": change the Virtual server of the setup',
                    field="vserver",
                )
            return self._scoped_tenant()

        with self._lock:
            found = self._known.get(key)
            listings = self._listings
        if found is None:
            found = self._list_for(key, listings)
        # Not listed: log in by the name given, and KSC says whether it exists.
        return found or records.Tenant(source=records.KSC, id=key, name=key)

    def _list_for(self, key: str, listings: int) -> records.Tenant | None:
        """A new or renamed virtual server: list them again, once for every thread
        that missed it at the same time (the first cycle's workers all miss)."""
        with self._listing:
            with self._lock:
                listed_since = self._listings != listings
            if not listed_since:
                self.vservers()
            with self._lock:
                return self._known.get(key)

    def _unreadable(self, method: str, why: str) -> ProtocolError:
        """A reply we cannot read."""
        return ProtocolError(
            f"KSC at {self.route.target.netloc} answered {method} with something the "
            f"agent cannot read ({why}): send the agent's log to support",
            system=SYSTEM,
        )

    def __repr__(self) -> str:
        """The address and mode, never the credentials."""
        trust = self.route.policy.mode
        return f"KscClient({self.route.target.netloc!r}, trust={trust!r})"
