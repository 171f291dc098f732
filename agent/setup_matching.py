"""Setup decisions that need no I/O: name matching, free accounts, choices typed in.

The setup page offers a best guess of a Tigerpaw account for each server or company;
the guess is only shown, never saved, until a person picks it. These functions decide
what to offer and whether a choice keeps the one-to-one rule; they touch no network,
database or page, so they are tested on plain values.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agent.errors import SetupError

logger = logging.getLogger(__name__)

#: Words that say what kind of company it is, not which one.
LEGAL_WORDS = frozenset(
    {
        "inc",
        "incorporated",
        "llc",
        "llp",
        "ltd",
        "limited",
        "plc",
        "gmbh",
        "ag",
        "sa",
        "sarl",
        "bv",
        "nv",
        "co",
        "corp",
        "corporation",
        "company",
        "the",
        "and",
        "pty",
        "pc",
    }
)
#: A guess below this similarity is not offered.
MIN_SCORE = 0.75
#: A word found in more accounts than this share says little about which one it is.
COMMON_WORD_SHARE = 0.2
#: How many candidate accounts one name is compared with, at most.
MAX_CANDIDATES = 40
#: How many of those are compared letter by letter.
LETTER_CHECKS = 2

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER_IN_BRACKETS = re.compile(r"\((\d+)\)\s*$")


@dataclass(frozen=True)
class Candidate:
    """Something with a number and a name: a Tigerpaw account as the page lists it."""

    number: int
    name: str


def name_words(name: str) -> tuple[str, ...]:
    """The words of a name that tell companies apart, in lower case."""
    words = _WORD.findall(name.casefold().replace("'", "").replace("&", " and "))
    kept = tuple(word for word in words if word not in LEGAL_WORDS)
    return kept or tuple(words)


def similarity(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """How alike two names are, from 0 to 1, by their words and their letters.

    Names whose numbers differ ("Contoso 2" and "Contoso 3") are different
    companies, however alike the rest.
    """
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    if {w for w in a if w.isdigit()} != {w for w in b if w.isdigit()}:
        return 0.0
    letters = difflib.SequenceMatcher(None, " ".join(a), " ".join(b)).ratio()
    return max(letters, (word_overlap(a, b) + letters) / 2)


def word_overlap(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """The share of words two names have in common (0 to 1), a cheap first look."""
    first, second = set(a), set(b)
    return len(first & second) / len(first | second) if first or second else 0.0


def suggest_accounts(
    names: Mapping[int, str], accounts: Sequence[Candidate]
) -> dict[int, Candidate]:
    """A best guess of an account for each named item (key -> account), one-to-one.

    Equal names (ignoring case, punctuation and words like Inc or Ltd) come first;
    then the most alike pairs above :data:`MIN_SCORE`. Each account is offered to one
    item at most, and an item without a good enough match gets none.
    """
    words = {number: name_words(a.name) for number, a in _by_number(accounts).items()}
    by_words: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for number, key in words.items():
        by_words[key].append(number)
    index = _word_index(words)
    common = max(2, int(len(words) * COMMON_WORD_SHARE))

    scored: list[tuple[float, int, int]] = []
    for item, name in names.items():
        wanted = name_words(name)
        exact = by_words.get(wanted)
        if exact:
            scored.extend((2.0, item, number) for number in exact)
            continue
        # Letters are compared for the few names sharing most words, as that is
        # the slow part: a thousand names stay well under the page's time budget.
        nearest = sorted(
            _candidates(wanted, index, common),
            key=lambda n: -word_overlap(wanted, words[n]),
        )[:LETTER_CHECKS]
        for number in nearest:
            score = similarity(wanted, words[number])
            if score >= MIN_SCORE:
                scored.append((score, item, number))

    chosen: dict[int, Candidate] = {}
    used: set[int] = set()
    accounts_by_number = _by_number(accounts)
    for _score, item, number in sorted(scored, key=lambda s: (-s[0], s[1], s[2])):
        if item in chosen or number in used:
            continue
        chosen[item] = accounts_by_number[number]
        used.add(number)
    return chosen


def _by_number(accounts: Iterable[Candidate]) -> dict[int, Candidate]:
    """Accounts keyed by number."""
    return {account.number: account for account in accounts}


def _word_index(words: Mapping[int, tuple[str, ...]]) -> dict[str, set[int]]:
    """Each word to the accounts whose names hold it."""
    index: dict[str, set[int]] = defaultdict(set)
    for number, name in words.items():
        for word in name:
            index[word].add(number)
    return index


def _candidates(
    wanted: tuple[str, ...], index: Mapping[str, set[int]], common: int
) -> list[int]:
    """Accounts sharing a telling word with ``wanted`` (rare words first)."""
    found: list[int] = []
    seen: set[int] = set()
    for word in sorted(set(wanted), key=lambda w: len(index.get(w, ()))):
        holders = index.get(word, set())
        if not holders or len(holders) > common:
            continue
        for number in sorted(holders):
            if number not in seen:
                seen.add(number)
                found.append(number)
        if len(found) >= MAX_CANDIDATES:
            break
    return found[:MAX_CANDIDATES]


def free_accounts(
    accounts: Iterable[Candidate],
    mapped: Mapping[int, int],
    own_tenants: Iterable[int] = (),
) -> list[Candidate]:
    """Accounts no tenant holds, plus those held by ``own_tenants`` (being re-mapped).

    ``mapped`` is every mapped account number with its tenant id, as the store says.
    """
    own = set(own_tenants)
    return [
        account
        for account in accounts
        if account.number not in mapped or mapped[account.number] in own
    ]


def check_capacity(wanted: int, free: int, label: str) -> None:
    """SetupError when more tenants would wait for an account than accounts are free.

    ``label`` is "virtual server" or "company".
    """
    if wanted <= free:
        return
    plural = "companies" if label == "company" else f"{label}s"
    raise SetupError(
        f"You chose {wanted} {plural if wanted != 1 else label}, but only {free} "
        f"Tigerpaw account{'s are' if free != 1 else ' is'} free to map them to "
        f"(each account takes one {label}): add the missing accounts in Tigerpaw, "
        f"or choose fewer {plural}",
        field="tenants",
    )


def account_from_text(text: str, accounts: Sequence[Candidate]) -> Candidate | None:
    """The account a typed choice names: "Name (number)", a number, or a name.

    None for blank text; SetupError when the text names no account or several.
    """
    text = " ".join(text.split())
    if not text:
        return None
    by_number = _by_number(accounts)

    match = _NUMBER_IN_BRACKETS.search(text)
    number_text = match.group(1) if match else text if text.isdigit() else None
    if number_text is not None and int(number_text) in by_number:
        return by_number[int(number_text)]

    wanted = text.casefold()
    named = [a for a in accounts if a.name.casefold() == wanted]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise SetupError(
            f"Several Tigerpaw accounts are called {text}: pick one from the list "
            "(it adds the account number)",
            field="account",
        )
    raise SetupError(
        f"No Tigerpaw account is called {text}: pick one from the list",
        field="account",
    )


def account_label(number: int, name: str) -> str:
    """How the page writes an account in its choice box: "Name (number)"."""
    return f"{name} ({number})"
