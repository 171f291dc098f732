"""Clients for the setup page, from settings and secrets that may not be saved yet.

The sync builds its clients from stored integrations; the setup must also reach a
console or Tigerpaw with what was typed a moment ago, before anything is stored. Both
go through the builders of :mod:`agent.connections`, so a check here is the check the
sync relies on; only the secrets (as typed) and the patience (a person waits) differ.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from agent.connections import (
    Patience,
    SecretLookup,
    build_kbh,
    build_ksc,
    build_tigerpaw,
)
from agent.sources import records as source_records
from agent.store import KBH, IntegrationSettings
from agent.tigerpaw.client import TigerpawClient

logger = logging.getLogger(__name__)

#: Tigerpaw's hosted API site (specs/tigerpaw.md), shown as a hint, never dialled
#: unless a person enters it.
TIGERPAW_HOSTED_URL = "https://api2.tigerpawsoftware.com"
#: Tries per call while someone waits at the page: one retry, then the error in words.
SETUP_ATTEMPTS = 2
#: Default timeouts and waits, with few attempts.
SETUP_PATIENCE = Patience(SETUP_ATTEMPTS)


class SourceClient(Protocol):
    """What the setup asks of a console client (KSC or Business Hub)."""

    def check(self) -> list[source_records.Tenant]:
        """Sign in afresh and read the first tenants."""

    def close(self) -> None:
        """Let go of the connections."""


def typed_secrets(secrets: Mapping[str, str]) -> SecretLookup:
    """The secrets as typed: a missing one is sent blank, and the check says so."""

    def secret(field: str, *, required: bool) -> str:
        """A typed secret, or ""."""
        return secrets.get(field, "")

    return secret


def tigerpaw_client(
    settings: IntegrationSettings, secrets: Mapping[str, str]
) -> TigerpawClient:
    """A Tigerpaw client for these settings and secrets."""
    return build_tigerpaw(settings, typed_secrets(secrets), SETUP_PATIENCE)


def source_client(
    settings: IntegrationSettings,
    secrets: Mapping[str, str],
    integration_id: str,
    server: Callable[[], str],
) -> SourceClient:
    """The console client of an integration: Business Hub or KSC.

    ``server`` gives the current KESCloudServer value, for Business Hub.
    """
    if settings.source == KBH:
        return build_kbh(
            settings,
            typed_secrets(secrets),
            SETUP_PATIENCE,
            integration_id=integration_id,
            server=server,
        )
    return build_ksc(settings, typed_secrets(secrets), SETUP_PATIENCE)
