"""Reading klserver.cer: PEM or DER, one certificate or a chain, and a clear error
for a file that holds none; without the cryptography package (it is kept out of a
syncing agent's memory)."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import SetupError
from agent.sandbox.certs import make_certificate
from agent.sources.ksc_tls import fingerprint, read_certificate_file


def der_of(pem_path: Path) -> bytes:
    """The DER bytes of a one-certificate PEM file, by the standard library."""
    return ssl.PEM_cert_to_DER_cert(pem_path.read_text())


def test_a_pem_file_gives_its_certificate_as_der(tmp_path: Path) -> None:
    identity = make_certificate(tmp_path, "klserver")

    read = read_certificate_file(identity.cert_path)

    assert read.ders == (der_of(identity.cert_path),)


def test_a_der_file_and_a_pem_chain_are_read_too(tmp_path: Path) -> None:
    first = make_certificate(tmp_path, "one")
    second = make_certificate(tmp_path, "two", common_name="ksc.example")
    der_file = tmp_path / "klserver-der.cer"
    der_file.write_bytes(der_of(first.cert_path))
    chain = tmp_path / "chain.cer"
    chain.write_text(first.cert_path.read_text() + second.cert_path.read_text())

    assert read_certificate_file(der_file).ders == (der_of(first.cert_path),)
    assert read_certificate_file(chain).ders == (
        der_of(first.cert_path),
        der_of(second.cert_path),
    )
    assert fingerprint(read_certificate_file(der_file).ders[0]) == fingerprint(
        der_of(first.cert_path)
    )


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a certificate at all",
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        bytes(range(256)),
    ],
    ids=["empty", "text", "pem-of-garbage", "a-key-not-a-certificate", "binary"],
)
def test_a_file_without_a_certificate_names_the_field(
    tmp_path: Path, content: bytes
) -> None:
    bad = tmp_path / "klserver.cer"
    bad.write_bytes(content)

    with pytest.raises(SetupError) as caught:
        read_certificate_file(bad)

    assert caught.value.field == "certificate"
    assert f"The file {bad} holds no certificate" in str(caught.value)


def test_reading_a_certificate_file_loads_no_cryptography(tmp_path: Path) -> None:
    identity = make_certificate(tmp_path, "klserver")
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from agent.sources.ksc_tls import read_certificate_file\n"
        f"read_certificate_file(Path({str(identity.cert_path)!r}))\n"
        "print('cryptography' in sys.modules)\n"
    )

    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert shown.stdout.strip() == "False"
