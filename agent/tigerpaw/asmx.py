"""Tigerpaw's tsiWS ASMX service through zeep: the account list and charge writes.

The WSDL is read once per client, on first use, with the same verified requests
session (and the same timeouts and retries) as the calls; the calls go to the
configured address, not to whatever host the WSDL names. Credentials travel in the
``AuthHeader`` SOAP header. A refusal comes back as a SOAP fault; its faultstring is
turned into a typed error. An HTML page instead of SOAP (IIS's 404 or 503) becomes
"HTTP 503 from <address>" (retried) or "the address is wrong" (not retried), never
an XML parse error.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
import zeep
import zeep.exceptions
import zeep.helpers
from lxml import etree
from zeep.wsdl.bindings.soap import Soap11Binding

from agent.errors import (
    AccountInactive,
    NotCrossReferenced,
    PermissionDenied,
    ProtocolError,
    RecordNotFound,
    RemoteError,
    RequestRejected,
    ServerError,
    WrongCredentials,
)
from agent.tigerpaw import asmx_charges
from agent.tigerpaw.asmx_charges import ChargeLine, ChargeLineResult
from agent.tigerpaw.models import Account
from agent.tigerpaw.wire import SYSTEM, TigerpawHttp, scrub
from agent.transport import describe_address

logger = logging.getLogger(__name__)

TNS = "http://www.tigerpawsoftware.com"
BINDING = f"{{{TNS}}}tsiWSSoap"
USERS_TOOL = "tsiWS Users.exe (Tigerpaw API Tools)"
LIST_RIGHT = "Allow user to list accounts via API"
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_ACCOUNT = re.compile(r"Account (\d+)(?: \(([^)]{1,100})\))?")


class AsmxHttp(TigerpawHttp):
    """The ASMX transport: SOAP faults that blame the request go on to zeep.

    A fault that blames the server, or an HTML error page, is a typed error here.
    """

    def status_error(self, response: requests.Response) -> RemoteError | None:
        """None for a SOAP fault that blames the request, else the base's error."""
        if response.status_code != 500 or not _is_xml(response):
            return super().status_error(response)
        code, reason = _fault_of(response.content)
        if code is None or not code.endswith(("Server", "Receiver")):
            return None
        address = describe_address(response.url or self.base_url)
        return ServerError(
            f"HTTP 500 from {address}: {scrub(reason, ())} The agent tries again later",
            system=SYSTEM,
            status=500,
        )


def _is_xml(response: requests.Response) -> bool:
    """Whether a reply says it is XML (SOAP), not an HTML page."""
    kind = response.headers.get("Content-Type", "").lower()
    return "xml" in kind


def _fault_of(content: bytes) -> tuple[str | None, str]:
    """The fault code and reason of a SOAP 1.1 or 1.2 fault (None if none)."""
    try:
        root = etree.fromstring(content, _SAFE_PARSER)
    except etree.XMLSyntaxError:
        return None, ""
    fault = next((e for e in root.iter() if etree.QName(e).localname == "Fault"), None)
    if fault is None:
        return None, ""
    texts = {etree.QName(e).localname: (e.text or "").strip() for e in fault.iter()}
    code = texts.get("faultcode") or texts.get("Value") or ""
    reason = texts.get("faultstring") or texts.get("Text") or ""
    return code, reason


