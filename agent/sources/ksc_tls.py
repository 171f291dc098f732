"""How the KSC client reaches the server and decides to trust its certificate.

Three ways to trust KSC's certificate, chosen by what the setup holds:

- **A certificate file** (``klserver.cer``): the file is the only trusted CA (chain
  and host name are checked by TLS, as KSC's own samples do) *and* the certificate
  the server presents must be one of the file's (SHA-256). Another certificate is
  :class:`~agent.errors.CertificateChanged`; one that does not name the address is
  :class:`~agent.errors.CertificateNameMismatch`.
- **An accepted fingerprint**: the certificate the server presents must have that
  SHA-256 fingerprint. The chain and the host name are not checked, by design: the
  pin names the one certificate to trust, which is stronger than any name in it, and
  KSC's self-signed certificate often names only the server's host name while people
  connect by IP address.
- **Neither**: the computer's trusted CAs and the host name are checked. KSC's usual
  self-signed certificate fails that, and the error
  (:class:`~agent.errors.CertificateNotTrusted`) carries the certificate's SHA-256
  ``fingerprint`` for the user to compare and accept.

No check is ever switched off without one of those taking its place. A proxy, when
set, is an HTTP proxy reached with ``CONNECT`` and Basic credentials.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
import ssl
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool

from agent.errors import CertificateChanged, SetupError
from agent.sources.ksc_wire import SYSTEM

logger = logging.getLogger(__name__)

DEFAULT_PORT = 13299
#: The port of a proxy address given without one (a common forward-proxy port).
DEFAULT_PROXY_PORT = 8080
#: Where KSC keeps its certificate, for messages that ask for the file.
KLSERVER_PATH = r"C:\ProgramData\KasperskyLab\adminkit\1093\cert\klserver.cer"


@dataclass(frozen=True)
class Target:
    """A host and port to connect to."""

    host: str
    port: int

    @property
    def netloc(self) -> str:
        """``host:port`` as people write it (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        """Whether the host is an IP address rather than a name."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


def parse_address(
    address: str,
    *,
    scheme: str = "https",
    default_port: int = DEFAULT_PORT,
    field_name: str = "address",
    what: str = "the KSC Administration Server",
) -> Target:
    """An address (name or IP, optional port, optional scheme) as a Target."""
    text = (address or "").strip()
    if not text:
        raise SetupError(
            f"Enter the address of {what} (a name or IP address, with :port if it "
            "is not the usual one)",
            field=field_name,
        )
    if "://" not in text:
        text = f"{scheme}://{text}"

    parts = urlsplit(text)
    if parts.scheme.lower() != scheme:
        raise SetupError(
            f"'{address.strip()[:80]}' cannot be used: {what} is reached with "
            f"{scheme}://; leave the scheme out or write {scheme}://",
            field=field_name,
        )
    try:
        port = parts.port or default_port
    except ValueError as err:
        raise SetupError(
            f"The port in '{address.strip()[:80]}' is not a number from 1 to 65535",
            field=field_name,
        ) from err
    host = parts.hostname or ""
    if not host or "@" in parts.netloc or any(ch.isspace() for ch in host):
        raise SetupError(
            f"'{address.strip()[:80]}' is not an address: enter the name or IP "
            f"address of {what}, for example ksc.example.local:{default_port}",
            field=field_name,
        )
    return Target(host, port)


@dataclass(frozen=True)
class ProxySettings:
    """An HTTP proxy: its address and, if it asks for them, Basic credentials."""

    address: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def target(self) -> Target:
        """The proxy's host and port."""
        return parse_address(
            self.address,
            scheme="http",
            default_port=DEFAULT_PROXY_PORT,
            field_name="proxy_address",
            what="the proxy server",
        )

    def url(self) -> str:
        """The proxy's URL without credentials (those go in a header)."""
        return f"http://{self.target().netloc}"

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value, or None without a user name."""
        if not self.user:
            return None
        pair = f"{self.user}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


# Certificates and fingerprints.


def fingerprint(der: bytes) -> str:
    """SHA-256 of a certificate as people compare it: ``AB:CD:...`` (upper case)."""
    return ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())


def normalise_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint typed with or without colons or spaces, made canonical."""
    digits = re.sub(r"[\s:]", "", text or "").upper()
    if not re.fullmatch(r"[0-9A-F]{64}", digits):
        raise SetupError(
            "The accepted certificate fingerprint is not a SHA-256 fingerprint (64 "
            "hexadecimal digits): connect again and accept the certificate shown",
            field="certificate",
        )
    return ":".join(digits[i : i + 2] for i in range(0, 64, 2))


def certificate_names(der: bytes) -> tuple[str, ...]:
    """The host names and addresses a certificate names (its subject if none)."""
    # Imported here: it adds about 8 MB to the agent's resident memory, and only
    # parsing a certificate needs it (fingerprints need hashlib alone).
    from cryptography import x509

    certificate = x509.load_der_x509_certificate(der)
    try:
        alternative = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        alternative = None
    if alternative is not None:
        names = alternative.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in alternative.get_values_for_type(x509.IPAddress)]
        if names:
            return tuple(names)
    common = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return tuple(str(item.value) for item in common)


