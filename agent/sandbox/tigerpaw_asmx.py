"""Tigerpaw's tsiWS ASMX service at ``/api/rmm/tsiWS.asmx``: WSDL, SOAP 1.1 and 1.2.

Operations: ``GetAccounts`` (a modelled name: the accounts with whether each is
cross-referenced to the user's external product) and
``SubmitAgreementAdditionalCharges`` (see :mod:`agent.sandbox.tigerpaw_charges`).
Credentials come in the ``AuthHeader`` SOAP header of namespace
``http://www.tigerpawsoftware.com/`` (trailing slash). Refusals are SOAP faults with
HTTP 500, as ASMX sends them; their faultstrings start with a stable phrase
("Invalid user name or password", "is not active", "may not list accounts",
"is not cross-referenced", "Params ...") that clients can tell apart.
"""

from __future__ import annotations

import html
import logging
import threading
from importlib import resources

from lxml import etree

from agent.sandbox.server import Request, Response, html_error_page
from agent.sandbox.tigerpaw_charges import ChargesFault, submit
from agent.sandbox.tigerpaw_state import SoapUser, TigerpawWorld, utcnow

logger = logging.getLogger(__name__)

ASMX_PATH = "/api/rmm/tsiws.asmx"
TNS = "http://www.tigerpawsoftware.com"
AUTH_NS = "http://www.tigerpawsoftware.com/"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
OPERATIONS = ("GetAccounts", "SubmitAgreementAdditionalCharges")
USERS_ADVICE = "in tsiWS Users.exe (Tigerpaw API Tools)"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class SoapFault(Exception):
    """A refusal answered as a SOAP fault; ``sender`` blames the client."""

    def __init__(self, message: str, sender: bool = True) -> None:
        super().__init__(message)
        self.sender = sender


