"""The page's forms: read the posted fields, and say beside each field what to fix.

Every function takes the posted values and returns what it understood plus a dict of
errors by field name; nothing here talks to a console, Tigerpaw or the store. What was
typed goes back into the form on an error, except passwords and keys.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agent.config.settings import KEYS
from agent.setup_drafts import SourceInput, TigerpawInput
from agent.setup_tenants import MappingChoice
from agent.sources.ksc_tls import DEFAULT_PROXY_PORT
from agent.store import KBH, KSC, PLATFORM, SEVERITIES, OrderRule, SyncChoices
from agent.store.choices import MAX_LIFETIME_DAYS, STATUS_LEVELS, status_key

logger = logging.getLogger(__name__)

#: Form fields that hold secrets: never written back into a page.
SECRET_FIELDS = frozenset(
    {
        "ksc_password",
        "proxy_password",
        "kbh_password",
        "soap_password",
        "private_key",
    }
)
#: Field names the clients' errors use, per source, to the page's field names.
CONNECT_ERROR_FIELDS = {
    KSC: {
        "address": "ksc_address",
        "user": "ksc_user",
        "password": "ksc_password",
        "certificate": "certificate",
        "proxy_address": "proxy_address",
        "proxy_user": "proxy_user",
        "proxy_password": "proxy_password",
        "proxy": "proxy_address",
        "vserver": "ksc_address",
    },
    KBH: {"email": "kbh_email", "password": "kbh_password"},
}
TIGERPAW_ERROR_FIELDS = {
    "api_url": "api_url",
    "asmx_url": "api_url",
    "address": "api_url",
    "soap_user": "soap_user",
    "soap_password": "soap_password",
    "public_key": "public_key",
    "private_key": "private_key",
    "name": "name",
    "platform": "platform",
}
MAX_NAME = 100
CERTIFICATE_LIMIT = 64 * 1024
#: The port of a proxy address given without one (as the KSC client assumes).
PROXY_PORT = DEFAULT_PROXY_PORT

#: One DNS label: letters, digits and inner hyphens, at most 63 characters.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$)({_LABEL})(\.{_LABEL})*\.?", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")
#: Control characters (C0, DEL, C1): never part of a name, address or user name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class FormResult:
    """What a form said: the values to show again, the errors, the parsed input."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    parsed: Any = None

    @property
    def ok(self) -> bool:
        """Whether every field is fine."""
        return not self.errors


def shown_values(form: Mapping[str, str]) -> dict[str, str]:
    """The posted fields to put back into the form: every one but the secrets."""
    return {
        name: str(value).strip()
        for name, value in form.items()
        if name not in SECRET_FIELDS and name != "csrf_token"
    }


def _text(form: Mapping[str, str], name: str) -> str:
    """A posted text field, trimmed ("" when absent)."""
    return str(form.get(name, "") or "").strip()


def _ticked(form: Mapping[str, str], name: str) -> bool:
    """Whether a check box was ticked."""
    return str(form.get(name, "")).lower() in {"on", "1", "true", "yes"}


def refuse_control_characters(
    fields: Mapping[str, str], errors: dict[str, str]
) -> None:
    """An error beside each field holding a control character (pasted unseen)."""
    for name, value in fields.items():
        found = _CONTROL.search(value)
        if found and name not in errors:
            errors[name] = (
                f"Remove the invisible character (U+{ord(found.group()):04X}) "
                "from this field"
            )


def printable(text: str) -> str:
    """The text without control characters (a file name shown in a message)."""
    return _CONTROL.sub("", text)


def address_problem(address: str, what: str, scheme: str = "https://") -> str | None:
    """Why an address (IP or domain name, optional port, optionally ``scheme`` in
    front and "/" after) is unusable, or None. Another scheme is refused here, as
    the client would refuse it only when it connects."""
    text = address.strip()
    if text.lower().startswith(scheme):
        text = text[len(scheme) :]
    elif "://" in text:
        return f"Write {what} without a scheme, or with {scheme} in front"
    text = text.rstrip("/")
    if not text or " " in text or "/" in text:
        return f"Enter {what} as an IP address or a domain name, with :port if needed"

    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        return f"The port in {what} must be a number from 1 to 65535"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if _HOST_NAME.fullmatch(host):
        return None
    return f"{host!r} is neither an IP address nor a domain name: check {what}"