class SoapTransport(zeep.Transport):
    """zeep's transport on our :class:`AsmxHttp`: one session, timeouts, retries."""

    def __init__(self, http: AsmxHttp) -> None:
        super().__init__(
            session=http.session, timeout=http.timeout, operation_timeout=http.timeout
        )
        # zeep mounts file:// on the session; nothing of ours reads local files.
        http.session.adapters.pop("file://", None)
        self.http = http
        self.local = threading.local()

    def load(self, url: str) -> bytes:
        """A WSDL or schema, over HTTP(S) only: a WSDL may not name local files."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise _not_a_wsdl(self.http, url, "it names a local file")
        return self._load_remote_data(url)

    def _load_remote_data(self, url: str) -> bytes:
        """Read the WSDL (or a schema it imports) through our transport."""
        logger.debug("Loading %s", url)
        response = self.http.request("GET", url, retry=True)
        if response.status_code != 200:
            raise self.http.wrong_address(response, "tsiWS service (WSDL)")
        if "html" in response.headers.get("Content-Type", "").lower():
            raise _not_a_wsdl(self.http, url, "an HTML page came back")
        return response.content

    def get(self, address: str, params: Any, headers: Any) -> requests.Response:
        """Plain GETs of the service (zeep's HTTP-GET bindings)."""
        return self.http.request("GET", address, params=params, headers=headers)

    def post(self, address: str, message: Any, headers: Any) -> requests.Response:
        """POST a SOAP envelope; retried only when the operation is safe to repeat."""
        retry = getattr(self.local, "retry", False)
        response = self.http.request(
            "POST", address, data=message, headers=headers, retry=retry
        )
        if response.status_code == 404:
            raise self.http.wrong_address(response, "tsiWS service")
        if response.status_code >= 400 and not _is_xml(response):
            raise ProtocolError(
                f"HTTP {response.status_code} from {describe_address(address)}: the "
                "tsiWS service refused the request; check the tsiWS address",
                system=SYSTEM,
                field=self.http.address_field,
            )
        return response


def _not_a_wsdl(http: AsmxHttp, url: str, why: str) -> ProtocolError:
    """The error for a WSDL address that serves something else."""
    return ProtocolError(
        f"The tsiWS service description (WSDL) at {url} cannot be read ({why}): the "
        "address is not Tigerpaw's tsiWS service; check the Tigerpaw API address",
        system=SYSTEM,
        field=http.address_field,
    )


class AsmxApi:
    """The tsiWS operations the agent uses, with the WSDL loaded once, lazily."""

    def __init__(self, asmx_url: str, user: str, password: str, http: AsmxHttp):
        self.asmx_url = asmx_url
        self.user = user
        self.password = password
        self.http = http
        self.transport = SoapTransport(http)
        self._lock = threading.Lock()
        self._client: zeep.Client | None = None
        self._service: Any = None

    def service(self) -> Any:
        """The zeep service proxy; the WSDL is read on the first call only."""
        with self._lock:
            if self._service is None:
                self._service = self._load()
            return self._service

    def _load(self) -> Any:
        """Read the WSDL and bind the service to the configured address."""
        url = f"{self.asmx_url}?WSDL"
        settings = zeep.Settings(forbid_dtd=True, forbid_entities=True)
        try:
            client = zeep.Client(url, transport=self.transport, settings=settings)
        except RemoteError:
            raise
        except (zeep.exceptions.Error, etree.LxmlError, ValueError) as err:
            raise _not_a_wsdl(self.http, url, type(err).__name__) from err

        bindings = client.wsdl.bindings
        soap11 = [k for k, b in bindings.items() if isinstance(b, Soap11Binding)]
        name = BINDING if BINDING in bindings else next(iter(soap11), None)
        if name is None:
            raise _not_a_wsdl(self.http, url, "it defines no SOAP binding")
        self._client = client
        logger.debug("Read the tsiWS WSDL from %s (binding %s)", url, name)
        # Calls go to the address we were given, not the host the WSDL names.
        return client.create_service(name, self.asmx_url)

    def call(self, operation: str, *, retry: bool, **kwargs: Any) -> Any:
        """Call one operation with the AuthHeader; faults raise typed errors."""
        service = self.service()
        header = {"AuthHeader": {"UserName": self.user, "Password": self.password}}
        try:
            method = service[operation]
        except AttributeError as err:
            raise ProtocolError(
                f"The tsiWS service at {self.asmx_url} has no {operation} operation: "
                "this Tigerpaw version does not offer it",
                system=SYSTEM,
            ) from err

        self.transport.local.retry = retry
        try:
            return method(_soapheaders=header, **kwargs)
        except zeep.exceptions.Fault as err:
            raise self.fault_error(str(err.message or "")) from err
        except (zeep.exceptions.Error, etree.LxmlError) as err:
            raise ProtocolError(
                f"The answer of tsiWS {operation} at {self.asmx_url} cannot be read "
                f"({type(err).__name__}): check the tsiWS address",
                system=SYSTEM,
                field=self.http.address_field,
            ) from err
        finally:
            self.transport.local.retry = False

    def fault_error(self, reason: str) -> RemoteError:
        """The typed error for a SOAP fault's text."""
        text = reason.casefold()
        quoted = scrub(reason, (self.password,))
        if "invalid user name or password" in text:
            return WrongCredentials(
                "Tigerpaw refused the SOAP user name or password: check the SOAP "
                f"user name and password set in {USERS_TOOL}",
                system=SYSTEM,
                field="soap_password",
            )
        if "not active" in text or "inactive" in text:
            return AccountInactive(
                f"The SOAP user '{self.user}' is not active in Tigerpaw: tick Active "
                f"for the user in {USERS_TOOL}",
                system=SYSTEM,
                field="soap_user",
            )
        if "may not list accounts" in text or "list accounts" in text:
            return PermissionDenied(
                f"The SOAP user '{self.user}' may not list accounts: tick "
                f"'{LIST_RIGHT}' for the user in {USERS_TOOL}",
                system=SYSTEM,
                field="soap_user",
                right=LIST_RIGHT,
            )
        if "cross-referenced" in text or "cross referenced" in text:
            return self._not_cross_referenced(reason)
        return self._request_error(reason, quoted)

    def _not_cross_referenced(self, reason: str) -> NotCrossReferenced:
        """The error naming the account that lacks the external product."""
        found = _ACCOUNT.search(reason)
        number = int(found.group(1)) if found else None
        which = f"account {number}" if number else "the account"
        if found and found.group(2):
            which += f" ({found.group(2)})"
        return NotCrossReferenced(
            f"Tigerpaw {which} is not cross-referenced to the external product of "
            f"the SOAP user '{self.user}': in Tigerpaw, open the account and assign "
            "that product to it (Assign External Products to an Account; the "
            "product is in Master Tables > Account > External Products), then try "
            "again",
            system=SYSTEM,
            field="account",
            right="External product cross-reference",
            account=number,
        )

    @staticmethod
    def _request_error(reason: str, quoted: str) -> RemoteError:
        """The error for a fault about what we sent (agreement, Params)."""
        text = reason.casefold()
        if "agreement" in text and "does not exist" in text:
            return RecordNotFound(
                f"{quoted} Choose an existing agreement of the account",
                system=SYSTEM,
                field="agreement",
                status=404,
            )
        if "agreement" in text and "ended" in text:
            return RequestRejected(
                f"{quoted} Choose a running agreement of the account",
                system=SYSTEM,
                field="agreement",
            )
        if text.startswith("params") or "authheader" in text:
            return ProtocolError(
                f"Tigerpaw could not read what the agent sent to tsiWS ({quoted}); "
                "this Tigerpaw version may expect another format",
                system=SYSTEM,
            )
        return RequestRejected(f"Tigerpaw's tsiWS refused: {quoted}", system=SYSTEM)

    # Operations.

    def list_accounts(self) -> list[Account]:
        """Every account, with whether it has the SOAP user's external product."""
        result = zeep.helpers.serialize_object(self.call("GetAccounts", retry=True))
        if isinstance(result, dict):
            result = result.get("ApiAccount") or []
        accounts = [_account(row) for row in result or [] if isinstance(row, dict)]
        logger.debug("tsiWS listed %d accounts", len(accounts))
        return accounts

    def submit_charges(
        self, agreement_number: int, lines: list[ChargeLine]
    ) -> list[ChargeLineResult]:
        """Apply charge lines to an agreement (all or none); the result per line.

        Retried on failure only when every line is an update: setting a quantity
        twice is harmless, creating or deleting twice is not.
        """
        params = asmx_charges.params_xml(agreement_number, lines)
        safe = all(line.action == "Update" for line in lines)
        result = self.call(
            "SubmitAgreementAdditionalCharges", retry=safe, Params=params
        )
        return asmx_charges.read_result(agreement_number, str(result or ""))


def _account(row: dict[str, Any]) -> Account:
    """An account of the tsiWS list."""
    number = row.get("AccountNumber")
    if number is None:
        raise ProtocolError(
            "tsiWS GetAccounts answered an account without AccountNumber",
            system=SYSTEM,
        )
    return Account(
        number=int(number),
        name=str(row.get("AccountName") or ""),
        status=row.get("AccountStatus"),
        cross_referenced=_flag(row.get("CrossReferenced")),
        external_id=row.get("ExternalId"),
    )


def _flag(value: Any) -> bool | None:
    """A true/false element of the account list; None when the answer lacks it, so
    that an older Tigerpaw without the element is not taken as "not
    cross-referenced" for every account."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().casefold() in ("true", "1")
    return bool(value)
