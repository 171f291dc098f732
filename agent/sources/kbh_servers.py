"""Which Business Hub address each ``KESCloudServer`` value stands for."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from agent.errors import ConfigError

#: The values ``KESCloudServer`` takes, as the config file spells them.
ENVIRONMENTS = ("production", "beta", "test")
#: The config key that picks the server; errors about the server name it.
SETTING = "KESCloudServer"


@dataclass(frozen=True)
class Server:
    """One Business Hub server: its base URL and what to trust its certificate with.

    ``verify`` is ``True`` (the usual certificate authorities) or the path of a CA
    file, as the sandbox registers for its self-signed certificate.
    """

    url: str
    verify: bool | str = True


def normalise(name: str) -> str:
    """A ``KESCloudServer`` value as the table keys it (trimmed, lower case)."""
    return name.strip().lower()


class ServerTable:
    """Base URLs per environment: the known ones, overridden by registered ones.

    The known table is what the agent ships with; the sandbox registers its emulated
    servers on top, and :meth:`clear` takes them away again.
    """

    def __init__(self, known: Mapping[str, str | None] | None = None) -> None:
        unknown = set(known or {}) - set(ENVIRONMENTS)
        if unknown:
            raise ValueError(f"Not a {SETTING} value: {', '.join(sorted(unknown))}")
        self._known = {name: Server(url) for name, url in (known or {}).items() if url}
        self._registered: dict[str, Server] = {}
        self._lock = threading.Lock()

    def register(self, servers: Mapping[str, tuple[str, str | None]]) -> None:
        """Use ``{environment: (url, ca_file)}`` in place of the known addresses."""
        checked = {}
        for name, (url, ca_file) in servers.items():
            key = normalise(name)
            if key not in ENVIRONMENTS:
                raise ValueError(f"Not a {SETTING} value: {name!r}")
            if (
                urlsplit(url).scheme not in ("https", "http")
                or not urlsplit(url).netloc
            ):
                raise ValueError(f"Not a base URL for Business Hub ({key}): {url!r}")
            checked[key] = Server(url.rstrip("/"), ca_file or True)

        with self._lock:
            self._registered.update(checked)

    def clear(self) -> None:
        """Forget every registered server; only the known addresses remain."""
        with self._lock:
            self._registered.clear()

    def resolve(self, name: str) -> Server:
        """The server ``KESCloudServer=name`` selects; ConfigError if there is none."""
        key = normalise(name)
        if key not in ENVIRONMENTS:
            raise ConfigError(
                f"{SETTING}={name.strip()!r} is not a Business Hub server: set it to "
                f"production, beta or test in the config file (or remove the key to "
                "use production)",
                key=SETTING,
            )

        with self._lock:
            server = self._registered.get(key) or self._known.get(key)
            available = sorted({*self._registered, *self._known})
        if server is None:
            others = ", ".join(available) if available else "none"
            raise ConfigError(
                f"No Business Hub address is known for {SETTING}={key}: this version "
                f"of the agent has none for that server (servers it knows: {others}). "
                f"Set {SETTING} in the config file to a server it knows, or update "
                "the agent",
                key=SETTING,
            )
        return server
