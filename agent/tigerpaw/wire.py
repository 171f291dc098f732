"""What Tigerpaw's REST and ASMX calls share: the HTTP transport and error wording.

Errors name the setup field to fix and never quote a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import requests

from agent.errors import ProtocolError, RemoteError
from agent.transport import HttpTransport, describe_address

logger = logging.getLogger(__name__)

SYSTEM = "Tigerpaw"
#: The longest piece of a server's own text quoted in an error.
MAX_QUOTED = 300


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret blanked out and its length bounded."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 3] + "..."


class TigerpawHttp(HttpTransport):
    """An :class:`HttpTransport` for one Tigerpaw API.

    Connection failures name the setup field of the address (``api_url`` or
    ``asmx_url``) instead of the generic ``address``; absolute URLs (a WSDL's
    imports, the ASMX address) are used as they are.
    """

    def __init__(self, base_url: str, *, address_field: str, **kwargs: Any) -> None:
        super().__init__(SYSTEM, base_url, **kwargs)
        self.address_field = address_field
        if kwargs.get("verify") is False:
            # Allowed for a technician's test bench, but never silently.
            logger.warning(
                "Certificate checks are off for Tigerpaw at %s: anyone in between "
                "can read the keys and passwords",
                describe_address(base_url),
            )

    def url(self, path: str) -> str:
        """The full address of ``path``; an absolute URL stays as it is."""
        if path.startswith(("http://", "https://")):
            return path
        return super().url(path)

    def request(
        self, method: str, path: str, *, retry: bool = True, **kwargs: Any
    ) -> requests.Response:
        """Send like :meth:`HttpTransport.request`; errors name the address field."""
        try:
            return super().request(method, path, retry=retry, **kwargs)
        except RemoteError as err:
            if err.field == "address":
                err.field = self.address_field
            raise

    def wrong_address(self, response: requests.Response, what: str) -> ProtocolError:
        """The error for a 404 (or a reply that is not Tigerpaw's): the address."""
        address = describe_address(response.url or self.base_url)
        if self.address_field == "api_url":
            advice = (
                "check the Tigerpaw API address (the site that serves /api/, such as "
                "https://tigerpaw.example.com)"
            )
        else:
            advice = "check the tsiWS address (it ends in /api/rmm/tsiWS.asmx)"
        return ProtocolError(
            f"HTTP {response.status_code} from {address}: there is no {what} at "
            f"{response.url}. The address is wrong: {advice}",
            system=SYSTEM,
            field=self.address_field,
        )