def _host_is_valid(host: str) -> bool:
    """Whether a URL's host is an IP address or a well-formed domain name."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST_NAME.fullmatch(host))


def certificate_problem(data: bytes, name: str = "") -> str | None:
    """Why an uploaded file (``name`` as chosen) is not a usable certificate, or
    None."""
    chosen = f"The file {name}" if name else "That file"
    if len(data) > CERTIFICATE_LIMIT:
        return f"{chosen} is too large for a certificate: choose klserver.cer"

    # Imported here: about 8 MB of resident memory an agent not shown a
    # certificate does without.
    from cryptography import x509

    for load in (x509.load_pem_x509_certificate, x509.load_der_x509_certificate):
        try:
            load(data)
            return None
        except ValueError:
            continue
    return (
        f"{chosen} is not a certificate: choose klserver.cer from the "
        "Administration Server's folder ProgramData\\KasperskyLab\\adminkit\\1093\\cert"
    )


def read_connect(
    form: Mapping[str, str],
    certificate: bytes | None,
    *,
    has_certificate: bool = False,
    kept_secrets: frozenset[str] = frozenset(),
    source_fixed: str | None = None,
    certificate_name: str = "",
) -> FormResult:
    """The first page: the solution, its address and account, certificate, proxy.

    ``has_certificate`` says a klserver.cer was uploaded before (``certificate``
    is the file chosen now, ``certificate_name`` its name); ``kept_secrets``
    names the secrets already saved (blank keeps them, when editing).
    """
    result = FormResult(values=shown_values(form))
    errors = result.errors
    source = source_fixed or _text(form, "source")
    result.values["source"] = source
    if source not in (KSC, KBH):
        errors["source"] = "Choose the solution you use"
        return result

    use_certificate = source == KSC and _ticked(form, "use_certificate")
    use_proxy = source == KSC and _ticked(form, "use_proxy")
    given = SourceInput(
        source=source,
        ksc_address=_text(form, "ksc_address"),
        ksc_user=_text(form, "ksc_user"),
        ksc_password=str(form.get("ksc_password", "")),
        use_certificate=use_certificate,
        use_proxy=use_proxy,
        proxy_address=_text(form, "proxy_address"),
        proxy_user=_text(form, "proxy_user"),
        proxy_password=str(form.get("proxy_password", "")),
        kbh_email=_text(form, "kbh_email"),
        kbh_password=str(form.get("kbh_password", "")),
    )

    if source == KSC:
        _check_ksc(
            given,
            (certificate, certificate_name),
            has_certificate,
            kept_secrets,
            errors,
        )
    else:
        if not given.kbh_email:
            errors["kbh_email"] = (
                "Enter the email address you sign in to Kaspersky Business Hub with"
            )
        elif not _EMAIL.fullmatch(given.kbh_email):
            errors["kbh_email"] = "Enter an email address, such as name@example.com"
        if not given.kbh_password and "kbh_password" not in kept_secrets:
            errors["kbh_password"] = "Enter the password of that Business Hub user"

    refuse_control_characters(
        {
            "ksc_address": given.ksc_address,
            "ksc_user": given.ksc_user,
            "proxy_address": given.proxy_address,
            "proxy_user": given.proxy_user,
            "kbh_email": given.kbh_email,
        },
        errors,
    )
    result.parsed = given
    return result


def _check_ksc(
    given: SourceInput,
    upload: tuple[bytes | None, str],
    has_certificate: bool,
    kept: frozenset[str],
    errors: dict[str, str],
) -> None:
    """The KSC fields: address and account always (a certificate only says which
    server to trust: the Open API has no certificate login); proxy if used."""
    if not given.ksc_address:
        errors["ksc_address"] = (
            "Enter the address of the Administration Server: an IP address or a "
            "domain name"
        )
    else:
        problem = address_problem(given.ksc_address, "the address")
        if problem:
            errors["ksc_address"] = problem

    if not given.ksc_user:
        errors["ksc_user"] = (
            "Enter the user name of a KSC account (needed with a certificate too)"
            if given.use_certificate
            else "Enter the user name of a KSC account"
        )
    if not given.ksc_password and "ksc_password" not in kept:
        errors["ksc_password"] = "Enter the password of that KSC account"

    certificate, name = upload
    if given.use_certificate:
        if certificate:
            problem = certificate_problem(certificate, name)
            if problem:
                errors["certificate"] = problem
        elif not has_certificate:
            errors["certificate"] = (
                "Choose the Administration Server certificate klserver.cer, or clear "
                "Use a certificate"
            )

    if given.use_proxy:
        if not given.proxy_address:
            errors["proxy_address"] = (
                "Enter the proxy server's domain name or IP address (with :port "
                f"unless it is {PROXY_PORT}), such as proxy.example.com:3128"
            )
        elif given.proxy_address.lower().startswith("https://"):
            # The agent speaks plain HTTP to the proxy (CONNECT), never TLS.
            errors["proxy_address"] = (
                "The proxy server is reached with http://: leave the scheme out or "
                "write http://"
            )
        else:
            problem = address_problem(
                given.proxy_address, "the proxy address", scheme="http://"
            )
            if problem:
                errors["proxy_address"] = problem
        if given.proxy_password and not given.proxy_user:
            errors["proxy_user"] = (
                "Enter the proxy user name that goes with the password"
            )
        if (
            given.proxy_user
            and not given.proxy_password
            and "proxy_password" not in kept
        ):
            errors["proxy_password"] = "Enter the password of the proxy user"


def read_tigerpaw(
    form: Mapping[str, str], *, kept_secrets: frozenset[str] = frozenset()
) -> FormResult:
    """The Create integration page (and its edit): platform, name, address, keys."""
    result = FormResult(values=shown_values(form))
    errors = result.errors
    given = TigerpawInput(
        name=" ".join(_text(form, "name").split()),
        platform=_text(form, "platform"),
        api_url=_text(form, "api_url"),
        soap_user=_text(form, "soap_user"),
        soap_password=str(form.get("soap_password", "")),
        public_key=_text(form, "public_key"),
        private_key=str(form.get("private_key", "")).strip(),
    )

    if given.platform != PLATFORM:
        errors["platform"] = f"Select the platform {PLATFORM}"
    if not given.name:
        errors["name"] = "Give the integration a name"
    elif len(given.name) > MAX_NAME:
        errors["name"] = f"Keep the name under {MAX_NAME} characters"
    if not given.api_url:
        errors["api_url"] = (
            "Enter the Tigerpaw API address, such as https://tigerpaw.example.com"
        )
    else:
        parts = urlsplit(given.api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            errors["api_url"] = (
                "Enter the Tigerpaw API address with https:// (or http:// for a "
                "server on this network), such as https://tigerpaw.example.com"
            )
        elif not _host_is_valid(parts.hostname):
            # Refused here, so a typing slip is never looked up or dialled.
            errors["api_url"] = (
                f"{parts.hostname!r} is neither an IP address nor a domain name: "
                "check the Tigerpaw API address"
            )
    if not given.soap_user:
        errors["soap_user"] = "Enter the SOAP user name (the user of tsiWS Users.exe)"
    if not given.soap_password and "tigerpaw_soap_password" not in kept_secrets:
        errors["soap_password"] = "Enter the SOAP user's password"
    if not given.public_key:
        errors["public_key"] = "Enter the REST public key of the integration's rep"
    if not given.private_key and "tigerpaw_private_key" not in kept_secrets:
        errors["private_key"] = "Enter the REST private key of the integration's rep"
    refuse_control_characters(
        {
            "name": given.name,
            "api_url": given.api_url,
            "soap_user": given.soap_user,
            "public_key": given.public_key,
        },
        errors,
    )

    result.parsed = given
    return result


def read_mappings(
    form: Mapping[str, Any], tenant_ids: list[int]
) -> list[MappingChoice]:
    """The mapping grid's rows, one per tenant shown."""
    return [
        MappingChoice(
            tenant_id=tenant_id,
            account=_text(form, f"account-{tenant_id}"),
            agreement=_text(form, f"agreement-{tenant_id}"),
            billing=_ticked(form, f"billing-{tenant_id}"),
            service_orders=_ticked(form, f"orders-{tenant_id}"),
        )
        for tenant_id in tenant_ids
    ]


