"""Tests of the secret store: keyring, owner-only fallback file, log redaction."""

from __future__ import annotations

import json
import logging
import os
import stat
import sys

import keyring
import keyring.backends.fail
import keyring.errors
import pytest
from jaraco.classes import properties
from keyring.backend import KeyringBackend

from agent.errors import SecretStoreError
from agent.secrets import (
    FALLBACK_BACKEND_NAME,
    MASK,
    RedactingFilter,
    SecretRegistry,
    SecretStore,
    register_secret,
    secret_name,
)
from agent.store import IntegrationSettings, Store


class MemoryKeyring(KeyringBackend):
    """A keyring held in a dict, standing in for the OS keyring."""

    @properties.classproperty
    def priority(cls) -> float:
        """Never viable: keyring must not pick this class as a default backend."""
        raise RuntimeError("a test backend, installed by hand only")

    def __init__(self) -> None:
        """Start empty."""
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        """The stored value or None."""
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        """Store a value."""
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        """Delete a value, as keyring does: an error when there is none."""
        if self.items.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


class LockedKeyring(MemoryKeyring):
    """A keyring that refuses every write, like a locked collection."""

    def set_password(self, service: str, username: str, password: str) -> None:
        """Refuse."""
        raise keyring.errors.PasswordSetError("locked")


@pytest.fixture
def use_keyring():
    """Install a keyring backend for one test and restore the previous one."""
    previous = keyring.get_keyring()

    def install(backend: KeyringBackend) -> KeyringBackend:
        """Make ``backend`` keyring's current backend."""
        keyring.set_keyring(backend)
        return backend

    yield install
    keyring.set_keyring(previous)


def test_without_a_keyring_secrets_go_to_an_owner_only_file(tmp_path, use_keyring):
    """The fail backend sends secrets to secrets.json, mode 0600, holding the value."""
    use_keyring(keyring.backends.fail.Keyring())
    store = SecretStore(tmp_path / "data")

    store.set("integration/1/tigerpaw_soap_password", "s0ap-pass!")

    assert store.is_fallback
    assert store.backend_name == FALLBACK_BACKEND_NAME
    assert store.get("integration/1/tigerpaw_soap_password") == "s0ap-pass!"
    stored = json.loads(store.fallback_path.read_text(encoding="utf-8"))
    assert stored["secrets"] == {"integration/1/tigerpaw_soap_password": "s0ap-pass!"}
    if os.name == "posix":
        assert stat.S_IMODE(store.fallback_path.stat().st_mode) == 0o600
    leftovers = [p.name for p in store.fallback_path.parent.iterdir()]
    assert leftovers == ["secrets.json"]


def test_the_fallback_file_survives_a_new_store_and_deletes(tmp_path, use_keyring):
    """A second SecretStore reads what the first wrote; delete removes one name."""
    use_keyring(keyring.backends.fail.Keyring())
    SecretStore(tmp_path).set(secret_name("abc", "kbh_password"), "kbh-pass-1")
    SecretStore(tmp_path).set(secret_name("abc", "proxy_password"), "proxy-pass-1")

    again = SecretStore(tmp_path)
    again.delete(secret_name("abc", "kbh_password"))
    again.delete("never/saved")

    assert again.get(secret_name("abc", "kbh_password")) is None
    assert again.get(secret_name("abc", "proxy_password")) == "proxy-pass-1"
    again.forget_integration("abc")
    assert again.get(secret_name("abc", "proxy_password")) is None


def test_a_widened_fallback_file_is_made_owner_only_again(tmp_path, use_keyring):
    """Reading a file someone made world-readable puts 0600 back."""
    if os.name != "posix":
        pytest.skip("file modes are POSIX only")
    use_keyring(keyring.backends.fail.Keyring())
    store = SecretStore(tmp_path)
    store.set("x", "value-x1")
    store.fallback_path.chmod(0o644)

    assert store.get("x") == "value-x1"
    assert stat.S_IMODE(store.fallback_path.stat().st_mode) == 0o600


def test_a_damaged_fallback_file_says_what_to_do(tmp_path, use_keyring):
    """Broken JSON gives a SecretStoreError without any file content in it."""
    use_keyring(keyring.backends.fail.Keyring())
    store = SecretStore(tmp_path)
    store.fallback_path.write_text('{"secrets": {"x": "half-writ', encoding="utf-8")

    with pytest.raises(SecretStoreError) as caught:
        store.get("x")

    assert "delete it" in str(caught.value)
    assert "half-writ" not in str(caught.value)


def test_a_working_keyring_is_used(tmp_path, use_keyring):
    """With a keyring, secrets live there and no file is written."""
    backend = use_keyring(MemoryKeyring())
    store = SecretStore(tmp_path, service="TestService")

    store.set("integration/2/tigerpaw_private_key", "8e7c-private")

    assert not store.is_fallback
    assert store.backend_name == "test secrets MemoryKeyring"
    assert backend.items == {
        ("TestService", "integration/2/tigerpaw_private_key"): "8e7c-private"
    }
    assert store.get("integration/2/tigerpaw_private_key") == "8e7c-private"
    assert not store.fallback_path.exists()
    store.delete("integration/2/tigerpaw_private_key")
    store.delete("integration/2/tigerpaw_private_key")
    assert backend.items == {}


