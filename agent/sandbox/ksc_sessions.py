"""Who is calling the KSC emulator, and the result sets they hold open.

A caller is a :class:`Principal`: the sandbox account logged into the main server or
one virtual server. Logins bind to a TCP connection or to a token session; result
sets (host accessors, key iterators, event iterators) belong to one of those owners
and end with it, on Release, or when their lifetime runs out.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from agent.sandbox import ksc_const as const
from agent.sandbox import seed

_PAIR = re.compile(r'(\w+)\s*=\s*"([^"]*)"')

#: An owner of result sets: ("conn", connection id) or ("session", token).
Owner = tuple[str, Any]


class PxgFailure(Exception):
    """A method failed; the reply is a ``PxgError`` body (with HTTP 200)."""

    def __init__(self, error: tuple[str, int, str], message: str) -> None:
        super().__init__(message)
        self.module, self.code, self.mnemonic = error
        self.message = message

    def body(self) -> dict[str, Any]:
        """The ``{"PxgError": {...}}`` reply."""
        return {
            "PxgError": {
                "code": self.code,
                "subcode": 0,
                "module": self.module,
                "file": "agent/sandbox/ksc.py",
                "line": 0,
                "message": self.message,
                "locdata": {
                    "type": "params",
                    "value": {
                        "format": "%1",
                        "format-id": self.code,
                        "locmodule": self.module,
                        "args": [self.message],
                    },
                },
            }
        }


class AuthFailure(Exception):
    """A login or session check failed; the reply is ``status`` with a PxgError."""

    def __init__(self, status: int, error: tuple[str, int, str], message: str):
        super().__init__(message)
        self.status = status
        self.failure = PxgFailure(error, message)


@dataclass(frozen=True)
class Principal:
    """The sandbox account, logged into the main server (tenant None) or a VS."""

    user: str
    tenant: seed.Tenant | None

    @property
    def scope(self) -> str:
        """A short name of where the login is, for logs and state."""
        return self.tenant.name if self.tenant else "main server"


@dataclass
class TokenSession:
    """A ``Session.StartSession`` token and when it was last used."""

    token: str
    principal: Principal
    last_used: float


def check_basic(
    header: str,
    vserver_header: str | None,
    account: tuple[str, str],
    vservers: dict[str, seed.Tenant],
) -> Principal:
    """The principal a ``KSCBasic`` header and ``X-KSC-VServer`` name, or AuthFailure.

    The domain may come raw (KlAkOAPI) or base64 (some clients); empty is fine too.
    """
    scheme, _, rest = header.strip().partition(" ")
    if scheme != "KSCBasic":
        raise AuthFailure(
            401,
            const.ERR_LOGON_FAILED,
            f"The sandbox accepts only KSCBasic logins, not '{scheme}': send "
            'Authorization: KSCBasic user="<base64>", pass="<base64>", domain="", '
            'internal="1"',
        )
    pairs = dict(_PAIR.findall(rest))
    try:
        user = _b64_text(pairs.get("user", ""))
        password = _b64_text(pairs.get("pass", ""))
    except ValueError as err:
        raise AuthFailure(
            401,
            const.ERR_LOGON_FAILED,
            "The KSCBasic user and pass must be base64 of UTF-8 text",
        ) from err

    user_ok = hmac.compare_digest(user.encode(), account[0].encode())
    password_ok = hmac.compare_digest(password.encode(), account[1].encode())
    if not (user_ok and password_ok):
        raise AuthFailure(
            401,
            const.ERR_LOGON_FAILED,
            "Wrong user name or password for the KSC Administration Server",
        )
    if not _domain_matches(pairs.get("domain", "")):
        raise AuthFailure(
            401,
            const.ERR_LOGON_FAILED,
            f"Unknown domain '{pairs.get('domain')}': leave it empty or use "
            f"'{const.SANDBOX_DOMAIN}'",
        )
    return Principal(user, _vserver(vserver_header, vservers))


def _b64_text(value: str) -> str:
    """Decode base64 of UTF-8 text, or ValueError."""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as err:
        raise ValueError(value) from err


def _domain_matches(domain: str) -> bool:
    """Whether a KSCBasic domain (raw or base64) is empty or the sandbox's."""
    expected = const.SANDBOX_DOMAIN.casefold()
    if domain == "" or domain.casefold() == expected:
        return True
    try:
        return _b64_text(domain).casefold() in ("", expected)
    except ValueError:
        return False


def _vserver(
    header: str | None, vservers: dict[str, seed.Tenant]
) -> seed.Tenant | None:
    """The tenant X-KSC-VServer names, None for the main server, or AuthFailure."""
    if not header:
        return None
    try:
        name = _b64_text(header.strip())
    except ValueError as err:
        raise AuthFailure(
            401,
            const.ERR_NOT_FOUND,
            "X-KSC-VServer must be the base64 of a virtual server's display name "
            "(KLVSRV_DN), or empty for the main server",
        ) from err
    if name == "":
        return None
    tenant = vservers.get(name)
    if tenant is None:
        raise AuthFailure(
            401,
            const.ERR_NOT_FOUND,
            f"There is no virtual server named '{name}' on this Administration "
            "Server: use a KLVSRV_DN from VServers.GetVServers",
        )
    return tenant


def new_token() -> str:
    """An unguessable session token or result-set id."""
    return secrets.token_urlsafe(18)


@dataclass
class ResultSet:
    """Records a client reads in pieces; rows are built only when read."""

    id: str
    kind: str
    owner: Owner
    expires: float
    refs: list[Any]
    table: dict[str, Any]
    fields: tuple[str, ...]
    position: int = 0


@dataclass
class ResultSets:
    """Every open accessor and iterator, by id; callers hold the emulator's lock."""

    items: dict[str, ResultSet] = field(default_factory=dict)

    def create(
        self,
        kind: str,
        owner: Owner,
        refs: list[Any],
        table: dict[str, Any],
        fields: tuple[str, ...],
        lifetime: float,
    ) -> ResultSet:
        """Open a result set living ``lifetime`` seconds."""
        self.purge()
        result = ResultSet(
            new_token(), kind, owner, time.monotonic() + lifetime, refs, table, fields
        )
        self.items[result.id] = result
        return result

    def get(self, result_id: Any, kind: str, owner: Owner, what: str) -> ResultSet:
        """The open result set, or a PxgError naming ``what`` (accessor, iterator)."""
        self.purge()
        result = self.items.get(result_id) if isinstance(result_id, str) else None
        if result is None or result.kind != kind or result.owner != owner:
            raise PxgFailure(
                const.ERR_NOT_FOUND,
                f"The {what} '{result_id}' does not exist: it expired, was released, "
                "or belongs to another session. Run the search again.",
            )
        return result

    def release(self, result_id: Any, kind: str, owner: Owner) -> None:
        """Free one result set; freeing one that is gone does nothing."""
        result = self.items.get(result_id) if isinstance(result_id, str) else None
        if result is not None and result.kind == kind and result.owner == owner:
            del self.items[result.id]

    def release_owner(self, owner: Owner) -> None:
        """Free everything a connection or session holds."""
        for result_id in [r.id for r in self.items.values() if r.owner == owner]:
            del self.items[result_id]

    def purge(self) -> None:
        """Forget result sets whose lifetime is over."""
        now = time.monotonic()
        for result_id in [r.id for r in self.items.values() if r.expires <= now]:
            del self.items[result_id]

    def count(self, kind: str) -> int:
        """How many result sets of ``kind`` are open."""
        return sum(1 for r in self.items.values() if r.kind == kind)
