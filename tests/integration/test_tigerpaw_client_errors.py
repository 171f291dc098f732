"""Contract tests of the Tigerpaw client's refusals: keys, rights, users, records.

Each error is checked for its exact class, the setup field or right it names, and
a message that says what to do without quoting a secret.
"""

from __future__ import annotations

import time

import pytest

from agent.errors import (
    AccountInactive,
    AuthError,
    NotCrossReferenced,
    PermissionDenied,
    RecordLocked,
    RecordNotFound,
    RequestRejected,
    SetupError,
    WrongCredentials,
)
from agent.sandbox.tigerpaw import TigerpawEmulator
from agent.tigerpaw.client import TigerpawClient
from tests.integration.tigerpaw_support import (
    NAMES,
    check_error,
    client_fixture,
    emulator_fixture,
    make_client,
    post_events,
    secrets_of,
    state,
)

LIST_RIGHT = "Allow user to list accounts via API"


tigerpaw = emulator_fixture(seed=12)
client = client_fixture()


@pytest.fixture
def secrets(tigerpaw: TigerpawEmulator) -> list[str]:
    """What no message may contain."""
    return secrets_of(tigerpaw)


def rest_user(tigerpaw: TigerpawEmulator, name: str) -> dict[str, str]:
    """The REST keys of a test user."""
    user = tigerpaw.describe()["test_users"][name]
    return {"public_key": user["public_key"], "private_key": user["private_key"]}


def soap_user(tigerpaw: TigerpawEmulator, name: str) -> dict[str, str]:
    """The tsiWS user name and password of a test user."""
    user = tigerpaw.describe()["test_users"][name]
    return {"soap_user": user["soap_user"], "soap_password": user["soap_password"]}


def agreement_of(tigerpaw: TigerpawEmulator, account: int) -> int:
    """The first running agreement of an account."""
    return next(
        g["number"]
        for g in state(tigerpaw)["agreements"]
        if g["account"] == account and g["active"]
    )


# REST keys.


def test_unknown_public_key_is_wrong_credentials(tigerpaw, secrets) -> None:
    bad = make_client(tigerpaw, public_key="00000000-0000-4000-8000-000000000000")

    with pytest.raises(WrongCredentials) as caught:
        bad.check()

    check_error(
        caught.value,
        WrongCredentials,
        "public_key",
        "Tigerpaw refused the REST keys",
        "Master Tables > Account Reps > Admin",
        secrets=secrets,
    )


def test_wrong_private_key_names_the_private_key(tigerpaw, secrets) -> None:
    bad = make_client(tigerpaw, private_key="11111111-1111-4111-8111-111111111111")

    with pytest.raises(WrongCredentials) as caught:
        bad.get_account(1001)

    check_error(
        caught.value,
        WrongCredentials,
        "private_key",
        "private key",
        "Master Tables > Account Reps > Admin",
        secrets=secrets,
    )


@pytest.mark.parametrize(
    ("credentials", "user", "field", "words"),
    [
        pytest.param(
            rest_user,
            "rest_inactive_rep",
            "public_key",
            ["Former Employee", "inactive"],
            id="keys_of_an_inactive_rep",
        ),
        pytest.param(
            soap_user,
            "soap_inactive",
            "soap_user",
            ["kaspersky-disabled", "tick Active", "tsiWS Users.exe"],
            id="inactive_soap_user",
        ),
    ],
)
def test_an_inactive_user_is_named(
    tigerpaw, secrets, credentials, user: str, field: str, words: list[str]
) -> None:
    inactive = make_client(tigerpaw, **credentials(tigerpaw, user))

    with pytest.raises(AccountInactive) as caught:
        inactive.check()

    check_error(caught.value, AccountInactive, field, *words, secrets=secrets)


def test_a_wrong_clock_is_named(tigerpaw, secrets) -> None:
    late = make_client(tigerpaw, clock=lambda: time.time() - 900)

    with pytest.raises(AuthError) as caught:
        late.check()

    check_error(caught.value, AuthError, None, "clock", "date, time", secrets=secrets)
    assert "15 minutes" in str(caught.value)


def test_an_unusable_address_is_a_setup_error() -> None:
    with pytest.raises(SetupError) as caught:
        TigerpawClient("tigerpaw.example.com", "u", "p", "k", "s")
    assert caught.value.field == "api_url"


# Rights of the rep's role.


def test_missing_create_right_is_named(tigerpaw, secrets) -> None:
    limited = make_client(
        tigerpaw, **rest_user(tigerpaw, "rest_no_service_order_create")
    )

    with pytest.raises(PermissionDenied) as caught:
        limited.create_service_order(1001, "Should not open")

    check_error(
        caught.value,
        PermissionDenied,
        "public_key",
        "'Service orders: create'",
        "Security Roles",
        secrets=secrets,
    )
    assert caught.value.right == "Service orders: create"
    assert limited.check_rights() == ["Service orders: create"]


def test_check_names_the_missing_right(tigerpaw) -> None:
    limited = make_client(
        tigerpaw, **rest_user(tigerpaw, "rest_no_service_order_create")
    )

    with pytest.raises(PermissionDenied) as caught:
        limited.check()

    check_error(caught.value, PermissionDenied, "public_key", "Service orders: create")
    assert caught.value.right == "Service orders: create"