def fault_reply(message: str, version: str = SOAP11, sender: bool = True) -> Response:
    """A SOAP fault envelope with HTTP 500."""
    env = etree.Element(f"{{{version}}}Envelope", nsmap={"soap": version})
    body = etree.SubElement(env, f"{{{version}}}Body")
    fault = etree.SubElement(body, f"{{{version}}}Fault")
    if version == SOAP11:
        code = "soap:Client" if sender else "soap:Server"
        etree.SubElement(fault, "faultcode").text = code
        etree.SubElement(fault, "faultstring").text = message
        etree.SubElement(fault, "detail")
        content_type = "text/xml; charset=utf-8"
    else:
        code_element = etree.SubElement(fault, f"{{{version}}}Code")
        value = etree.SubElement(code_element, f"{{{version}}}Value")
        value.text = "soap:Sender" if sender else "soap:Receiver"
        reason = etree.SubElement(fault, f"{{{version}}}Reason")
        text = etree.SubElement(reason, f"{{{version}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = message
        etree.SubElement(fault, f"{{{version}}}Detail")
        content_type = "application/soap+xml; charset=utf-8"
    xml = etree.tostring(env, xml_declaration=True, encoding="utf-8")
    return Response(500, xml, {"Content-Type": content_type})


def _reply(version: str, operation: str, fill) -> Response:
    env = etree.Element(
        f"{{{version}}}Envelope",
        nsmap={
            "soap": version,
            "xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsd": "http://www.w3.org/2001/XMLSchema",
        },
    )
    body = etree.SubElement(env, f"{{{version}}}Body")
    answer = etree.SubElement(body, f"{{{TNS}}}{operation}Response", nsmap={None: TNS})
    fill(etree.SubElement(answer, f"{{{TNS}}}{operation}Result"))
    content_type = "text/xml" if version == SOAP11 else "application/soap+xml"
    xml = etree.tostring(env, xml_declaration=True, encoding="utf-8")
    return Response(200, xml, {"Content-Type": f"{content_type}; charset=utf-8"})


class TigerpawAsmx:
    """Serves the WSDL, a help page and the SOAP operations."""

    def __init__(self, world: TigerpawWorld, lock: threading.RLock) -> None:
        self.world = world
        self.lock = lock
        wsdl = resources.files("agent.sandbox").joinpath("tsiWS.wsdl")
        self.wsdl_template = wsdl.read_text(encoding="utf-8")

    def handle(self, request: Request, base_url: str) -> Response:
        """Answer one request to the service's path."""
        if request.path.lower().rstrip("/") != ASMX_PATH:
            return html_error_page(404, "Not Found")
        query = {key.lower(): values for key, values in request.query.items()}
        if request.method == "GET" and "wsdl" in query:
            return self.wsdl(request, base_url)
        if request.method == "GET":
            return self.help_page((query.get("op") or [""])[0])
        if request.method != "POST":
            return html_error_page(405, "Method Not Allowed")
        return self.soap(request)

    def wsdl(self, request: Request, base_url: str) -> Response:
        """The WSDL, pointing at the address the client used."""
        host = request.header("Host")
        scheme = base_url.split("://", 1)[0]
        origin = f"{scheme}://{host}" if host else base_url
        location = origin + "/api/rmm/tsiWS.asmx"
        text = self.wsdl_template.replace("%LOCATION%", html.escape(location))
        return Response.text(text, content_type="text/xml; charset=utf-8")

    @staticmethod
    def help_page(operation: str) -> Response:
        """The ASMX service page a browser sees."""
        items = "".join(
            f'<li><a href="tsiWS.asmx?op={op}">{op}</a></li>' for op in OPERATIONS
        )
        title = html.escape(operation) if operation in OPERATIONS else "tsiWS"
        page = (
            f"<html><head><title>{title} Web Service</title></head><body>"
            f"<h1>{title}</h1><p>The following operations are supported. For a "
            'formal definition, please review the <a href="tsiWS.asmx?WSDL">'
            f"Service Description</a>.</p><ul>{items}</ul></body></html>"
        )
        return Response.text(page, content_type="text/html; charset=utf-8")

    def soap(self, request: Request) -> Response:
        """Answer a SOAP request."""
        raw_type = request.header("Content-Type") or ""
        content_type = raw_type.lower()
        if content_type.startswith("text/xml"):
            version = SOAP11
        elif content_type.startswith("application/soap+xml"):
            version = SOAP12
        else:
            return html_error_page(415, "Unsupported Media Type")
        try:
            operation, header, body = self._parse(request, version, raw_type)
            user = self._authenticate(header, operation)
            with self.lock:
                if operation == "GetAccounts":
                    return self._get_accounts(version, user)
                params = body.findtext(f"{{{TNS}}}Params")
                result = submit(self.world, user, params, utcnow())
            return _reply(version, operation, lambda e: setattr(e, "text", result))
        except ChargesFault as err:
            return fault_reply(str(err), version)
        except SoapFault as err:
            return fault_reply(str(err), version, err.sender)

    def _parse(self, request: Request, version: str, content_type: str):
        try:
            env = etree.fromstring(request.body, _PARSER)
        except etree.XMLSyntaxError as err:
            raise SoapFault(f"The request is not well-formed XML: {err}") from err
        if env.tag != f"{{{version}}}Envelope":
            raise SoapFault(
                f"The message is not a SOAP envelope of namespace {version} "
                "(the Content-Type sets the SOAP version)."
            )
        body = env.find(f"{{{version}}}Body")
        element = body[0] if body is not None and len(body) else None
        if element is None or not isinstance(element.tag, str):
            raise SoapFault("The SOAP Body holds no operation.")
        qname = etree.QName(element)

        if version == SOAP11:
            action = (request.header("SOAPAction") or "").strip().strip('"')
        else:
            action = _action_parameter(content_type) or f"{TNS}/{qname.localname}"
        operation = action.rsplit("/", 1)[-1]
        if action != f"{TNS}/{operation}" or operation not in OPERATIONS:
            raise SoapFault(
                f"Server did not recognize the value of SOAPAction: {action}."
            )
        if qname.namespace != TNS or qname.localname != operation:
            raise SoapFault(
                f"The Body element {{{qname.namespace}}}{qname.localname} does not "
                f"match the SOAPAction {action}."
            )
        return operation, env.find(f"{{{version}}}Header"), element

    def _authenticate(self, header: etree._Element | None, operation: str) -> SoapUser:
        auth = header.find(f"{{{AUTH_NS}}}AuthHeader") if header is not None else None
        if auth is None:
            misplaced = None if header is None else header.find(f"{{{TNS}}}AuthHeader")
            if misplaced is not None:
                raise SoapFault(
                    f"The AuthHeader must be in namespace {AUTH_NS} (with the trailing "
                    "slash); no credentials were read."
                )
            raise SoapFault(
                "Invalid user name or password: the request has no AuthHeader SOAP "
                "header with the tsiWS user's UserName and Password."
            )
        name = (auth.findtext(f"{{{AUTH_NS}}}UserName") or "").strip()
        password = auth.findtext(f"{{{AUTH_NS}}}Password") or ""

        with self.lock:
            user = self.world.soap_user(name) if name else None
        if user is None or user.password != password:
            raise SoapFault(
                "Invalid user name or password: Tigerpaw did not accept the tsiWS "
                f"user '{name}'. Check the SOAP user name and password set "
                f"{USERS_ADVICE}."
            )
        if not user.active:
            raise SoapFault(
                f"The tsiWS user '{user.name}' is not active. Tick Active for the "
                f"user {USERS_ADVICE}."
            )
        if operation == "GetAccounts" and not user.can_list_accounts:
            raise SoapFault(
                f"The tsiWS user '{user.name}' may not list accounts. Tick 'Allow user "
                f"to list accounts via API' for the user {USERS_ADVICE}."
            )
        return user

    def _get_accounts(self, version: str, user: SoapUser) -> Response:
        def fill(result: etree._Element) -> None:
            for account in self.world.accounts:
                row = etree.SubElement(result, f"{{{TNS}}}ApiAccount")
                link = account.link_for(user.external_product)
                for name, value in (
                    ("AccountNumber", str(account.number)),
                    ("AccountName", account.name),
                    ("AccountStatus", account.status),
                    ("CrossReferenced", "true" if link else "false"),
                    ("ExternalId", link.external_id if link else None),
                ):
                    if value is not None:
                        etree.SubElement(row, f"{{{TNS}}}{name}").text = value

        return _reply(version, "GetAccounts", fill)


def _action_parameter(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.strip() == "action":
            return value.strip().strip('"')
    return None
