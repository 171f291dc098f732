"""Helpers for the KSC client's contract tests: emulators, clients and counters."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.sandbox.certs import TlsIdentity
from agent.sandbox.ksc import KscEmulator
from agent.sandbox.server import Faults
from agent.sources.ksc import KscClient

API = "/api/v1.0/"


def make_client(
    emulator: KscEmulator,
    *,
    address: str | None = None,
    waits: list[float] | None = None,
    **overrides: Any,
) -> KscClient:
    """A client with the emulator's account; retry waits are recorded, not slept."""
    info = emulator.describe()
    settings: dict[str, Any] = {
        "user": info["user"],
        "password": info["password"],
        "timeout": (2.0, 5.0),
        "sleep": (waits if waits is not None else []).append,
    }
    settings.update(overrides)
    return KscClient(
        address or emulator.url,
        settings.pop("user"),
        settings.pop("password"),
        **settings,
    )


def calls(emulator: KscEmulator, method: str) -> int:
    """How many times the emulator was asked for ``method``."""
    return emulator.calls[f"POST {API}{method}"]


def reset(emulator: KscEmulator) -> None:
    """No faults, no call counts, no sessions: a clean emulator for the next test."""
    emulator.faults = Faults()
    emulator.expire_sessions()
    with emulator.lock:
        emulator.calls.clear()


def clear_calls(emulator: KscEmulator) -> None:
    """Forget the counted calls (sessions stay)."""
    with emulator.lock:
        emulator.calls.clear()


def post_events(emulator: KscEmulator, cert: TlsIdentity, payload: dict) -> dict:
    """``POST /_sandbox/events`` over HTTPS, as a test script would."""
    session = requests.Session()
    session.trust_env = False
    try:
        reply = session.post(
            f"{emulator.url}/_sandbox/events",
            json=payload,
            verify=str(cert.cert_path),
            timeout=5,
        )
    finally:
        session.close()
    reply.raise_for_status()
    return reply.json()


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def colon_fingerprint(identity: TlsIdentity) -> str:
    """The certificate's SHA-256 as people compare it: ``AB:CD:...``."""
    digits = identity.fingerprint_sha256.upper()
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))


def issue_leaf(ca: TlsIdentity, folder: Path, stem: str) -> TlsIdentity:
    """A server certificate for localhost/127.0.0.1 signed by ``ca``'s key."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key_path.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_path, key_path = folder / f"{stem}.cer", folder / f"{stem}.key"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    digest = leaf.fingerprint(hashes.SHA256()).hex()
    return TlsIdentity(cert_path, key_path, digest)
