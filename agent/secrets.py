"""Where passwords and keys live: the OS keyring, or an owner-only file without one.

The keyring is Windows Credential Manager, the macOS Keychain or a Secret Service
(GNOME Keyring, KWallet) on Linux. Where none works (keyring's fail or null backend, or
a test write that fails, as on a headless server), secrets go to ``secrets.json`` in the
data folder, readable by its owner only; the log says so once and the page can show it
through :attr:`SecretStore.is_fallback`.

Secret values never reach the config file, the database, logs or exception texts.
Every value this module sets or reads is registered for :class:`RedactingFilter`, which
masks it in log records, and for :func:`redact`, which the store applies to error texts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
from keyring.backend import KeyringBackend

from agent.errors import SecretStoreError
from agent.paths import ensure_private_dir

logger = logging.getLogger(__name__)

SERVICE = "TigerpawIntegrationAgent"
FALLBACK_FILE_NAME = "secrets.json"
MASK = "********"

#: Shorter values are not masked in logs: masking "ab" would garble every line, and
#: no password or key the agent stores is that short.
MIN_REDACT_LENGTH = 4

#: The secrets an integration may have, as named by :func:`secret_name`.
SECRET_FIELDS = (
    "tigerpaw_soap_password",
    "tigerpaw_private_key",
    "ksc_password",
    "proxy_password",
    "kbh_password",
)

_PROBE_NAME = "agent/keyring-probe"

#: Friendly names of keyring backends, by the module that holds them.
_BACKEND_NAMES = {
    "keyring.backends.Windows": "Windows Credential Manager",
    "keyring.backends.macOS": "macOS Keychain",
    "keyring.backends.SecretService": "Secret Service",
    "keyring.backends.libsecret": "Secret Service",
    "keyring.backends.kwallet": "KWallet",
}
FALLBACK_BACKEND_NAME = "Owner-only file"

_warned_paths: set[Path] = set()
_warned_lock = threading.Lock()


def secret_name(integration_id: str, field: str) -> str:
    """The name a secret of an integration is kept under."""
    return f"integration/{integration_id}/{field}"


class SecretRegistry:
    """The secret values seen in this process, so that logs can mask them."""

    def __init__(self) -> None:
        """Start with no values."""
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        """Remember a value to mask (too short ones are ignored)."""
        if value and len(value) >= MIN_REDACT_LENGTH:
            with self._lock:
                self._values.add(value)

    def values(self) -> list[str]:
        """The values to mask, longest first (so a value inside another goes too)."""
        with self._lock:
            return sorted(self._values, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """The text with every registered value masked."""
        for value in self.values():
            if value in text:
                text = text.replace(value, MASK)
        return text


#: The registry every SecretStore and the default RedactingFilter share.
REGISTRY = SecretRegistry()


def register_secret(value: str | None) -> None:
    """Mask this value in logs from now on (for example a password typed in a form)."""
    REGISTRY.add(value)


def redact(text: str) -> str:
    """The text with every known secret masked."""
    return REGISTRY.redact(text)


class RedactingFilter(logging.Filter):
    """A logging filter that masks known secret values in messages, args and tracebacks.

    Install it on every handler (a filter on a logger does not see records that
    propagate from child loggers): ``handler.addFilter(RedactingFilter())``.
    """

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        """Mask the values of ``registry`` (the shared one by default)."""
        super().__init__()
        self._registry = registry or REGISTRY

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask secrets in the record; never drops a record."""
        if not self._registry.values():
            return True

        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # Arguments that do not fit the format: logging reports that itself; mask
            # what we can see.
            message = f"{record.msg} {record.args}"
        masked = self._registry.redact(message)
        if masked != message:
            record.msg = masked
            record.args = None

        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            masked_text = self._registry.redact(text)
            if masked_text != text:
                record.exc_text = masked_text
        elif record.exc_text:
            record.exc_text = self._registry.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._registry.redact(record.stack_info)
        return True


