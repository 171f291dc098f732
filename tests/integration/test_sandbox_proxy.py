"""The sandbox proxy: TLS tunnels to the KSC emulator, 407s, and loopback only."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from agent.sandbox import seed
from agent.sandbox.certs import TlsIdentity, make_certificate
from agent.sandbox.ksc import KscEmulator
from agent.sandbox.proxy import ProxyEmulator
from agent.sandbox.server import Faults

TIMEOUT = 5


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> TlsIdentity:
    """The KSC emulator's certificate."""
    return make_certificate(tmp_path_factory.mktemp("proxy"), "klserver")


@pytest.fixture(scope="module")
def ksc(cert: TlsIdentity) -> Iterator[KscEmulator]:
    """A small KSC emulator to tunnel to."""
    server = KscEmulator(seed.make_fleet("ksc", 1, seed=3, devices=12), tls=cert)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyEmulator]:
    """The proxy."""
    server = ProxyEmulator(seed=3).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_faults(proxy: ProxyEmulator) -> Iterator[None]:
    """Each test starts with a healthy proxy."""
    yield
    proxy.faults = Faults()


def proxy_url(proxy: ProxyEmulator, password: str | None = None) -> str:
    """The proxy's URL with credentials in it, as requests takes them."""
    return f"http://{proxy.user}:{password or proxy.password}@127.0.0.1:{proxy.port}"


def basic(user: str, password: str) -> str:
    """A Basic Proxy-Authorization value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def raw_request(proxy: ProxyEmulator, head: str) -> tuple[int, dict[str, str]]:
    """Send a request head to the proxy over a plain socket; (status, headers)."""
    with socket.create_connection(("127.0.0.1", proxy.port), TIMEOUT) as sock:
        sock.sendall(head.encode("ascii"))
        data = b""
        while b"\r\n\r\n" not in data:
            part = sock.recv(4096)
            if not part:
                break
            data += part
    lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


def connect_head(target: str, authorization: str | None) -> str:
    """A CONNECT request head."""
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if authorization:
        head += f"Proxy-Authorization: {authorization}\r\n"
    return head + "\r\n"


def direct(method: str, url: str, **kwargs: object) -> requests.Response:
    """A request straight to a server, never through the environment's proxy."""
    with requests.Session() as http:
        http.trust_env = False
        send: Any = http.request
        return send(method, url, timeout=TIMEOUT, **kwargs)


def counters(proxy: ProxyEmulator) -> dict[str, int]:
    """The proxy's counters, read through its sandbox endpoint."""
    reply = direct("GET", f"{proxy.url}/_sandbox/state")
    assert reply.status_code == 200
    return reply.json()


def test_tunnels_tls_to_the_ksc_emulator(
    proxy: ProxyEmulator, ksc: KscEmulator, cert: TlsIdentity
) -> None:
    """A KSC login and call go through a CONNECT tunnel with good credentials."""
    before = counters(proxy)
    http = requests.Session()
    http.trust_env = False
    http.verify = str(cert.cert_path)
    http.proxies = {"https": proxy_url(proxy)}
    try:
        user = base64.b64encode(ksc.user.encode()).decode()
        password = base64.b64encode(ksc.password.encode()).decode()
        headers = {
            "Authorization": f'KSCBasic user="{user}", pass="{password}", '
            'domain="", internal="1"',
            "X-KSC-VServer": base64.b64encode(
                ksc.fleet.tenants[0].name.encode()
            ).decode(),
        }
        login = http.post(f"{ksc.url}/api/v1.0/login", headers=headers, timeout=TIMEOUT)
        assert login.status_code == 200
        found = http.post(
            f"{ksc.url}/api/v1.0/HostGroup.FindHosts",
            json={"wstrFilter": "", "vecFieldsToReturn": ["KLHST_WKS_DN"]},
            timeout=TIMEOUT,
        )
        assert found.status_code == 200
        assert found.json()["PxgRetVal"] == len(ksc.fleet.tenants[0].devices)
    finally:
        http.close()

    after = counters(proxy)
    assert after["tunnels_opened"] == before["tunnels_opened"] + 1
    assert after["dialled"] == before["dialled"] + 1


