"""The way to one KSC server (address, TLS policy, proxy) and its failures in words.

:class:`Route` reads the certificate a server presents (for the setup page and for
error messages) and turns a failed connection into the typed error that says what
to fix: the address, the proxy's address or credentials, or the certificate.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import ssl

import requests
import urllib3

from agent.errors import (
    AddressNotFound,
    CertificateNameMismatch,
    CertificateNotTrusted,
    ConnectError,
    NothingListening,
    ProtocolError,
    ProxyRefused,
    RemoteError,
    TimedOut,
)
from agent.sources.ksc_tls import (
    DEFAULT_PORT,
    PinnedAdapter,
    ProxySettings,
    Target,
    TlsPolicy,
    certificate_names,
    fingerprint,
)
from agent.sources.ksc_wire import SYSTEM
from agent.transport import exception_chain

logger = logging.getLogger(__name__)

# OpenSSL's verify codes for a certificate that names other hosts.
_NAME_MISMATCH_CODES = {62, 64}
_TUNNEL_FAILED = re.compile(r"Tunnel connection failed: (\d{3})")


class Route:
    """The way to one KSC server: its address, the TLS policy and the proxy."""

    def __init__(
        self,
        target: Target,
        policy: TlsPolicy,
        proxy: ProxySettings | None,
        timeout: float,
    ) -> None:
        self.target = target
        self.policy = policy
        self.proxy = proxy
        self.hop = proxy.target() if proxy else None
        self.timeout = timeout

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"https://{self.target.netloc}"

    def adapter(self, pool_size: int) -> PinnedAdapter:
        """A requests adapter that follows this route's TLS policy and proxy."""
        return PinnedAdapter(self.policy, self.target, self.proxy, pool_size)

    def peer_certificate(self) -> bytes:
        """The certificate the server presents, read without trusting it.

        Only the TLS handshake takes place: nothing is sent over the connection.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.proxy is not None and self.hop is not None:
            connection = http.client.HTTPSConnection(
                self.hop.host, self.hop.port, timeout=self.timeout, context=context
            )
            auth = self.proxy.authorization()
            headers = {"Proxy-Authorization": auth} if auth else {}
            connection.set_tunnel(self.target.host, self.target.port, headers=headers)
        else:
            connection = http.client.HTTPSConnection(
                self.target.host,
                self.target.port,
                timeout=self.timeout,
                context=context,
            )
        try:
            connection.connect()
            der = connection.sock.getpeercert(binary_form=True)
        except OSError as err:
            raise self.explain(err) from err
        finally:
            connection.close()
        if not der:
            raise ProtocolError(
                f"KSC at {self.target.netloc} presented no certificate: check the "
                "address and port (13299)",
                system=SYSTEM,
                field="address",
            )
        return der

    def presented(self) -> bytes | None:
        """The presented certificate for an error message, or None if unreadable."""
        try:
            return self.peer_certificate()
        except RemoteError as err:
            logger.debug("Could not read KSC's certificate: %s", err)
            return None

    def explain(self, error: BaseException) -> RemoteError:
        """The typed error, in KSC's and the proxy's terms, for a failed connection."""
        chain = list(exception_chain(error))
        for item in chain:
            if isinstance(item, ssl.SSLCertVerificationError):
                return self._certificate_error(item)

        tunnel = next(
            (m for item in chain if (m := _TUNNEL_FAILED.search(str(item)))), None
        )
        if tunnel is not None:
            return self._tunnel_error(int(tunnel.group(1)))
        # Unresolved and refused connections come before timeouts (see _timed_out).
        if any(isinstance(item, socket.gaierror) for item in chain):
            if self.hop is not None:
                return AddressNotFound(
                    f"The proxy's address {self.hop.host} was not found: check the "
                    "spelling of the proxy Address",
                    system=SYSTEM,
                    field="proxy_address",
                )
            return AddressNotFound(
                f"The address {self.target.host} was not found: check the spelling "
                "of the KSC server's name",
                system=SYSTEM,
                field="address",
            )
        if self.hop is not None and (
            isinstance(error, requests.exceptions.ProxyError)
            or any(isinstance(item, ConnectionRefusedError) for item in chain)
        ):
            return ConnectError(
                f"Cannot reach the proxy server at {self.hop.netloc}: check the "
                "proxy Address and port, and that the proxy runs",
                system=SYSTEM,
                field="proxy_address",
            )
        if any(isinstance(item, ConnectionRefusedError) for item in chain):
            return NothingListening(
                f"Nothing is listening at {self.target.netloc}: check the address "
                f"and port (KSC's Open API listens on {DEFAULT_PORT}) and that the "
                "Administration Server runs",
                system=SYSTEM,
                field="address",
            )
        if _timed_out(error, chain):
            return self._timeout_error(error, chain)
        handshake = next((i for i in chain if isinstance(i, ssl.SSLError)), None)
        if handshake is not None:
            return ProtocolError(
                f"{self.target.netloc} did not complete a TLS handshake "
                f"({handshake.reason or 'TLS error'}): check that the port is KSC's "
                f"Open API port ({DEFAULT_PORT})",
                system=SYSTEM,
                field="address",
            )
        return ConnectError(
            f"The connection to KSC at {self.target.netloc} failed "
            f"({type(error).__name__}): check the address and the network between "
            "this computer and KSC",
            system=SYSTEM,
            field="address",
        )

    def _tunnel_error(self, status: int) -> RemoteError:
        """The proxy answered CONNECT with ``status``."""
        hop = self.hop.netloc if self.hop else "the proxy"
        if status == 407:
            return ProxyRefused(
                f"The proxy at {hop} refused the user name or password: check the "
                "proxy's User name and Password",
                system=SYSTEM,
                field="proxy_user",
            )
        return ConnectError(
            f"The proxy at {hop} could not open a connection to KSC at "
            f"{self.target.netloc} (HTTP {status}): check the KSC address, and that "
            f"the proxy lets this computer connect to port {self.target.port}",
            system=SYSTEM,
            field="address",
        )

    def _timeout_error(
        self, error: BaseException, chain: list[BaseException]
    ) -> RemoteError:
        """No answer in time: from the proxy while connecting, else from KSC."""
        connecting = isinstance(error, requests.exceptions.ConnectTimeout) or any(
            isinstance(item, urllib3.exceptions.ConnectTimeoutError)
            and not isinstance(item, urllib3.exceptions.NewConnectionError)
            for item in chain
        )
        if connecting and self.hop is not None:
            return ConnectError(
                f"The proxy server at {self.hop.netloc} did not answer in time: "
                "check the proxy Address and that the proxy runs",
                system=SYSTEM,
                field="proxy_address",
            )
        return TimedOut(
            f"KSC at {self.target.netloc} did not answer in time: check that the "
            "Administration Server runs and is not overloaded; the agent tries again "
            "later",
            system=SYSTEM,
            field="address",
        )

    def _certificate_error(self, error: ssl.SSLCertVerificationError) -> RemoteError:
        """A certificate that TLS refused, told by what the setup chose to trust."""
        presented = self.presented()
        shown = fingerprint(presented) if presented else ""
        if error.verify_code in _NAME_MISMATCH_CODES:
            ders = self.policy.file.ders if self.policy.file else ()
            source = presented or (ders[0] if ders else None)
            names = ", ".join(certificate_names(source)) if source else "other hosts"
            kind = "address" if self.target.is_ip else "name"
            return CertificateNameMismatch(
                f"The certificate of KSC at {self.target.netloc} does not name the "
                f"{kind} {self.target.host} (it names {names}): enter one of those "
                "names as the Address (add it to this computer's hosts file if DNS "
                "does not know it), or reissue KSC's certificate so that it names "
                f"{self.target.host} (KSC's klsetsrvcert utility)",
                system=SYSTEM,
                field="address",
            )
        reason = error.verify_message or "not trusted"
        if self.policy.file is not None and shown not in self.policy.pins:
            return self.policy.changed(self.target, shown or None)
        if self.policy.file is not None:
            return CertificateNotTrusted(
                f"KSC's certificate (the one in {self.policy.file.path}) is not "
                f"valid: {reason}. Renew KSC's certificate and choose the new "
                "klserver.cer",
                system=SYSTEM,
                field="certificate",
                fingerprint=shown,
            )
        said = f"SHA-256 fingerprint {shown}" if shown else "its fingerprint"
        return CertificateNotTrusted(
            f"The certificate of KSC at {self.target.netloc} is not trusted by this "
            f"computer ({reason}): compare its {said} with the one shown on the KSC "
            "server and accept it, or choose KSC's klserver.cer file",
            system=SYSTEM,
            field="certificate",
            fingerprint=shown,
        )


def _timed_out(error: BaseException, chain: list[BaseException]) -> bool:
    """Whether the failure was a timeout (connect or read)."""
    # urllib3's NewConnectionError is a ConnectTimeoutError too, so only builtin
    # timeouts (and requests' own) count here.
    return isinstance(error, requests.Timeout) or any(
        isinstance(item, TimeoutError) for item in chain
    )
