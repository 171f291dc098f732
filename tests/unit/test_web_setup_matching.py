"""Best guesses, free accounts and typed account choices: decisions without I/O."""

from __future__ import annotations

import pytest

from agent.errors import SetupError
from agent.setup_matching import (
    Candidate,
    account_from_text,
    check_capacity,
    free_accounts,
    name_words,
    suggest_accounts,
)

ACCOUNTS = [
    Candidate(1001, "Contoso Dental"),
    Candidate(1002, "Northwind Traders, Inc."),
    Candidate(1003, "Fabrikam Legal 2"),
    Candidate(1004, "Fabrikam Legal 3"),
    Candidate(1005, "Woodgrove Bank"),
]


def test_names_ignore_case_punctuation_and_legal_words() -> None:
    assert name_words("Northwind Traders, Inc.") == ("northwind", "traders")
    assert name_words("THE Contoso-Dental LLC") == ("contoso", "dental")


def test_equal_names_are_guessed_first() -> None:
    found = suggest_accounts(
        {1: "northwind traders ltd", 2: "Contoso Dental"}, ACCOUNTS
    )
    assert found == {1: ACCOUNTS[1], 2: ACCOUNTS[0]}


def test_a_typo_still_finds_the_account() -> None:
    assert suggest_accounts({7: "Contosso Dental"}, ACCOUNTS) == {7: ACCOUNTS[0]}


def test_different_numbers_are_different_companies() -> None:
    found = suggest_accounts({1: "Fabrikam Legal 4"}, ACCOUNTS)
    assert found == {}
    assert suggest_accounts({1: "Fabrikam Legal 3"}, ACCOUNTS) == {1: ACCOUNTS[3]}


def test_no_guess_without_a_good_match() -> None:
    assert suggest_accounts({1: "Tailspin Toys"}, ACCOUNTS) == {}


def test_one_account_is_offered_once() -> None:
    found = suggest_accounts({1: "Contoso Dental", 2: "Contoso Dental."}, ACCOUNTS)
    assert list(found.values()) == [ACCOUNTS[0]]


def test_free_accounts_keep_the_integrations_own() -> None:
    mapped = {1001: 10, 1002: 20}
    free = free_accounts(ACCOUNTS, mapped, own_tenants=[20])
    assert [a.number for a in free] == [1002, 1003, 1004, 1005]


def test_more_tenants_than_accounts_is_refused_in_words() -> None:
    check_capacity(3, 3, "company")
    with pytest.raises(SetupError) as caught:
        check_capacity(5, 2, "virtual server")
    message = str(caught.value)
    assert (
        "You chose 5 virtual servers, but only 2 Tigerpaw accounts are free" in message
    )
    assert caught.value.field == "tenants"
    with pytest.raises(SetupError, match="only 1 Tigerpaw account is free"):
        check_capacity(2, 1, "company")


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Contoso Dental (1001)", 1001),
        ("1005", 1005),
        ("woodgrove bank", 1005),
        ("  Fabrikam   Legal 2 ", 1003),
    ],
)
def test_typed_account_choices(text: str, number: int) -> None:
    found = account_from_text(text, ACCOUNTS)
    assert found is not None and found.number == number


def test_blank_and_unknown_account_choices() -> None:
    assert account_from_text("  ", ACCOUNTS) is None
    with pytest.raises(SetupError, match="No Tigerpaw account is called Nobody"):
        account_from_text("Nobody", ACCOUNTS)
    twins = [Candidate(1, "Same"), Candidate(2, "Same")]
    with pytest.raises(SetupError, match="Several Tigerpaw accounts"):
        account_from_text("Same", twins)
    assert account_from_text("Same (2)", twins) == twins[1]