@dataclass(frozen=True)
class CertificateFile:
    """The certificates of a ``klserver.cer`` file, in DER."""

    path: Path
    ders: tuple[bytes, ...]


def read_certificate_file(path: Path) -> CertificateFile:
    """Read a PEM or DER certificate file; SetupError naming the field if we cannot."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SetupError(
            f"The certificate file {path} cannot be read ({err.strerror}): copy "
            f"klserver.cer from the KSC server ({KLSERVER_PATH}) and choose it",
            field="certificate",
        ) from err

    try:
        ders = _certificate_ders(data)
    except ValueError as err:
        raise SetupError(
            f"The file {path} holds no certificate: choose KSC's klserver.cer "
            f"({KLSERVER_PATH} on the KSC server)",
            field="certificate",
        ) from err
    return CertificateFile(path, ders)


_PEM_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL
)


def _certificate_ders(data: bytes) -> tuple[bytes, ...]:
    """The DER certificates of a PEM or DER file; ValueError when it holds none.

    The standard library's OpenSSL checks that each one parses: the cryptography
    package would add about 8 MB to the resident memory of an agent that reads its
    KSC certificate file every cycle.
    """
    if b"-----BEGIN" in data:
        blocks = _PEM_BLOCK.findall(data)
        ders = tuple(base64.b64decode(b"".join(block.split())) for block in blocks)
    else:
        ders = (data,)
    if not ders:
        raise ValueError("no certificate in the file")
    for der in ders:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=der)
        except ssl.SSLError as err:
            raise ValueError(f"not a certificate: {err}") from err
    return ders


class TlsPolicy:
    """Which certificate KSC may present: a file's, an accepted one, or trusted one."""

    FILE, FINGERPRINT, SYSTEM_STORE = "file", "fingerprint", "system"

    def __init__(
        self, certificate: Path | str | None, accepted_fingerprint: str | None
    ) -> None:
        self.file: CertificateFile | None = None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if certificate:
            self.mode = self.FILE
            self.file = read_certificate_file(Path(certificate))
            self.pins = frozenset(fingerprint(der) for der in self.file.ders)
            if accepted_fingerprint and (
                normalise_fingerprint(accepted_fingerprint) not in self.pins
            ):
                raise SetupError(
                    f"The accepted fingerprint is not that of the certificate in "
                    f"{self.file.path}: choose one of the two",
                    field="certificate",
                )
            context.load_verify_locations(cadata=b"".join(self.file.ders))
        elif accepted_fingerprint:
            self.mode = self.FINGERPRINT
            self.pins = frozenset({normalise_fingerprint(accepted_fingerprint)})
            # The pin replaces the chain and name checks (see the module docstring).
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            self.mode = self.SYSTEM_STORE
            self.pins = frozenset()
            context.load_default_certs()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context = context

    @property
    def cert_reqs(self) -> str:
        """urllib3's name for the verify mode of :attr:`context`."""
        return "CERT_NONE" if self.mode == self.FINGERPRINT else "CERT_REQUIRED"

    def check_peer(self, der: bytes, target: Target) -> None:
        """Refuse a presented certificate that is not pinned (CertificateChanged)."""
        if self.pins and fingerprint(der) not in self.pins:
            raise self.changed(target, fingerprint(der))

    def changed(self, target: Target, presented: str | None) -> CertificateChanged:
        """The error for a server presenting another certificate than the chosen one."""
        shown = f" (SHA-256 {presented})" if presented else ""
        intercept = (
            "if not, something between this computer and KSC intercepts the "
            "connection: do not connect until the network administrator has checked"
        )
        if self.file is not None:
            message = (
                f"KSC at {target.netloc} presents another certificate{shown} than "
                f"the one in {self.file.path}: if KSC's certificate was replaced, "
                f"copy the new klserver.cer from the KSC server ({KLSERVER_PATH}) "
                f"and choose it; {intercept}"
            )
        else:
            message = (
                f"KSC at {target.netloc} presents another certificate{shown} than "
                f"the one accepted (SHA-256 {min(self.pins)}): if KSC's certificate "
                "was replaced, compare the new fingerprint with the one the KSC "
                f"server shows and accept it; {intercept}"
            )
        return CertificateChanged(message, system=SYSTEM, field="certificate")