def test_wrong_or_missing_credentials_get_407(
    proxy: ProxyEmulator, ksc: KscEmulator, cert: TlsIdentity
) -> None:
    """Missing or wrong credentials get 407 with Proxy-Authenticate, undialled."""
    before = counters(proxy)
    target = f"127.0.0.1:{ksc.port}"

    status, headers = raw_request(proxy, connect_head(target, None))
    assert status == 407
    assert headers["proxy-authenticate"].startswith("Basic")
    wrong = basic(proxy.user, "wrong-password")
    status, headers = raw_request(proxy, connect_head(target, wrong))
    assert status == 407 and "proxy-authenticate" in headers

    http = requests.Session()
    http.trust_env = False
    http.proxies = {"https": proxy_url(proxy, "wrong-password")}
    with pytest.raises(requests.exceptions.ProxyError, match="407"):
        http.post(f"{ksc.url}/api/v1.0/login", verify=str(cert.cert_path), timeout=5)
    http.close()

    after = counters(proxy)
    assert after["refused_auth"] == before["refused_auth"] + 3
    assert after["dialled"] == before["dialled"]


@pytest.mark.parametrize("host", ["example.invalid", "192.0.2.1", "127.0.0.2"])
def test_targets_off_this_computer_are_refused_undialled(
    proxy: ProxyEmulator, host: str
) -> None:
    """Targets off this computer get 403 and are never dialled."""
    before = counters(proxy)
    good = basic(proxy.user, proxy.password)

    status, _ = raw_request(proxy, connect_head(f"{host}:443", good))
    assert status == 403
    head = (
        f"GET http://{host}/index.html HTTP/1.1\r\nHost: {host}\r\n"
        f"Proxy-Authorization: {good}\r\n\r\n"
    )
    status, _ = raw_request(proxy, head)
    assert status == 403

    after = counters(proxy)
    assert after["refused_target"] == before["refused_target"] + 2
    assert after["dialled"] == before["dialled"]
    assert after["tunnels_opened"] == before["tunnels_opened"]


def test_forwards_plain_http_to_loopback(proxy: ProxyEmulator) -> None:
    """An absolute-URI plain-HTTP request is forwarded to loopback."""
    before = counters(proxy)
    http = requests.Session()
    http.trust_env = False
    http.proxies = {"http": proxy_url(proxy)}
    try:
        # The proxy's own state endpoint is a plain-HTTP target on loopback.
        reply = http.get(f"http://localhost:{proxy.port}/_sandbox/state", timeout=5)
    finally:
        http.close()
    assert reply.status_code == 200
    assert reply.json()["dialled"] == before["dialled"] + 1

    after = counters(proxy)
    assert after["requests_forwarded"] == before["requests_forwarded"] + 1


def test_faults_apply_to_tunnels(proxy: ProxyEmulator, ksc: KscEmulator) -> None:
    """Injected 429s and down apply to CONNECT."""
    set_faults = direct(
        "POST",
        f"{proxy.url}/_sandbox/faults",
        json={"rate_limit_rate": 1.0, "retry_after": 3},
    )
    assert set_faults.status_code == 200
    good = basic(proxy.user, proxy.password)
    status, headers = raw_request(proxy, connect_head(f"127.0.0.1:{ksc.port}", good))
    assert status == 429 and headers["retry-after"] == "3"

    proxy.faults = Faults(down=True)
    status_line = raw_request_or_none(
        proxy, connect_head(f"127.0.0.1:{ksc.port}", good)
    )
    assert status_line is None


def raw_request_or_none(proxy: ProxyEmulator, head: str) -> int | None:
    """The status of a raw request, or None when the proxy drops the connection."""
    with socket.create_connection(("127.0.0.1", proxy.port), TIMEOUT) as sock:
        sock.sendall(head.encode("ascii"))
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            return None
    return int(data.split()[1]) if data else None


def test_requests_to_the_proxy_itself_are_refused(proxy: ProxyEmulator) -> None:
    """A request addressed to the proxy itself gets 400."""
    reply = direct("GET", f"{proxy.url}/anything")
    assert reply.status_code == 400
    assert proxy.describe() == {
        "url": proxy.url,
        "user": proxy.user,
        "password": proxy.password,
    }
