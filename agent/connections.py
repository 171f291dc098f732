"""The clients a stored integration syncs with, built from the store and secrets.

The sync builds them afresh for every cycle, so a password or address changed on the
page is used from the next cycle on; Business Hub follows ``KESCloudServer`` at every
call. Retries inside a client are few and short and wait on the sync's stop event, so
Quit is never held up by a backoff: the outbox retries across cycles instead.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.errors import SetupError
from agent.secrets import SecretStore, secret_name
from agent.sources.kbh import KbhClient, ServerTable
from agent.store import KBH, Integration, console_identity
from agent.sync.tenant_sync import Source
from agent.tigerpaw.client import TigerpawClient

logger = logging.getLogger(__name__)

#: (connect, read) seconds for every call the sync makes.
SYNC_TIMEOUT = (10.0, 60.0)
#: Attempts per safe call inside a client (the outbox retries across cycles).
SYNC_ATTEMPTS = 3

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


def _secret(
    secrets: SecretStore, integration: Integration, field: str, *, required: bool
) -> str:
    """A saved secret of the integration; SetupError names a missing one."""
    value = secrets.get(secret_name(integration.id, field)) or ""
    if required and not value:
        raise SetupError(
            f"The {SECRET_LABELS.get(field, field)} of the integration "
            f"{integration.name} is not saved on this computer: enter it again in the "
            "integration's properties",
            field=field,
        )
    return value


def tigerpaw_client(
    integration: Integration,
    secrets: SecretStore,
    *,
    sleep: Callable[[float], Any],
    attempts: int = SYNC_ATTEMPTS,
) -> TigerpawClient:
    """The Tigerpaw client of a stored integration."""
    return TigerpawClient(
        integration.tigerpaw_url,
        integration.tigerpaw_soap_user,
        _secret(secrets, integration, "tigerpaw_soap_password", required=True),
        integration.tigerpaw_public_key,
        _secret(secrets, integration, "tigerpaw_private_key", required=True),
        asmx_url=integration.tigerpaw_asmx_url or None,
        timeout=SYNC_TIMEOUT,
        attempts=attempts,
        backoff=0.5,
        sleep=sleep,
    )


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
    return KbhClient(
        integration.kbh_email,
        _secret(secrets, integration, "kbh_password", required=True),
        server=lambda: settings().kes_cloud_server,
        integration_id=str(uuid.UUID(integration.id)),
        table=table,
        timeout=SYNC_TIMEOUT,
        attempts=attempts,
        sleep=sleep,
    )


def ksc_client(
    integration: Integration,
    secrets: SecretStore,
    *,
    sleep: Callable[[float], Any],
    attempts: int = SYNC_ATTEMPTS,
) -> Source:
    """The KSC Open API client: address, account, certificate or fingerprint, proxy."""
    from agent.sources.ksc import KscClient, ProxySettings

    certificate = integration.ksc_certificate_path.strip()
    proxy = None
    if integration.proxy_address.strip():
        proxy = ProxySettings(
            integration.proxy_address.strip(),
            integration.proxy_user.strip() or None,
            _secret(secrets, integration, "proxy_password", required=False) or None,
        )
    client: Source = KscClient(
        integration.ksc_address,
        integration.ksc_user,
        _secret(secrets, integration, "ksc_password", required=True),
        certificate=Path(certificate) if certificate else None,
        accepted_fingerprint=integration.ksc_fingerprint.strip() or None,
        proxy=proxy,
        timeout=SYNC_TIMEOUT,
        attempts=attempts,
        sleep=sleep,
    )
    return client


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