def _pinned_pool(policy: TlsPolicy, target: Target) -> type[HTTPSConnectionPool]:
    """A urllib3 pool class whose connections check the pin before any request."""

    class PinnedConnection(HTTPSConnection):
        """An HTTPS connection that refuses a certificate the policy does not pin."""

        def connect(self) -> None:
            """Connect, then compare the presented certificate with the pins."""
            super().connect()
            if not policy.pins:
                return
            tls = typing.cast(ssl.SSLSocket | None, self.sock)
            der = tls.getpeercert(binary_form=True) if tls is not None else None
            try:
                policy.check_peer(der or b"", target)
            except CertificateChanged:
                self.close()
                raise
            # The pin is the verification (TLS checked nothing in fingerprint mode).
            self.is_verified = True

    class PinnedPool(HTTPSConnectionPool):
        """A pool of pinned connections."""

        ConnectionCls = PinnedConnection

    return PinnedPool


class PinnedAdapter(HTTPAdapter):
    """requests' adapter with our TLS context, the pin check and proxy credentials."""

    def __init__(
        self,
        policy: TlsPolicy,
        target: Target,
        proxy: ProxySettings | None,
        pool_size: int,
    ) -> None:
        self.policy = policy
        self._pool_class = _pinned_pool(policy, target)
        self._proxy_authorization = proxy.authorization() if proxy else None
        super().__init__(pool_connections=1, pool_maxsize=pool_size)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The pool manager, with pinned HTTPS pools."""
        super().init_poolmanager(*args, **kwargs)
        self._pin(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        """The proxy's pool manager, with pinned HTTPS pools too."""
        manager = super().proxy_manager_for(proxy, **kwargs)
        self._pin(manager)
        return manager

    def _pin(self, manager: Any) -> None:
        """Make the manager open pinned HTTPS pools."""
        manager.pool_classes_by_scheme = {
            **manager.pool_classes_by_scheme,
            "https": self._pool_class,
        }

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Our SSL context in place of requests' CA bundle, whatever ``verify`` says."""
        host, _ = super().build_connection_pool_key_attributes(request, verify, cert)
        return host, {
            "ssl_context": self.policy.context,
            "cert_reqs": self.policy.cert_reqs,
        }

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """Keep requests from loading its CA bundle into our context."""
        conn.cert_reqs = self.policy.cert_reqs
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def proxy_headers(self, proxy: str) -> dict[str, str]:
        """Basic credentials for the proxy's CONNECT, from the setup only."""
        if self._proxy_authorization:
            return {"Proxy-Authorization": self._proxy_authorization}
        return {}
