"""The clients an integration talks through, built from its settings and secrets.

The sync builds them from a stored integration afresh for every cycle, so a password
or address changed on the page is used from the next cycle on; Business Hub follows
``KESCloudServer`` at every call. Retries inside a client are few and short and wait
on the sync's stop event, so Quit is never held up by a backoff: the outbox retries
across cycles instead. The setup page builds its clients with the same builders from
what was typed a moment ago (:mod:`agent.setup_clients`), so a check there is the
check the sync relies on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.config import Settings
from agent.errors import SetupError
from agent.secrets import SecretStore, secret_name
from agent.sources.kbh import KbhClient, ServerTable
from agent.store import KBH, Integration, IntegrationSettings, console_identity
from agent.sync.tenant_sync import Source
from agent.tigerpaw.client import TigerpawClient
from agent.transport import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from agent.sources.ksc import KscClient

logger = logging.getLogger(__name__)

#: (connect, read) seconds for every call the sync makes.
SYNC_TIMEOUT = (10.0, 60.0)
#: Attempts per safe call inside a client (the outbox retries across cycles).
SYNC_ATTEMPTS = 3
#: (connect, read) seconds for Tigerpaw, whose calls are small: a hung Tigerpaw
#: fails a write in 15 s and a read (retried once) in 30 s, so it shows as
#: unreachable within half a minute or so instead of after minutes of waiting.
TIGERPAW_TIMEOUT = (5.0, 15.0)

#: What each secret is called on the page, for the message when one is missing.
SECRET_LABELS = {
    "tigerpaw_soap_password": "Tigerpaw SOAP password",
    "tigerpaw_private_key": "Tigerpaw REST private key",
    "ksc_password": "Kaspersky Security Center password",
    "proxy_password": "proxy password",
    "kbh_password": "Business Hub password",
}


@dataclass
class Connections:
    """An integration's console client and Tigerpaw client, closed together."""

    source: Source
    #: The limits key of the console's API (one per KSC server; one for KBH).
    source_api: str
    #: How orders and logs name the console ("Kaspersky Business Hub").
    source_label: str
    tigerpaw: TigerpawClient

    def close(self) -> None:
        """Close both clients' connections."""
        for client in (self.source, self.tigerpaw):
            close = getattr(client, "close", None)
            if close is not None:
                close()


class SecretLookup(Protocol):
    """An integration's password or key by its field name (such as ``ksc_password``)."""

    def __call__(self, field: str, *, required: bool) -> str:
        """The secret, or "" when it is not there and not ``required``."""
        ...


@dataclass(frozen=True)
class Patience:
    """How long a client's calls may take and how often a safe one is tried."""

    attempts: int
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    #: Waits between attempts (the sync's stop event, so Quit cuts them short).
    sleep: Callable[[float], Any] = time.sleep


def build_tigerpaw(
    settings: IntegrationSettings, secret: SecretLookup, patience: Patience
) -> TigerpawClient:
    """A Tigerpaw client for an integration's settings and secrets."""
    return TigerpawClient(
        settings.tigerpaw_url,
        settings.tigerpaw_soap_user,
        secret("tigerpaw_soap_password", required=True),
        settings.tigerpaw_public_key,
        secret("tigerpaw_private_key", required=True),
        asmx_url=settings.tigerpaw_asmx_url or None,
        timeout=patience.timeout,
        attempts=patience.attempts,
        sleep=patience.sleep,
    )


def build_kbh(
    settings: IntegrationSettings,
    secret: SecretLookup,
    patience: Patience,
    *,
    integration_id: str,
    server: Callable[[], str],
    table: ServerTable | None = None,
) -> KbhClient:
    """A Business Hub client; ``server`` gives the current KESCloudServer value."""
    return KbhClient(
        settings.kbh_email,
        secret("kbh_password", required=True),
        server=server,
        integration_id=integration_id,
        table=table,
        timeout=patience.timeout,
        attempts=patience.attempts,
        sleep=patience.sleep,
    )