def test_a_keyring_that_fails_its_test_write_means_fallback(
    tmp_path, use_keyring, caplog
):
    """A locked keyring is detected at start; the log warns once per file."""
    use_keyring(LockedKeyring())

    with caplog.at_level(logging.WARNING, logger="agent.secrets"):
        first = SecretStore(tmp_path)
        SecretStore(tmp_path)
    first.set("n", "value-n1")

    assert first.is_fallback
    warnings = [r for r in caplog.records if "No usable keyring" in r.getMessage()]
    assert len(warnings) == 1
    assert "PasswordSetError" in warnings[0].getMessage()
    assert first.get("n") == "value-n1"


def test_secrets_saved_without_a_keyring_move_into_one(tmp_path, use_keyring):
    """A secret left in the file moves to the keyring once one works."""
    use_keyring(keyring.backends.fail.Keyring())
    SecretStore(tmp_path).set("moved", "moving-value")
    backend = use_keyring(MemoryKeyring())

    store = SecretStore(tmp_path)

    assert store.get("moved") == "moving-value"
    assert backend.items == {("TigerpawIntegrationAgent", "moved"): "moving-value"}
    saved = json.loads(store.fallback_path.read_text(encoding="utf-8"))
    assert saved["secrets"] == {}


def test_the_filter_masks_secrets_in_message_args_and_tracebacks():
    """Values registered in the registry vanish from the formatted record."""
    registry = SecretRegistry()
    registry.add("Pa55word-XYZ")
    registry.add("ab")  # too short to mask
    log_filter = RedactingFilter(registry)
    record = logging.LogRecord(
        "agent.test",
        logging.INFO,
        __file__,
        1,
        "login with Pa55word-XYZ as %s, token %r",
        ("admin", {"password": "Pa55word-XYZ"}),
        None,
    )

    assert log_filter.filter(record) is True

    message = record.getMessage()
    assert "Pa55word-XYZ" not in message
    assert message == f"login with {MASK} as admin, token {{'password': '{MASK}'}}"
    try:
        raise RuntimeError("server said Pa55word-XYZ is wrong")
    except RuntimeError:
        failure = logging.LogRecord(
            "agent.test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    log_filter.filter(failure)
    formatted = logging.Formatter().format(failure)
    assert "Pa55word-XYZ" not in formatted
    assert "server said ******** is wrong" in formatted


def test_values_set_and_read_are_masked_by_the_default_filter(
    tmp_path, use_keyring, caplog
):
    """SecretStore registers values; a handler with the filter never shows them."""
    use_keyring(MemoryKeyring())
    store = SecretStore(tmp_path)
    store.set("a", "first-secret-value")
    keyring.get_keyring().set_password(store.service, "b", "second-secret-value")
    store.get("b")
    register_secret("typed-in-a-form")
    caplog.handler.addFilter(RedactingFilter())

    try:
        logging.getLogger("agent.child").warning(
            "saw %s and %s and typed-in-a-form",
            "first-secret-value",
            "second-secret-value",
        )
    finally:
        caplog.handler.filters.clear()

    assert caplog.records[-1].getMessage() == f"saw {MASK} and {MASK} and {MASK}"


def test_the_database_holds_no_secret(tmp_path, use_keyring):
    """After saving an integration and its secrets, agent.db has none of them."""
    use_keyring(keyring.backends.fail.Keyring())
    secrets = {
        "tigerpaw_soap_password": "SoapPassword-9f31",
        "tigerpaw_private_key": "0b6c6f2e-9d1a-4bb3-8a55-private",
        "ksc_password": "KscPassword-77aa",
        "proxy_password": "ProxyPassword-1c2d",
    }
    secret_store = SecretStore(tmp_path)
    with Store.open_in(tmp_path) as store:
        integration = store.create_integration(
            IntegrationSettings(
                source="ksc",
                ksc_address="ksc.example.test",
                ksc_user="svc",
                proxy_address="http://127.0.0.1:3128",
                proxy_user="proxy",
                tigerpaw_url="https://tigerpaw.example.test",
                tigerpaw_soap_user="soap",
                tigerpaw_public_key="0b6c6f2e-public",
            )
        )
        for field, value in secrets.items():
            secret_store.set(secret_name(integration.id, field), value)
        stored_files = list(tmp_path.glob("agent.db*"))

        found = b"".join(path.read_bytes() for path in stored_files)

    assert any(path.name == "agent.db" for path in stored_files)
    assert integration.id.encode() in found
    for value in secrets.values():
        assert value.encode() not in found
        assert value in secret_store.fallback_path.read_text(encoding="utf-8")
