"""Helpers for the Tigerpaw client's contract tests: the emulator and a client on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import requests

from agent.errors import AgentError, RemoteError
from agent.sandbox.seed import tigerpaw_account_names
from agent.sandbox.tigerpaw import TigerpawEmulator
from agent.tigerpaw.client import TigerpawClient

NAMES = tigerpaw_account_names(5)


def emulator_fixture(seed: int) -> Any:
    """A module-scoped ``tigerpaw`` fixture: one emulator holding ``seed``'s data.

    Assign it to ``tigerpaw`` in the test module (each module has a seed of its own).
    """

    @pytest.fixture(scope="module")
    def tigerpaw() -> Iterator[TigerpawEmulator]:
        """One emulator for the module."""
        emulator = TigerpawEmulator(NAMES, seed=seed).start()
        yield emulator
        emulator.stop()

    return tigerpaw


def client_fixture() -> Any:
    """A ``client`` fixture: a client on the module's ``tigerpaw``, without faults.

    Assign it to ``client`` in the test module.
    """

    @pytest.fixture
    def client(tigerpaw: TigerpawEmulator) -> Iterator[TigerpawClient]:
        """A client with the main credentials."""
        reset_faults(tigerpaw)
        made = make_client(tigerpaw)
        yield made
        made.close()

    return client


def make_client(
    emulator: TigerpawEmulator,
    *,
    sleeps: list[float] | None = None,
    **overrides: Any,
) -> TigerpawClient:
    """A client with the emulator's main credentials; sleeps are recorded."""
    described = emulator.describe()
    settings: dict[str, Any] = {
        "api_url": described["url"],
        "soap_user": described["soap_user"],
        "soap_password": described["soap_password"],
        "public_key": described["public_key"],
        "private_key": described["private_key"],
        "timeout": (2.0, 5.0),
        "sleep": (sleeps if sleeps is not None else []).append,
    }
    settings.update(overrides)
    return TigerpawClient(
        settings.pop("api_url"),
        settings.pop("soap_user"),
        settings.pop("soap_password"),
        settings.pop("public_key"),
        settings.pop("private_key"),
        **settings,
    )


def secrets_of(emulator: TigerpawEmulator) -> list[str]:
    """Every password and private key the emulator hands out."""
    described = emulator.describe()
    found = [described["soap_password"], described["private_key"]]
    for user in described["test_users"].values():
        found += [str(user.get("soap_password") or ""), str(user.get("private_key"))]
    return [s for s in found if s and s != "None"]


def post_events(emulator: TigerpawEmulator, payload: dict[str, Any]) -> None:
    """Play a person at the Tigerpaw desk (lock, close, cross-reference)."""
    reply = requests.post(f"{emulator.url}/_sandbox/events", json=payload, timeout=5)
    reply.raise_for_status()


def state(emulator: TigerpawEmulator) -> dict[str, Any]:
    """The emulator's ``/_sandbox/state``."""
    return requests.get(f"{emulator.url}/_sandbox/state", timeout=5).json()


def reset_faults(emulator: TigerpawEmulator) -> None:
    """No injected faults, and release any hanging request."""
    requests.post(f"{emulator.url}/_sandbox/faults", json={"reset": True}, timeout=5)


def check_error(
    error: AgentError,
    kind: type[RemoteError],
    field: str | None,
    *phrases: str,
    secrets: Sequence[str] = (),
) -> None:
    """The error is exactly ``kind`` for Tigerpaw, names ``field`` and the phrases."""
    assert type(error) is kind, f"{type(error).__name__}: {error}"
    assert isinstance(error, RemoteError)
    assert error.system == "Tigerpaw"
    assert error.field == field
    text = str(error)
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in {text!r}"
    for secret in secrets:
        assert secret not in text
