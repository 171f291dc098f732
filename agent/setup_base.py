"""What every setup step shares: the agent's store and secrets, clients, the caches."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from agent import connections
from agent.errors import ConfigError, SetupError
from agent.secrets import SECRET_FIELDS, SecretStore, secret_name
from agent.setup_drafts import DraftBook, TimedCache
from agent.store import KBH, Integration, Store
from agent.tigerpaw.client import TigerpawClient

if TYPE_CHECKING:
    from agent.app import Agent

logger = logging.getLogger(__name__)


class SetupBase:
    """The agent's parts the setup steps use, and how they build clients."""

    def __init__(self, agent: Agent) -> None:
        """Serve ``agent``; its store and secrets open when it starts."""
        self.agent = agent
        self.drafts = DraftBook()
        self.cache = TimedCache()

    @property
    def store(self) -> Store:
        """The agent's open store."""
        if self.agent.store is None:
            raise SetupError("The agent is still starting: reload the page")
        return self.agent.store

    @property
    def secrets(self) -> SecretStore:
        """The agent's secret store."""
        if self.agent.secrets is None:
            raise SetupError("The agent is still starting: reload the page")
        return self.agent.secrets

    def changed(self) -> None:
        """Tell the sync that integrations or tenants changed, if it runs."""
        scheduler = getattr(self.agent, "scheduler", None)
        if scheduler is not None:
            scheduler.wake()

    def kes_cloud_server(self) -> str:
        """The Business Hub server the config file chooses now."""
        return self.agent.config.settings.kes_cloud_server

    def kbh_address_known(self) -> bool:
        """Whether this agent knows a Business Hub address for the current
        KESCloudServer (it ships with none; the sandbox registers its own)."""
        from agent.sources.kbh import SERVERS

        try:
            SERVERS.resolve(self.kes_cloud_server())
        except ConfigError:
            return False
        return True

    def integration(self, integration_id: str) -> Integration:
        """The integration, or a SetupError saying it is gone."""
        found = self.store.get_integration(integration_id)
        if found is None:
            raise SetupError(
                "That integration no longer exists: open the dashboard again",
                field="integration",
            )
        return found

    def stored_secrets(self, integration_id: str) -> dict[str, str]:
        """The integration's saved passwords and keys (kept out of every page)."""
        found = {}
        for name in SECRET_FIELDS:
            value = self.secrets.get(secret_name(integration_id, name))
            if value:
                found[name] = value
        return found

    def secrets_set(self, integration_id: str) -> set[str]:
        """Which secrets the integration has saved: names only, for the page."""
        return set(self.stored_secrets(integration_id))

    def save_secrets(self, integration_id: str, values: dict[str, str]) -> None:
        """Save the given secrets of an integration; blank ones are left as they are."""
        for name, value in values.items():
            if value:
                self.secrets.set(secret_name(integration_id, name), value)

    def tigerpaw(self, integration: Integration) -> TigerpawClient:
        """A Tigerpaw client for a saved integration, as the sync builds it."""
        return connections.tigerpaw_client(
            integration, self.secrets, sleep=self.agent.stop_event.wait
        )

    def source(self, integration: Integration) -> Any:
        """The console client of a saved integration, as the sync builds it."""
        if integration.source == KBH:
            return connections.kbh_client(
                integration,
                self.secrets,
                lambda: self.agent.config.settings,
                sleep=self.agent.stop_event.wait,
            )
        return connections.ksc_client(
            integration, self.secrets, sleep=self.agent.stop_event.wait
        )