def read_choices(
    form: Mapping[str, str],
    problems: list[str],
    products: list[str],
    categories: list[str],
    per_user: Collection[str] = (),
) -> FormResult:
    """The integration's sync settings: service orders and price book items.

    ``problems`` are the status descriptions each of the Warning status and Critical
    status sections lists (rows ``status-<level>-<problem>``); ``categories`` the
    device categories an application's devices split into, except for the
    applications in ``per_user``, which have their one item only.
    """
    result = FormResult(values=shown_values(form))
    errors = result.errors

    events = {
        severity: _rule(form, f"event-{severity}", errors, lifetime=True)
        for severity in SEVERITIES
    }
    statuses = {
        status_key(level, problem): _rule(
            form, f"status-{level}-{problem}", errors, lifetime=False
        )
        for level in STATUS_LEVELS
        for problem in problems
    }
    items: dict[str, str] = {}
    for product in products:
        split = [] if product in per_user else categories
        keys = [product] + [f"{product}/{category}" for category in split]
        for key in keys:
            chosen = _text(form, f"item::{key}")
            if chosen:
                items[key] = chosen

    choices = SyncChoices(
        rep=_text(form, "rep"),
        new_status=_text(form, "new_status"),
        closed_status=_text(form, "closed_status"),
        events=events,
        device_statuses=statuses,
        price_book_items=items,
        bill_by_category=_ticked(form, "bill_by_category"),
    )
    labels = {
        "rep": "Choose the service order rep",
        "new_status": "Choose the status of new service orders",
        "closed_status": "Choose the status that closes a service order",
    }
    for name in choices.missing():
        errors[name] = f"{labels[name]}: a switched-on row opens service orders"

    result.parsed = choices
    return result