class SecretStore:
    """Set, get and delete secrets by name, in the keyring or the fallback file."""

    def __init__(self, data_dir: Path, service: str = SERVICE) -> None:
        """Choose the keyring, or the file in ``data_dir`` when no keyring works."""
        self.data_dir = Path(data_dir)
        self.service = service
        self.fallback_path = self.data_dir / FALLBACK_FILE_NAME
        self._lock = threading.Lock()
        self._keyring, reason = _working_keyring(service)

        if self._keyring is None:
            self.backend_name = FALLBACK_BACKEND_NAME
            _warn_once(self.fallback_path, reason)
        else:
            self.backend_name = _friendly_name(self._keyring)
            logger.info("Passwords and keys are kept in the %s", self.backend_name)

    @property
    def is_fallback(self) -> bool:
        """True when secrets go to the owner-only file instead of a keyring."""
        return self._keyring is None

    def set(self, name: str, value: str) -> None:
        """Save a secret under a name, replacing any earlier value."""
        REGISTRY.add(value)
        if self._keyring is None:
            with self._lock:
                stored = self._read_file()
                stored[name] = value
                self._write_file(stored)
            return

        try:
            self._keyring.set_password(self.service, name, value)
        except keyring.errors.KeyringError as err:
            raise SecretStoreError(
                f"The {self.backend_name} refused to save the secret {name} "
                f"({type(err).__name__}): unlock it, or allow this program to use it, "
                "then save again"
            ) from err

    def get(self, name: str) -> str | None:
        """The secret saved under a name, or None."""
        if self._keyring is None:
            with self._lock:
                value = self._read_file().get(name)
            REGISTRY.add(value)
            return value

        try:
            value = self._keyring.get_password(self.service, name)
        except keyring.errors.KeyringError as err:
            raise SecretStoreError(
                f"The {self.backend_name} refused to give the secret {name} "
                f"({type(err).__name__}): unlock it, or allow this program to use it"
            ) from err
        if value is None:
            value = self._adopt_from_file(name)
        REGISTRY.add(value)
        return value

    def delete(self, name: str) -> None:
        """Forget a secret (nothing happens when there is none)."""
        if self._keyring is not None:
            try:
                self._keyring.delete_password(self.service, name)
            except keyring.errors.PasswordDeleteError:
                pass
            except keyring.errors.KeyringError as err:
                raise SecretStoreError(
                    f"The {self.backend_name} refused to delete the secret {name} "
                    f"({type(err).__name__}): unlock it and try again"
                ) from err

        with self._lock:
            if self._keyring is not None and not self.fallback_path.exists():
                return
            stored = self._read_file()
            if stored.pop(name, None) is not None:
                self._write_file(stored)

    def forget_integration(self, integration_id: str) -> None:
        """Delete every secret of an integration (see SECRET_FIELDS)."""
        for field in SECRET_FIELDS:
            self.delete(secret_name(integration_id, field))

    def _adopt_from_file(self, name: str) -> str | None:
        """Move a secret saved while no keyring worked into the keyring now."""
        with self._lock:
            if not self.fallback_path.exists():
                return None
            stored = self._read_file()
            value = stored.get(name)
            if value is None:
                return None
            try:
                assert self._keyring is not None
                self._keyring.set_password(self.service, name, value)
            except keyring.errors.KeyringError:
                return value
            del stored[name]
            self._write_file(stored)
        logger.info(
            "Moved the secret %s from %s to the keyring", name, self.fallback_path
        )
        return value

    def _read_file(self) -> dict[str, str]:
        """The fallback file's secrets ({} when there is no file)."""
        path = self.fallback_path
        try:
            with open(path, encoding="utf-8") as handle:
                if os.name == "posix" and os.fstat(handle.fileno()).st_mode & 0o077:
                    # Someone widened the mode: put it back before anyone else reads.
                    os.fchmod(handle.fileno(), 0o600)
                    logger.warning(
                        "%s was readable by others; made it owner-only", path
                    )
                data = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise SecretStoreError(
                f"The agent's secrets file at {path} cannot be read "
                f"({type(err).__name__}): delete it, then enter the passwords and keys "
                "again on the settings page"
            ) from err

        stored = data.get("secrets") if isinstance(data, dict) else None
        if not isinstance(stored, dict):
            raise SecretStoreError(
                f"The agent's secrets file at {path} is damaged: delete it, then enter "
                "the passwords and keys again on the settings page"
            )
        return {str(k): str(v) for k, v in stored.items()}

    def _write_file(self, stored: dict[str, str]) -> None:
        """Replace the fallback file atomically, owner-only from its first byte."""
        path = self.fallback_path
        temp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
        document = json.dumps(
            {"version": 1, "secrets": stored}, indent=1, sort_keys=True
        )
        try:
            ensure_private_dir(self.data_dir)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                if os.name == "posix":
                    # os.open's mode passes through the umask; make sure of 0600.
                    os.fchmod(handle.fileno(), 0o600)
                handle.write(document)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except OSError as err:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise SecretStoreError(
                f"The agent could not save its secrets file at {path} "
                f"({err.strerror or type(err).__name__}): check free space and that "
                "this user may write to the folder; nothing was saved"
            ) from err


def _working_keyring(service: str) -> tuple[KeyringBackend | None, str]:
    """The keyring backend if a test write works there, else None and why not."""
    backend = keyring.get_keyring()
    if isinstance(
        backend, (keyring.backends.fail.Keyring, keyring.backends.null.Keyring)
    ):
        return None, "no keyring is installed or reachable"

    probe = os.urandom(16).hex()
    try:
        backend.set_password(service, _PROBE_NAME, probe)
        works = backend.get_password(service, _PROBE_NAME) == probe
        backend.delete_password(service, _PROBE_NAME)
    except Exception as err:
        # Backends fail in their own ways (D-Bus errors, locked collections,
        # RuntimeError): any failure means "not usable here".
        return (
            None,
            f"the {_friendly_name(backend)} failed a test ({type(err).__name__})",
        )
    if not works:
        return None, f"the {_friendly_name(backend)} did not give back a test value"
    return backend, ""


def _friendly_name(backend: KeyringBackend) -> str:
    """How the page names a keyring backend."""
    module = type(backend).__module__
    if module in _BACKEND_NAMES:
        return _BACKEND_NAMES[module]
    return str(getattr(backend, "name", "") or type(backend).__name__)


def _warn_once(path: Path, reason: str) -> None:
    """Log, once per file, that secrets go to the fallback file."""
    with _warned_lock:
        if path in _warned_paths:
            return
        _warned_paths.add(path)
    logger.warning(
        "No usable keyring (%s): passwords and keys are kept in %s, readable by this "
        "user only",
        reason,
        path,
    )
