"""Self-signed certificates for the emulated servers (KSC's klserver.cer and others)."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TlsIdentity:
    """A certificate and its key on disk, as a server presents them."""

    cert_path: Path
    key_path: Path
    fingerprint_sha256: str

    def server_context(
        self,
        minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
        maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ) -> ssl.SSLContext:
        """An SSL context that serves this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = minimum
        context.maximum_version = maximum
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def make_certificate(
    folder: Path,
    stem: str,
    *,
    common_name: str = "localhost",
    dns_names: tuple[str, ...] = ("localhost",),
    ip_addresses: tuple[str, ...] = ("127.0.0.1",),
    valid_days: int = 825,
) -> TlsIdentity:
    """Write ``<stem>.cer`` (PEM) and ``<stem>.key`` into ``folder`` and return them.

    The certificate is its own issuer and marked as a CA, so a client can name the
    file as its trusted CA bundle, as KSC's own samples do with klserver.cer.
    """
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)

    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]

    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    )
    if alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alt_names), critical=False
        )
    certificate = builder.sign(key, hashes.SHA256())

    cert_path = folder / f"{stem}.cer"
    key_path = folder / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)

    der = certificate.public_bytes(serialization.Encoding.DER)
    return TlsIdentity(cert_path, key_path, hashlib.sha256(der).hexdigest())


def load_or_make_certificate(folder: Path, stem: str) -> TlsIdentity:
    """The certificate kept in ``folder`` from an earlier start, or a new one.

    Keeping it lets integrations set up against the sandbox (which may pin the
    certificate) work again after a restart.
    """
    cert_path, key_path = folder / f"{stem}.cer", folder / f"{stem}.key"
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key_path.stat()
    except (OSError, ValueError):
        return make_certificate(folder, stem)
    if certificate.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        return make_certificate(folder, stem)
    der = certificate.public_bytes(serialization.Encoding.DER)
    return TlsIdentity(cert_path, key_path, hashlib.sha256(der).hexdigest())