def test_check_rights_lists_every_write_right_of_a_read_only_rep(tigerpaw) -> None:
    reader = make_client(tigerpaw, **rest_user(tigerpaw, "rest_read_only"))
    orders_before = len(state(tigerpaw)["service_orders"])

    missing = reader.check_rights()

    assert missing == [
        "Accounts: update",
        "Service orders: create",
        "Service orders: update",
        "Custom folders and fields: create",
    ]
    # The probes change nothing, with or without the rights.
    make_client(tigerpaw).check_rights()
    assert len(state(tigerpaw)["service_orders"]) == orders_before


# tsiWS users.


def test_wrong_soap_password(tigerpaw, secrets) -> None:
    bad = make_client(tigerpaw, soap_password="not-the-password")

    with pytest.raises(WrongCredentials) as caught:
        bad.list_accounts()

    check_error(
        caught.value,
        WrongCredentials,
        "soap_password",
        "SOAP user name or password",
        "tsiWS Users.exe",
        secrets=[*secrets, "not-the-password"],
    )


def test_soap_user_without_the_list_right(tigerpaw, secrets) -> None:
    no_list = make_client(tigerpaw, **soap_user(tigerpaw, "soap_no_list_right"))

    with pytest.raises(PermissionDenied) as caught:
        no_list.check()

    check_error(
        caught.value,
        PermissionDenied,
        "soap_user",
        f"'{LIST_RIGHT}'",
        "tsiWS Users.exe",
        secrets=secrets,
    )
    assert caught.value.right == LIST_RIGHT
    # Billing does not need the list right.
    change = no_list.set_charge_quantity(agreement_of(tigerpaw, 1002), "KL-KSWS", 2)
    assert change.after == 2


def test_an_account_not_cross_referenced(tigerpaw, client, secrets) -> None:
    last = 1000 + len(NAMES)
    agreement = agreement_of(tigerpaw, last)

    with pytest.raises(NotCrossReferenced) as caught:
        client.set_charge_quantity(agreement, "KL-KESB-WS", 5)

    check_error(
        caught.value,
        NotCrossReferenced,
        "account",
        f"account {last}",
        NAMES[-1],
        "Assign External Products to an Account",
        "Master Tables > Account > External Products",
        secrets=secrets,
    )
    assert caught.value.account == last

    post_events(tigerpaw, {"cross_reference": [last]})
    assert client.set_charge_quantity(agreement, "KL-KESB-WS", 5).after == 5
    post_events(tigerpaw, {"remove_cross_reference": [last]})


# Records.


def test_agreements_that_do_not_exist_or_ended(tigerpaw, client) -> None:
    with pytest.raises(RecordNotFound) as caught:
        client.set_charge_quantity(4999, "KL-KESB-WS", 1)
    check_error(caught.value, RecordNotFound, None, "Agreement 4999")

    ended = next(g["number"] for g in state(tigerpaw)["agreements"] if not g["active"])
    client.agreement_charges(ended)
    with pytest.raises(RequestRejected) as refused:
        client.set_charge_quantity(ended, "KL-KESB-WS", 1)
    check_error(refused.value, RequestRejected, "agreement", f"Agreement {ended} ended")


def test_an_inactive_price_book_item_changes_nothing(tigerpaw, client) -> None:
    agreement = agreement_of(tigerpaw, 1003)

    with pytest.raises(RequestRejected) as caught:
        client.set_charge_quantity(agreement, "KL-KAV-OLD", 4)

    assert "KL-KAV-OLD" in str(caught.value) and "inactive" in str(caught.value)
    assert caught.value.field == "agreement"
    assert "KL-KAV-OLD" not in [c.item_id for c in client.agreement_charges(agreement)]


def test_a_missing_service_order(client) -> None:
    with pytest.raises(RecordNotFound) as caught:
        client.get_service_order(99999)
    check_error(caught.value, RecordNotFound, None, "Service order 99999")
    assert caught.value.status == 404


def test_a_value_tigerpaw_does_not_have(client) -> None:
    with pytest.raises(RequestRejected) as caught:
        client.create_service_order(1001, "Bad status", status="Nonsense")

    check_error(caught.value, RequestRejected, None, "Status 'Nonsense'")
    assert caught.value.status == 400


def test_a_locked_order_is_transient(tigerpaw, client) -> None:
    number = client.create_service_order(1004, "Held open by a person")
    post_events(tigerpaw, {"lock": [number]})

    with pytest.raises(RecordLocked) as caught:
        client.update_service_order(number, status="Closed")
    with pytest.raises(RecordLocked):
        client.add_service_order_note(number, "Still seen")
    order = client.get_service_order(number)

    check_error(caught.value, RecordLocked, None, f"Service order {number}", "Pat")
    assert caught.value.transient
    assert order.is_locked and order.locked_by_name == "Pat Dispatcher"
    post_events(tigerpaw, {"unlock": [number]})
    assert client.update_service_order(number, status="Closed").status == "Closed"
