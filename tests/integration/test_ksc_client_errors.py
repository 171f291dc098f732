"""The KSC client's failures: certificates, proxy, logins and the network, in words."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from agent.errors import (
    AddressNotFound,
    CertificateChanged,
    CertificateNameMismatch,
    CertificateNotTrusted,
    ConnectError,
    NothingListening,
    ProtocolError,
    ProxyRefused,
    RateLimited,
    RemoteError,
    ServerError,
    SetupError,
    TimedOut,
    WrongCredentials,
)
from agent.sandbox import seed
from agent.sandbox.certs import TlsIdentity, make_certificate
from agent.sandbox.ksc import KscEmulator
from agent.sandbox.proxy import ProxyEmulator
from agent.sources.ksc import (
    KscClient,
    ProxySettings,
    VirtualServerLoginFailed,
    fetch_certificate,
)
from tests.integration.emulator_support import fail_next
from tests.integration.ksc_client_support import (
    calls,
    colon_fingerprint,
    free_port,
    issue_leaf,
    make_client,
    reset,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this module's certificates live."""
    return tmp_path_factory.mktemp("ksc-errors")


@pytest.fixture(scope="module")
def cert(folder: Path) -> TlsIdentity:
    """The emulator's klserver.cer (names localhost and 127.0.0.1)."""
    return make_certificate(folder, "klserver")


@pytest.fixture(scope="module")
def emulator(cert: TlsIdentity) -> Iterator[KscEmulator]:
    """Two small virtual servers."""
    server = KscEmulator(seed.make_fleet("ksc", 2, seed=3, devices=8), tls=cert).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyEmulator]:
    """The sandbox proxy with Basic credentials."""
    server = ProxyEmulator().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean(emulator: KscEmulator, proxy: ProxyEmulator) -> Iterator[None]:
    """No faults, sessions or counted calls between tests."""
    reset(emulator)
    yield
    emulator.faults.hang = False
    reset(emulator)
    with proxy.lock:
        proxy.counters = dict.fromkeys(proxy.counters, 0)


def settings_of(proxy: ProxyEmulator, password: str | None = None) -> ProxySettings:
    """The proxy's address and credentials (or another password)."""
    info = proxy.describe()
    return ProxySettings(info["url"], info["user"], password or info["password"])


def assert_error(
    caught: pytest.ExceptionInfo, kind: type, field: str, *words: str
) -> None:
    """The exact error class, the field to fix, KSC as the system, and the words."""
    error = caught.value
    assert type(error) is kind, f"{type(error).__name__}: {error}"
    assert error.field == field
    if isinstance(error, RemoteError):
        assert error.system == "KSC"
    for word in words:
        assert word in str(error)


# Certificates.


