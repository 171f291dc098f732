"""Clients for the setup page, from settings and secrets that may not be saved yet.

The sync builds its clients from stored integrations; the setup must also reach a
console or Tigerpaw with what was typed a moment ago, before anything is stored. Both
paths end in the same client classes, so a check here is the check the sync relies on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from agent.sources import kbh
from agent.sources import records as source_records
from agent.store import KBH, IntegrationSettings
from agent.tigerpaw.client import TigerpawClient

logger = logging.getLogger(__name__)

#: Tigerpaw's hosted API site (specs/tigerpaw.md), shown as a hint, never dialled
#: unless a person enters it.
TIGERPAW_HOSTED_URL = "https://api2.tigerpawsoftware.com"
#: Tries per call while someone waits at the page: one retry, then the error in words.
SETUP_ATTEMPTS = 2


class SourceClient(Protocol):
    """What the setup asks of a console client (KSC or Business Hub)."""

    def check(self) -> list[source_records.Tenant]:
        """Sign in afresh and read the first tenants."""

    def close(self) -> None:
        """Let go of the connections."""


def tigerpaw_client(
    settings: IntegrationSettings, secrets: Mapping[str, str]
) -> TigerpawClient:
    """A Tigerpaw client for these settings and secrets."""
    return TigerpawClient(
        settings.tigerpaw_url,
        settings.tigerpaw_soap_user,
        secrets.get("tigerpaw_soap_password", ""),
        settings.tigerpaw_public_key,
        secrets.get("tigerpaw_private_key", ""),
        asmx_url=settings.tigerpaw_asmx_url or None,
        attempts=SETUP_ATTEMPTS,
    )


def kbh_client(
    settings: IntegrationSettings,
    secrets: Mapping[str, str],
    integration_id: str,
    server: Callable[[], str],
) -> kbh.KbhClient:
    """A Business Hub client; ``server`` gives the current KESCloudServer value."""
    return kbh.KbhClient(
        settings.kbh_email,
        secrets.get("kbh_password", ""),
        server=server,
        integration_id=integration_id,
        attempts=SETUP_ATTEMPTS,
    )


def source_client(
    settings: IntegrationSettings,
    secrets: Mapping[str, str],
    integration_id: str,
    server: Callable[[], str],
) -> SourceClient:
    """The console client of an integration: Business Hub or KSC."""
    if settings.source == KBH:
        return kbh_client(settings, secrets, integration_id, server)
    return ksc_client(settings, secrets)


def ksc_client(
    settings: IntegrationSettings, secrets: Mapping[str, str]
) -> SourceClient:
    """A KSC Open API client (address, account, certificate or fingerprint, proxy)."""
    from agent.sources.ksc import KscClient, ProxySettings

    proxy = None
    if settings.proxy_address.strip():
        proxy = ProxySettings(
            settings.proxy_address.strip(),
            settings.proxy_user.strip() or None,
            secrets.get("proxy_password") or None,
        )
    certificate = settings.ksc_certificate_path.strip()
    return KscClient(
        settings.ksc_address,
        settings.ksc_user,
        secrets.get("ksc_password", ""),
        certificate=Path(certificate) if certificate else None,
        accepted_fingerprint=settings.ksc_fingerprint.strip() or None,
        proxy=proxy,
        attempts=SETUP_ATTEMPTS,
    )