def build_ksc(
    settings: IntegrationSettings, secret: SecretLookup, patience: Patience
) -> KscClient:
    """A KSC Open API client: address, account, certificate or fingerprint, proxy."""
    from agent.sources.ksc import KscClient, ProxySettings

    proxy = None
    if settings.proxy_address.strip():
        proxy = ProxySettings(
            settings.proxy_address.strip(),
            settings.proxy_user.strip() or None,
            secret("proxy_password", required=False) or None,
        )
    certificate = settings.ksc_certificate_path.strip()
    return KscClient(
        settings.ksc_address,
        settings.ksc_user,
        secret("ksc_password", required=True),
        certificate=Path(certificate) if certificate else None,
        accepted_fingerprint=settings.ksc_fingerprint.strip() or None,
        proxy=proxy,
        timeout=patience.timeout,
        attempts=patience.attempts,
        sleep=patience.sleep,
    )


def stored_secrets(secrets: SecretStore, integration: Integration) -> SecretLookup:
    """The saved secrets of an integration; SetupError names a required one missing."""

    def secret(field: str, *, required: bool) -> str:
        """A saved secret of the integration ("" for a missing optional one)."""
        value = secrets.get(secret_name(integration.id, field)) or ""
        if required and not value:
            raise SetupError(
                f"The {SECRET_LABELS.get(field, field)} of the integration "
                f"{integration.name} is not saved on this computer: enter it again "
                "in the integration's properties",
                field=field,
            )
        return value

    return secret


def tigerpaw_client(
    integration: Integration,
    secrets: SecretStore,
    *,
    sleep: Callable[[float], Any],
    attempts: int = SYNC_ATTEMPTS,
) -> TigerpawClient:
    """The Tigerpaw client of a stored integration."""
    return build_tigerpaw(
        integration,
        stored_secrets(secrets, integration),
        Patience(attempts, tigerpaw_timeout(), sleep),
    )


def tigerpaw_timeout() -> tuple[float, float]:
    """Tigerpaw's (connect, read) seconds, never longer than the sync's own."""
    connect, read = SYNC_TIMEOUT
    return min(connect, TIGERPAW_TIMEOUT[0]), min(read, TIGERPAW_TIMEOUT[1])


def kbh_client(
    integration: Integration,
    secrets: SecretStore,
    settings: Callable[[], Settings],
    *,
    sleep: Callable[[float], Any],
    table: ServerTable | None = None,
    attempts: int = SYNC_ATTEMPTS,
) -> KbhClient:
    """The Business Hub client; it follows ``KESCloudServer`` at every call."""
    return build_kbh(
        integration,
        stored_secrets(secrets, integration),
        Patience(attempts, SYNC_TIMEOUT, sleep),
        integration_id=integration.id,
        server=lambda: settings().kes_cloud_server,
        table=table,
    )


def ksc_client(
    integration: Integration,
    secrets: SecretStore,
    *,
    sleep: Callable[[float], Any],
    attempts: int = SYNC_ATTEMPTS,
) -> Source:
    """The KSC Open API client of a stored integration."""
    return build_ksc(
        integration,
        stored_secrets(secrets, integration),
        Patience(attempts, SYNC_TIMEOUT, sleep),
    )


def connect(
    integration: Integration,
    secrets: SecretStore,
    settings: Callable[[], Settings],
    *,
    stop: threading.Event | None = None,
    kbh_table: ServerTable | None = None,
    attempts: int = SYNC_ATTEMPTS,
) -> Connections:
    """Both clients of a stored integration; retries wait on ``stop``."""
    stop = stop or threading.Event()
    tigerpaw = tigerpaw_client(integration, secrets, sleep=stop.wait, attempts=attempts)
    try:
        if integration.source == KBH:
            source: Source = kbh_client(
                integration,
                secrets,
                settings,
                sleep=stop.wait,
                table=kbh_table,
                attempts=attempts,
            )
            label, api = "Kaspersky Business Hub", KBH
        else:
            source = ksc_client(
                integration, secrets, sleep=stop.wait, attempts=attempts
            )
            label = f"Kaspersky Security Center at {integration.ksc_address}"
            api = console_identity(integration.settings)
    except BaseException:
        tigerpaw.close()
        raise
    return Connections(
        source=source, source_api=api, source_label=label, tigerpaw=tigerpaw
    )