def _rule(
    form: Mapping[str, str], prefix: str, errors: dict[str, str], *, lifetime: bool
) -> OrderRule:
    """One row of the service order table."""
    days = 1
    if lifetime:
        raw = _text(form, f"{prefix}-lifetime") or "1"
        if raw.isdigit() and 1 <= int(raw) <= MAX_LIFETIME_DAYS:
            days = int(raw)
        else:
            errors[f"{prefix}-lifetime"] = (
                f"Lifetime is a whole number of days from 1 to {MAX_LIFETIME_DAYS}"
            )
    return OrderRule(
        enabled=_ticked(form, f"{prefix}-enabled"),
        priority=_text(form, f"{prefix}-priority"),
        order_type=_text(form, f"{prefix}-type"),
        board=_text(form, f"{prefix}-board"),
        lifetime_days=days,
    )


def read_config(form: Mapping[str, str], current: Mapping[str, str]) -> FormResult:
    """The config file's settings: the changed values, each checked as the file is."""
    result = FormResult(values=shown_values(form))
    changes: dict[str, str] = {}
    for spec in KEYS:
        raw = _text(form, spec.name)
        try:
            spec.parse(raw)
        except ValueError:
            result.errors[spec.name] = spec.error_text(raw)
            continue
        if raw != current.get(spec.name):
            changes[spec.name] = raw
    result.parsed = changes
    return result