def test_a_pinned_certificate_file_connects(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """klserver.cer as the only trusted certificate: the server is accepted."""
    with make_client(emulator, certificate=cert.cert_path) as client:
        assert len(client.check()) == 2


def test_another_servers_certificate_file_is_refused(
    emulator: KscEmulator, folder: Path
) -> None:
    """A file of another server: the presented certificate is not the chosen one."""
    other = make_certificate(folder, "other-server")
    with make_client(emulator, certificate=other.cert_path) as client:
        with pytest.raises(CertificateChanged) as caught:
            client.check()
    assert_error(caught, CertificateChanged, "certificate", str(other.cert_path))
    assert calls(emulator, "Session.StartSession") == 0


def test_a_certificate_issued_by_the_file_is_still_another_one(
    cert: TlsIdentity, folder: Path
) -> None:
    """The file is also a pin: a leaf its key signed passes TLS but is refused."""
    leaf = issue_leaf(cert, folder, "issued-leaf")
    server = KscEmulator(seed.make_fleet("ksc", 1, seed=3, devices=2), tls=leaf)
    server.start()
    try:
        with make_client(server, certificate=cert.cert_path) as client:
            with pytest.raises(CertificateChanged) as caught:
                client.check()
        assert_error(caught, CertificateChanged, "certificate", colon_fingerprint(leaf))
        assert calls(server, "Session.StartSession") == 0
    finally:
        server.stop()


def test_an_unknown_certificate_is_shown_then_accepted(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """No certificate chosen: refused with its fingerprint; accepted, it connects."""
    expected = colon_fingerprint(cert)
    with make_client(emulator) as client:
        with pytest.raises(CertificateNotTrusted) as caught:
            client.check()
    assert_error(caught, CertificateNotTrusted, "certificate", expected)
    assert caught.value.fingerprint == expected

    pem, shown = fetch_certificate(emulator.url)
    assert shown == expected
    assert x509.load_pem_x509_certificate(pem.encode()) == (
        x509.load_pem_x509_certificate(cert.cert_path.read_bytes())
    )

    accepted = shown.replace(":", "").lower()
    with make_client(emulator, accepted_fingerprint=accepted) as client:
        assert len(client.check()) == 2


def test_an_accepted_fingerprint_refuses_another_certificate(
    emulator: KscEmulator, folder: Path
) -> None:
    """After acceptance, a server with another certificate is refused."""
    other = make_certificate(folder, "renewed")
    with make_client(emulator, accepted_fingerprint=colon_fingerprint(other)) as client:
        with pytest.raises(CertificateChanged) as caught:
            client.check()
    assert_error(caught, CertificateChanged, "certificate", "accept")
    assert calls(emulator, "Session.StartSession") == 0


def test_a_certificate_that_names_only_the_host(folder: Path) -> None:
    """By IP: the name mismatch says how to fix it; by name it works; a pin skips it."""
    named = make_certificate(folder, "named", dns_names=("localhost",), ip_addresses=())
    server = KscEmulator(seed.make_fleet("ksc", 1, seed=3, devices=2), tls=named)
    server.start()
    try:
        with make_client(server, certificate=named.cert_path) as client:
            with pytest.raises(CertificateNameMismatch) as caught:
                client.check()
        assert_error(
            caught, CertificateNameMismatch, "address", "127.0.0.1", "localhost"
        )
        assert "names localhost" in str(caught.value)

        by_name = f"localhost:{server.port}"
        with make_client(server, address=by_name, certificate=named.cert_path) as ok:
            assert len(ok.check()) == 1

        pin = colon_fingerprint(named)
        with make_client(server, accepted_fingerprint=pin) as pinned:
            assert len(pinned.check()) == 1
    finally:
        server.stop()


def test_certificate_setup_mistakes(emulator: KscEmulator, folder: Path) -> None:
    """A missing file, a file that is no certificate, a malformed fingerprint."""
    with pytest.raises(SetupError) as missing:
        make_client(emulator, certificate=folder / "no-such.cer")
    assert missing.value.field == "certificate"

    junk = folder / "junk.cer"
    junk.write_text("not a certificate")
    with pytest.raises(SetupError) as unreadable:
        make_client(emulator, certificate=junk)
    assert unreadable.value.field == "certificate"

    with pytest.raises(SetupError) as malformed:
        make_client(emulator, accepted_fingerprint="AB:CD")
    assert malformed.value.field == "certificate"


# Proxy.


def test_through_the_proxy(
    emulator: KscEmulator, cert: TlsIdentity, proxy: ProxyEmulator
) -> None:
    """CONNECT with Basic credentials; the pinned TLS runs inside the tunnel."""
    settings = settings_of(proxy)
    with make_client(emulator, certificate=cert.cert_path, proxy=settings) as client:
        tenants = client.check()
        assert len(list(client.devices(tenants[0]))) == 8

    assert fetch_certificate(emulator.url, settings)[1] == colon_fingerprint(cert)
    state = proxy.state()
    assert state["tunnels_opened"] >= 2
    assert state["refused_auth"] == 0


def test_the_proxy_refuses_wrong_credentials(
    emulator: KscEmulator, cert: TlsIdentity, proxy: ProxyEmulator
) -> None:
    """A 407 names the proxy's user name and password, never the password itself."""
    settings = settings_of(proxy, password="wrong-proxy-secret")
    with make_client(emulator, certificate=cert.cert_path, proxy=settings) as client:
        with pytest.raises(ProxyRefused) as caught:
            client.check()
    assert_error(caught, ProxyRefused, "proxy_user", "proxy")
    assert "wrong-proxy-secret" not in str(caught.value)

    with pytest.raises(ProxyRefused) as fetched:
        fetch_certificate(emulator.url, settings)
    assert fetched.value.field == "proxy_user"
    assert calls(emulator, "Session.StartSession") == 0


def test_a_proxy_that_is_not_there(emulator: KscEmulator, cert: TlsIdentity) -> None:
    """Nothing at the proxy's address: the proxy address is the field to fix."""
    settings = ProxySettings(f"127.0.0.1:{free_port()}", "user", "secret")
    waits: list[float] = []
    with make_client(
        emulator, certificate=cert.cert_path, proxy=settings, waits=waits
    ) as client:
        with pytest.raises(ConnectError) as caught:
            client.check()
    assert_error(caught, ConnectError, "proxy_address", "proxy")
    assert len(waits) == 3  # Retried: a proxy may come back.


def test_the_proxy_cannot_reach_ksc(
    cert: TlsIdentity, emulator: KscEmulator, proxy: ProxyEmulator
) -> None:
    """The proxy answers CONNECT with 502: the KSC address is the field to fix."""
    address = f"127.0.0.1:{free_port()}"
    settings = settings_of(proxy)
    with make_client(
        emulator,
        address=address,
        certificate=cert.cert_path,
        proxy=settings,
        attempts=1,
    ) as client:
        with pytest.raises(ConnectError) as caught:
            client.check()
    assert_error(caught, ConnectError, "address", address, "HTTP 502")


# Logins.


def test_a_wrong_password(emulator: KscEmulator, cert: TlsIdentity) -> None:
    """401 on login: the password is the field to fix, and it is never shown."""
    with make_client(
        emulator, certificate=cert.cert_path, password="Not-The-Password-9"
    ) as client:
        with pytest.raises(WrongCredentials) as caught:
            client.check()
    assert_error(caught, WrongCredentials, "password", emulator.user)
    assert "Not-The-Password-9" not in str(caught.value)
    assert calls(emulator, "Session.StartSession") == 1


def test_a_certificate_does_not_replace_the_user_name(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """The Open API has no certificate login: without a user name, nothing is sent."""
    with make_client(
        emulator, certificate=cert.cert_path, user=None, password=None
    ) as client:
        with pytest.raises(WrongCredentials) as caught:
            client.check()
    assert_error(caught, WrongCredentials, "user", "certificate")
    assert calls(emulator, "Session.StartSession") == 0


def test_a_wrong_virtual_server_fails_once(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """An unknown virtual server: one login attempt, one error naming it."""
    with make_client(emulator, certificate=cert.cert_path) as client:
        with pytest.raises(VirtualServerLoginFailed) as caught:
            client.devices("No Such Company")
    assert_error(
        caught,
        VirtualServerLoginFailed,
        "vserver",
        'login failed for virtual server "No Such Company"',
    )
    assert caught.value.vserver == "No Such Company"
    # One main-server login to look the name up, one refused virtual-server login.
    assert calls(emulator, "Session.StartSession") == 2
    assert calls(emulator, "VServers.GetVServers") == 1

    with make_client(
        emulator, certificate=cert.cert_path, vserver="No Such Company"
    ) as scoped:
        with pytest.raises(VirtualServerLoginFailed):
            scoped.check()
    assert calls(emulator, "Session.StartSession") == 3


# The network and the server.


def failing_check(
    emulator: KscEmulator, cert: TlsIdentity, error: type[Exception]
) -> tuple[pytest.ExceptionInfo[Any], list[float]]:
    """Run a client's check on the faulty emulator, expecting ``error``; what it
    raised and the waits it took between attempts."""
    waits: list[float] = []
    with make_client(emulator, certificate=cert.cert_path, waits=waits) as client:
        with pytest.raises(error) as caught:
            client.check()
    return caught, waits


def test_nothing_listening(cert: TlsIdentity) -> None:
    """A refused connection names the address and port."""
    port = free_port()
    waits: list[float] = []
    client = KscClient(
        f"127.0.0.1:{port}",
        "user",
        "secret",
        certificate=cert.cert_path,
        sleep=waits.append,
    )
    with client, pytest.raises(NothingListening) as caught:
        client.check()
    assert_error(caught, NothingListening, "address", f"127.0.0.1:{port}")
    assert len(waits) == 3


def test_address_not_found(cert: TlsIdentity) -> None:
    """A name that does not resolve is told apart from a server that is down.

    Names under .invalid never resolve (RFC 6761), so no query leaves this machine
    with an answer.
    """
    client = KscClient(
        "ksc.no-such-host.invalid",
        "user",
        "secret",
        certificate=cert.cert_path,
        sleep=lambda _seconds: None,
    )
    with client, pytest.raises(AddressNotFound) as caught:
        client.check()
    assert_error(caught, AddressNotFound, "address", "ksc.no-such-host.invalid")


def test_a_server_that_never_answers_times_out(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """A hung server ends the call after the read timeout."""
    emulator.faults.hang = True
    with make_client(
        emulator, certificate=cert.cert_path, timeout=(2.0, 0.5), attempts=1
    ) as client:
        with pytest.raises(TimedOut) as caught:
            client.check()
    assert_error(caught, TimedOut, "address", "did not answer in time")


def test_an_html_503_is_retried_then_named(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """5xx HTML pages are retried, then reported as HTTP 503 from the address."""
    fail_next(emulator, "", 503, 10)
    caught, waits = failing_check(emulator, cert, ServerError)
    assert caught.value.status == 503
    assert f"HTTP 503 from 127.0.0.1:{emulator.port}" in str(caught.value)
    assert len(waits) == 3


def test_an_html_404_says_the_address_is_wrong(
    emulator: KscEmulator, cert: TlsIdentity
) -> None:
    """404 is not retried: the address is not KSC's Open API."""
    fail_next(emulator, "", 404, 1)
    caught, waits = failing_check(emulator, cert, ProtocolError)
    assert_error(caught, ProtocolError, "address", "HTTP 404 from")
    assert waits == []


def test_rate_limited(emulator: KscEmulator, cert: TlsIdentity) -> None:
    """429 carries Retry-After, after the retries."""
    emulator.faults.rate_limit_rate = 1.0
    emulator.faults.retry_after = 7
    caught, waits = failing_check(emulator, cert, RateLimited)
    assert caught.value.retry_after == 7
    assert waits == [7, 7, 7]


def test_a_port_that_does_not_speak_tls(
    cert: TlsIdentity, proxy: ProxyEmulator
) -> None:
    """A plain-HTTP port: the handshake fails and the port is the thing to check."""
    address = f"127.0.0.1:{proxy.port}"
    client = KscClient(
        address, "user", "secret", certificate=cert.cert_path, sleep=lambda _: None
    )
    with client, pytest.raises(ProtocolError) as caught:
        client.check()
    assert_error(caught, ProtocolError, "address", "TLS", "13299")


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ("", "address"),
        ("http://ksc.example.local", "address"),
        ("ksc.example.local:99999", "address"),
        ("two words", "address"),
    ],
)
def test_addresses_that_cannot_be_used(address: str, field: str) -> None:
    """Blank, plain HTTP, a bad port or spaces: refused before any connection."""
    with pytest.raises(SetupError) as caught:
        KscClient(address, "user", "secret")
    assert caught.value.field == field


def test_addresses_in_every_form() -> None:
    """Name or IP, with or without port or https://; the port defaults to 13299."""
    forms = {
        "ksc.example.local": "ksc.example.local:13299",
        "https://ksc.example.local": "ksc.example.local:13299",
        "10.0.0.5:8443": "10.0.0.5:8443",
        "https://10.0.0.5:13299/": "10.0.0.5:13299",
        "[fd00::5]": "[fd00::5]:13299",
    }
    for given, netloc in forms.items():
        assert KscClient(given, "u", "p").route.target.netloc == netloc

    with pytest.raises(SetupError) as caught:
        KscClient("ksc", "u", "p", proxy=ProxySettings("https://proxy:3128"))
    assert caught.value.field == "proxy_address"
    assert ProxySettings("proxy.local").target().netloc == "proxy.local:8080"


def test_no_secret_in_any_log_line(
    emulator: KscEmulator,
    cert: TlsIdentity,
    proxy: ProxyEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At DEBUG, through the proxy, with a renewal and a refusal: no secret logged."""
    caplog.set_level(logging.DEBUG)
    info = proxy.describe()
    secrets = [emulator.password, info["password"], "Not-The-Password-9"]
    secrets += [base64.b64encode(s.encode()).decode() for s in secrets]

    settings = settings_of(proxy)
    with make_client(emulator, certificate=cert.cert_path, proxy=settings) as client:
        tenant = client.check()[0]
        list(client.devices(tenant))
        emulator.expire_sessions()
        list(client.devices(tenant))
    with make_client(emulator, password="Not-The-Password-9") as client:
        with pytest.raises(CertificateNotTrusted):
            client.check()
    with make_client(
        emulator, certificate=cert.cert_path, password="Not-The-Password-9"
    ) as client:
        with pytest.raises(WrongCredentials) as caught:
            client.check()

    assert "logging in again" in caplog.text
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in str(caught.value)
