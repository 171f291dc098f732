"""The errors of the agent, each with a message a technician can act on.

The tree::

    AgentError                      anything the agent reports to a person
    +-- ConfigError                 the config file cannot be used (names line and key)
    +-- StoreError                  the local database cannot be read or written
    +-- SecretStoreError            a password or key cannot be saved or read
    +-- SetupError                  a setup choice breaks a rule (blank, one-to-one)
    +-- RemoteError                 a remote system (KSC, KBH, Tigerpaw) failed us
        +-- ConnectError            we never got an answer
        |   +-- AddressNotFound     the name does not resolve
        |   +-- NothingListening    the connection was refused
        |   +-- TimedOut            no answer within the timeout
        +-- CertificateError        the server's certificate is not the one to trust
        |   +-- CertificateNotTrusted
        |   +-- CertificateNameMismatch
        |   +-- CertificateChanged
        +-- ProxyRefused            the proxy refused our credentials
        +-- AuthError               the server refused who we are (ask the user)
        |   +-- WrongCredentials
        |   +-- AccountInactive
        |   +-- PermissionDenied    a right is missing; ``right`` names it
        |       +-- NotCrossReferenced  a Tigerpaw account lacks the external product
        +-- RateLimited             slow down; ``retry_after`` seconds
        +-- ServerError             the server failed; ``status`` and its message
        +-- ProtocolError           the server answered something we cannot read
        +-- RecordLocked            Tigerpaw holds the record open on someone's screen
        +-- RequestRejected         the server refused what we sent; ``status`` says how
            +-- RecordNotFound      the record asked for does not exist

Auth errors stop work and ask the user; connect errors, rate limits, server errors and
locks are transient and retried.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent reports to a person."""

    #: Whether trying again later may succeed without anyone changing anything.
    transient = False


class ConfigError(AgentError):
    """The config file cannot be used; ``line`` and ``key`` say where."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.key = key


class StoreError(AgentError):
    """The local database cannot be read or written."""


class SecretStoreError(AgentError):
    """A password or key cannot be saved or read."""


class SetupError(AgentError):
    """A setup choice breaks a rule; ``field`` names the field to fix."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RemoteError(AgentError):
    """A remote system failed us; ``system`` names it (KSC, KBH, Tigerpaw)."""

    def __init__(self, message: str, *, system: str = "", field: str | None = None):
        super().__init__(message)
        self.system = system
        self.field = field


class ConnectError(RemoteError):
    """No answer came from the address."""

    transient = True


class AddressNotFound(ConnectError):
    """The host name does not resolve."""


class NothingListening(ConnectError):
    """The host refused the connection: no server on that port."""


class TimedOut(ConnectError):
    """The server did not answer within the timeout."""


class CertificateError(RemoteError):
    """The server's certificate is not the one we may trust."""


class CertificateNotTrusted(CertificateError):
    """The certificate is unknown; the user checks its SHA-256 ``fingerprint``."""

    def __init__(self, message: str, *, fingerprint: str = "", **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.fingerprint = fingerprint


class CertificateNameMismatch(CertificateError):
    """The certificate does not name the address we connected to."""


class CertificateChanged(CertificateError):
    """The server presents another certificate than the one chosen or accepted."""


class ProxyRefused(RemoteError):
    """The proxy refused our user name or password."""


class AuthError(RemoteError):
    """The server refused who we are."""


class WrongCredentials(AuthError):
    """The user name, password or keys are wrong."""


class AccountInactive(AuthError):
    """The account exists but is locked or inactive."""


class PermissionDenied(AuthError):
    """A right is missing; ``right`` names it as the remote system does."""

    def __init__(self, message: str, *, right: str = "", **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.right = right


class RateLimited(RemoteError):
    """The server asks us to slow down for ``retry_after`` seconds."""

    transient = True

    def __init__(self, message: str, *, retry_after: float = 0.0, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(RemoteError):
    """The server failed with ``status``."""

    transient = True

    def __init__(self, message: str, *, status: int = 0, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.status = status


class ProtocolError(RemoteError):
    """The server answered something we cannot read."""


class RecordLocked(RemoteError):
    """Tigerpaw holds the record open on someone's screen; try again later."""

    transient = True


class NotCrossReferenced(PermissionDenied):
    """A Tigerpaw account is not cross-referenced to the SOAP user's external product.

    ``account`` is the account number; a person assigns the product in Tigerpaw.
    """

    def __init__(self, message: str, *, account: int | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.account = account


class RequestRejected(RemoteError):
    """The server refused what we sent (a value, a state); ``status`` says how."""

    def __init__(self, message: str, *, status: int = 0, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.status = status


class RecordNotFound(RequestRejected):
    """The record asked for does not exist (or no longer does)."""
