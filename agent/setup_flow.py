"""The setup steps the page walks: connect, create the integration, edit, delete.

The page never talks to a console or Tigerpaw itself (DESIGN.md): it asks the agent's
:class:`SetupService`, which checks every connection with the real clients before
anything is saved, keeps passwords and keys in the secret store only, and leaves
Tigerpaw and the consoles untouched when an integration or tenant is removed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from agent.errors import AgentError, CertificateNotTrusted, SetupError
from agent.paths import ensure_private_dir
from agent.setup_base import SetupBase
from agent.setup_choices import ChoiceSteps
from agent.setup_clients import TIGERPAW_HOSTED_URL, source_client, tigerpaw_client
from agent.setup_drafts import Draft, SourceInput, TigerpawInput
from agent.setup_tenants import TenantSteps
from agent.store import KBH, KSC, Administrator, Integration, IntegrationSettings
from agent.tigerpaw.client import site_url
from agent.tigerpaw.models import ConnectionCheck

logger = logging.getLogger(__name__)

CERTIFICATE_FOLDER = "certificates"
#: The connection fields of an integration (what the first page sets).
CONNECTION_FIELDS = (
    "source",
    "ksc_address",
    "ksc_user",
    "ksc_certificate_path",
    "ksc_fingerprint",
    "proxy_address",
    "proxy_user",
    "kbh_email",
)


@dataclass(frozen=True)
class Created:
    """A saved integration and what the Tigerpaw check found."""

    integration: Integration
    check: ConnectionCheck


class SetupService(TenantSteps, ChoiceSteps, SetupBase):
    """Every setup step, for one agent."""

    # Defaults the page shows.

    def default_tigerpaw_url(self) -> str:
        """The Tigerpaw API address to offer: the sandbox's, else none."""
        sandbox = self.agent.sandbox_description
        return str(sandbox["tigerpaw"]["url"]) if sandbox else ""

    @staticmethod
    def hosted_tigerpaw_url() -> str:
        """Tigerpaw's hosted API site, which the page names as a hint."""
        return TIGERPAW_HOSTED_URL

    # Step 1: connect.

    def begin(
        self,
        given: SourceInput,
        *,
        certificate: bytes | None = None,
        certificate_name: str = "",
        draft_id: str | None = None,
        editing: str | None = None,
    ) -> Draft:
        """Make (or renew) the draft of a connection from the first page's fields.

        ``certificate`` is an uploaded klserver.cer (``certificate_name`` its
        name as chosen); without one, a certificate uploaded earlier to the same
        draft stays. Blank passwords keep what the
        draft or the edited integration already has.
        """
        previous = self.drafts.get(draft_id)
        if editing is not None:
            base = self.integration(editing).settings
            kept = self.stored_secrets(editing)
            new_id = editing
        elif previous is not None and previous.editing is None:
            base, kept, new_id = previous.settings, dict(previous.secrets), previous.id
        else:
            base, kept, new_id = IntegrationSettings(source=given.source), {}, None
        draft_key = new_id or str(uuid.uuid4())

        cert_path = base.ksc_certificate_path if given.use_certificate else ""
        same_draft = previous is not None and previous.editing == editing
        shown_name = previous.certificate_name if previous and same_draft else ""
        if given.source == KSC and given.use_certificate and certificate:
            cert_path = str(self._save_certificate(draft_key, certificate))
            shown_name = certificate_name
        address_same = base.ksc_address.strip() == given.ksc_address.strip()
        settings = replace(
            base,
            source=given.source,
            ksc_address=given.ksc_address if given.source == KSC else "",
            ksc_user=given.ksc_user if given.source == KSC else "",
            ksc_certificate_path=cert_path if given.source == KSC else "",
            ksc_fingerprint=base.ksc_fingerprint if address_same else "",
            proxy_address=given.proxy_address if given.use_proxy else "",
            proxy_user=given.proxy_user if given.use_proxy else "",
            kbh_email=given.kbh_email if given.source == KBH else "",
        )
        secrets = self._connection_secrets(given, kept)
        draft = Draft(
            id=draft_key,
            settings=settings,
            secrets=secrets,
            editing=editing,
            certificate_name=shown_name if cert_path else "",
        )
        return self.drafts.put(draft)

    def connect(self, draft_id: str) -> Draft:
        """Reach the console with the draft's settings; typed errors say what failed.

        An unknown self-signed KSC certificate raises CertificateNotTrusted and
        leaves its fingerprint in the draft for the user to trust or refuse.
        """
        draft = self.draft(draft_id)
        draft.connected = False
        try:
            client = source_client(
                draft.settings, draft.secrets, draft.id, self.kes_cloud_server
            )
        except AgentError as err:
            _name_the_chosen_file(err, draft)
            raise
        try:
            tenants = client.check()
        except AgentError as err:
            _name_the_chosen_file(err, draft)
            if not isinstance(err, CertificateNotTrusted):
                raise

            draft.pending_fingerprint = err.fingerprint
            draft.pending_message = str(err)
            raise
        finally:
            client.close()

        draft.pending_fingerprint = draft.pending_message = ""
        draft.connected = True
        draft.tenant_count = len(tenants)
        logger.info(
            "Setup reached %s as %s",
            "Business Hub" if draft.settings.source == KBH else "KSC",
            draft.settings.kbh_email or draft.settings.ksc_user or "certificate",
        )
        return draft

    def trust_certificate(self, draft_id: str, fingerprint: str) -> Draft:
        """Trust the certificate the user saw (by its fingerprint) and connect again."""
        draft = self.draft(draft_id)
        if not draft.pending_fingerprint or fingerprint != draft.pending_fingerprint:
            raise SetupError(
                "The certificate changed while you looked at it: connect again",
                field="certificate",
            )
        draft.settings = replace(draft.settings, ksc_fingerprint=fingerprint)
        logger.info("The user trusted the KSC certificate %s", fingerprint)
        return self.connect(draft.id)

    def refuse_certificate(self, draft_id: str) -> None:
        """Forget the certificate the user refused; nothing is trusted."""
        draft = self.drafts.get(draft_id)
        if draft is not None:
            draft.pending_fingerprint = draft.pending_message = ""
            draft.connected = False

    def draft(self, draft_id: str | None) -> Draft:
        """The draft in progress, or a SetupError sending the user back to step 1."""
        draft = self.drafts.get(draft_id)
        if draft is None:
            raise SetupError(
                "The setup was interrupted (the agent restarted or an hour passed): "
                "connect again",
                field="draft",
            )
        return draft

    def apply_connection(self, draft_id: str) -> Integration:
        """Save a re-checked connection to the integration it edits."""
        draft = self.draft(draft_id)
        if draft.editing is None or not draft.connected:
            raise SetupError("Connect first, then save", field="draft")
        current = self.integration(draft.editing)
        changes = {name: getattr(draft.settings, name) for name in CONNECTION_FIELDS}
        updated = self.store.update_integration(
            current.id, replace(current.settings, **changes)
        )
        self.save_secrets(current.id, draft.secrets)
        self.drafts.drop(draft.id)
        self.cache.forget(current.id)
        self.changed()
        return updated

    # Step 2: create the integration.

    def create_integration(self, draft_id: str, given: TigerpawInput) -> Created:
        """Check both Tigerpaw APIs with the typed settings, then save everything."""
        draft = self.draft(draft_id)
        if not draft.connected:
            raise SetupError("Connect to Kaspersky first", field="draft")
        if self.store.find_integration(given.name) is not None:
            raise SetupError(
                f"An integration named {given.name!r} exists already: choose "
                "another name",
                field="name",
            )
        settings = self._with_tigerpaw(draft.settings, given)
        tigerpaw_secrets = {
            "tigerpaw_soap_password": given.soap_password,
            "tigerpaw_private_key": given.private_key,
        }
        check = self._check_tigerpaw(settings, tigerpaw_secrets)

        created = self.store.create_integration(settings, integration_id=draft.id)
        try:
            self.save_secrets(created.id, {**draft.secrets, **tigerpaw_secrets})
        except Exception:
            # Without its secrets the integration could never sync: undo it whole.
            self.store.delete_integration(created.id)
            raise
        if created.source == KBH and not self.store.list_administrators(created.id):
            # The Business Hub user who signed in is the first administrator.
            self.store.add_administrators(
                created.id, [Administrator(created.kbh_email)]
            )
        self.drafts.drop(draft.id)
        self.changed()
        return Created(created, check)

    def update_tigerpaw(self, integration_id: str, given: TigerpawInput) -> Created:
        """Re-check Tigerpaw with the edited fields (blank secrets kept), then save."""
        current = self.integration(integration_id)
        settings = self._with_tigerpaw(current.settings, given)
        stored = self.stored_secrets(integration_id)
        tigerpaw_secrets = {
            "tigerpaw_soap_password": given.soap_password
            or stored.get("tigerpaw_soap_password", ""),
            "tigerpaw_private_key": given.private_key
            or stored.get("tigerpaw_private_key", ""),
        }
        check = self._check_tigerpaw(settings, tigerpaw_secrets)

        updated = self.store.update_integration(integration_id, settings)
        self.save_secrets(integration_id, tigerpaw_secrets)
        self.cache.forget(integration_id)
        self.changed()
        return Created(updated, check)

    def delete_integration(self, integration_id: str) -> bool:
        """Remove an integration here only: nothing in Tigerpaw or the console."""
        removed = self.store.delete_integration(integration_id)
        self.secrets.forget_integration(integration_id)
        certificate = self._certificate_path(integration_id)
        certificate.unlink(missing_ok=True)
        self.cache.forget(integration_id)
        self.changed()
        return removed

    # Helpers.

    def _with_tigerpaw(
        self, settings: IntegrationSettings, given: TigerpawInput
    ) -> IntegrationSettings:
        """The settings with the Tigerpaw page's fields (address normalised)."""
        return replace(
            settings,
            name=given.name,
            platform=given.platform,
            tigerpaw_url=site_url(given.api_url),
            tigerpaw_asmx_url="",
            tigerpaw_soap_user=given.soap_user,
            tigerpaw_public_key=given.public_key,
        )

    @staticmethod
    def _check_tigerpaw(
        settings: IntegrationSettings, secrets: dict[str, str]
    ) -> ConnectionCheck:
        """Both Tigerpaw APIs answer and every right is there, or a typed error."""
        with tigerpaw_client(settings, secrets) as client:
            check = client.check()
        logger.info(
            "Tigerpaw at %s answered for rep %s: %d accounts",
            settings.tigerpaw_url,
            check.rep_name,
            check.account_count,
        )
        return check

    @staticmethod
    def _connection_secrets(given: SourceInput, kept: dict[str, str]) -> dict[str, str]:
        """The console secrets typed now, or else kept from before."""
        if given.source == KBH:
            names = {"kbh_password": given.kbh_password}
        else:
            names = {"ksc_password": given.ksc_password}
            if given.use_proxy:
                names["proxy_password"] = given.proxy_password
        return {name: value or kept.get(name, "") for name, value in names.items()}

    def _certificate_path(self, draft_id: str) -> Path:
        """Where the uploaded klserver.cer of a draft or integration is kept."""
        return self.agent.options.data_dir / CERTIFICATE_FOLDER / f"{draft_id}.cer"

    def _save_certificate(self, draft_id: str, data: bytes) -> Path:
        """Keep an uploaded certificate beside the database."""
        path = self._certificate_path(draft_id)
        ensure_private_dir(path.parent)
        path.write_bytes(data)
        return path


def _name_the_chosen_file(err: AgentError, draft: Draft) -> None:
    """Put the certificate file's name as the person chose it (kbh.cer) where a
    message names the agent's own copy of it, a path they never saw."""
    kept = draft.settings.ksc_certificate_path
    if not kept or not err.args or not isinstance(err.args[0], str):
        return
    if kept not in err.args[0]:
        return

    shown = draft.certificate_name or "the certificate file chosen earlier"
    err.args = (err.args[0].replace(kept, shown), *err.args[1:])
