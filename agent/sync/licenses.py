"""License usage to agreement charges: who counts, under which price book item.

The counting rules, applied afresh at every run:

- Only devices on a billable license count: commercial, active and not expired
  (:meth:`LicenseUsage.billable`). Trial, expired, suspended and cancelled keys count
  nothing.
- Devices are counted by their stable id, once per application: a device that shows
  under two keys of the same application (a re-imaged machine, a key swap) counts once.
- Only devices the console still lists count, so a removed device drops out.
- Office 365 protection counts protected mailboxes, not devices.
- "Bill devices by category" splits an application's devices into workstations,
  servers and other devices, each with its own price book item when one is chosen;
  without one, the application's own item takes them.

Nothing here does I/O: the cycle reads the console and Tigerpaw and hands the records
in, and the page's preview shows the same :class:`PlannedCharge` lines.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from agent.sources.records import MOBILE, OTHER, SERVER, WORKSTATION, LicenseUsage
from agent.store.choices import SyncChoices
from agent.tigerpaw.models import AdditionalCharge

logger = logging.getLogger(__name__)

#: Billing categories: "bill devices by category" splits devices into these.
WORKSTATIONS, SERVERS, OTHER_DEVICES, MAILBOXES = (
    "workstation",
    "server",
    "other",
    "mailbox",
)
CATEGORIES = (WORKSTATIONS, SERVERS, OTHER_DEVICES, MAILBOXES)
CATEGORY_LABELS = {
    WORKSTATIONS: "workstations",
    SERVERS: "servers",
    OTHER_DEVICES: "other devices",
    MAILBOXES: "mailboxes",
}
#: A source's device kind to its billing category.
DEVICE_CATEGORY = {
    WORKSTATION: WORKSTATIONS,
    SERVER: SERVERS,
    MOBILE: OTHER_DEVICES,
    OTHER: OTHER_DEVICES,
}


def category_of(kind: str) -> str:
    """The billing category of a device kind (unknown kinds are other devices)."""
    return DEVICE_CATEGORY.get(kind, OTHER_DEVICES)


def item_choice_key(product: str, category: str | None = None) -> str:
    """How SyncChoices.price_book_items names an application, or one of its
    categories ("<application>/<category>")."""
    return product if category is None else f"{product}/{category}"


@dataclass(frozen=True)
class UsageCounts:
    """What one tenant uses: devices per (application, category), and what was left out.

    ``counts`` maps (application, category) to a number of devices (or mailboxes);
    ``excluded`` maps an application to the devices seen only on keys that do not
    count (trial, expired, suspended, cancelled); ``gone`` is how many device ids
    the licenses named that the console no longer lists.
    """

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    gone: int = 0


class LicenseCounter:
    """Counts the devices on billable licenses, by stable device id (see module)."""

    def __init__(self, now: dt.datetime) -> None:
        """Count as of ``now`` (an aware time): keys that ended before do not count."""
        self.now = now

    def count(
        self, usages: Iterable[LicenseUsage], device_kinds: Mapping[str, str]
    ) -> UsageCounts:
        """Count ``usages`` against the devices the console lists (id to kind)."""
        billed: dict[tuple[str, str], set[str]] = {}
        unbilled: dict[str, set[str]] = {}
        mailboxes: dict[str, int] = {}
        gone: set[str] = set()

        for usage in usages:
            product = usage.product.strip()
            if not product:
                continue
            billable = usage.billable(self.now)
            if billable and usage.mailboxes:
                mailboxes[product] = mailboxes.get(product, 0) + usage.mailboxes
            for device_id in usage.device_ids:
                kind = device_kinds.get(device_id)
                if kind is None:
                    gone.add(device_id)
                elif billable:
                    key = (product, category_of(kind))
                    billed.setdefault(key, set()).add(device_id)
                else:
                    unbilled.setdefault(product, set()).add(device_id)

        counts = {key: len(ids) for key, ids in billed.items()}
        for product, number in mailboxes.items():
            counts[(product, MAILBOXES)] = number
        # A device on a trial key and a commercial one is billed, not excluded.
        counted = {(p, d) for (p, _), ids in billed.items() for d in ids}
        excluded = {
            product: len({d for d in ids if (product, d) not in counted})
            for product, ids in unbilled.items()
        }
        return UsageCounts(
            counts=counts,
            excluded={p: n for p, n in excluded.items() if n},
            gone=len(gone),
        )


@dataclass(frozen=True)
class ChargeTarget:
    """The quantity one price book item should have on the agreement, and why."""

    item_id: str
    quantity: int
    #: (application, category, count) summed into this item.
    parts: tuple[tuple[str, str, int], ...] = ()
    #: The choices that name this item ("<application>" or "<application>/<category>").
    chosen_for: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """What the item stands for, as the log and the page say it."""
        if not self.parts:
            return " + ".join(choice_label(name) for name in self.chosen_for) or (
                self.item_id
            )
        products = sorted({product for product, _, _ in self.parts})
        categories = sorted({category for _, category, _ in self.parts})
        text = " + ".join(products)
        if len(categories) == 1:
            text += f" ({CATEGORY_LABELS.get(categories[0], categories[0])})"
        return text

    @property
    def rule(self) -> str:
        """The counting rule behind the quantity, for the page's preview."""
        if not self.parts:
            return "nothing in use: the quantity goes to 0"
        devices = [part for part in self.parts if part[1] != MAILBOXES]
        mailboxes = [part for part in self.parts if part[1] == MAILBOXES]
        rules = []
        if devices:
            rules.append(
                _counted(devices)
                + " on active commercial licenses, counted once per device id"
            )
        if mailboxes:
            rules.append(
                _counted(mailboxes)
                + " on active commercial subscriptions, as protected mailboxes"
            )
        return "; ".join(rules)


def _counted(parts: list[tuple[str, str, int]]) -> str:
    """ "3 workstations of X; 1 server of X": each count with its word, by number."""
    return "; ".join(
        f"{count} {category_words(category, count)} of {product}"
        for product, category, count in parts
    )


def category_words(category: str, count: int) -> str:
    """A category's word for ``count`` of it: "1 server", "2 servers"."""
    words = CATEGORY_LABELS.get(category, category)
    if count != 1:
        return words
    return words.removesuffix("es") if category == MAILBOXES else words[:-1]


def choice_label(name: str) -> str:
    """A price book choice's name as people read it: "X (servers)" for "X/server"."""
    product, _, category = name.rpartition("/")
    if product and category in CATEGORY_LABELS:
        return f"{product} ({CATEGORY_LABELS[category]})"
    return name


def price_book_item(choices: SyncChoices, product: str, category: str) -> str | None:
    """The item chosen for an application's category, or None (not billed)."""
    items = _folded(choices.price_book_items)
    whole = items.get(product.casefold())
    if category == MAILBOXES or choices.bill_by_category:
        split = items.get(item_choice_key(product, category).casefold())
        return split or whole
    return whole


def _folded(items: Mapping[str, str]) -> dict[str, str]:
    """The choices' items keyed in any letter case."""
    return {name.casefold(): item for name, item in items.items() if item}


def charge_targets(
    usage: UsageCounts, choices: SyncChoices
) -> tuple[list[ChargeTarget], list[tuple[str, str, int]]]:
    """Per chosen price book item, the quantity to bill; and what has no item.

    Every chosen item gets a target, 0 when nothing uses it, so that a line drops
    to 0 when the last device goes. Items chosen for several categories add up.
    """
    parts: dict[str, list[tuple[str, str, int]]] = {
        item.strip(): [] for item in choices.price_book_items.values() if item.strip()
    }
    unmapped: list[tuple[str, str, int]] = []

    for (product, category), count in sorted(usage.counts.items()):
        item = price_book_item(choices, product, category)
        if item is None:
            unmapped.append((product, category, count))
            continue
        parts.setdefault(item.strip(), []).append((product, category, count))

    chosen: dict[str, list[str]] = {}
    for name, item in sorted(choices.price_book_items.items()):
        chosen.setdefault(item.strip(), []).append(name)
    targets = [
        ChargeTarget(
            item_id=item,
            quantity=sum(count for _, _, count in found),
            parts=tuple(found),
            chosen_for=tuple(chosen.get(item, ())),
        )
        for item, found in sorted(parts.items(), key=lambda pair: pair[0].casefold())
    ]
    return targets, unmapped


@dataclass(frozen=True)
class PlannedCharge:
    """One line of the billing plan: an item's quantity before and after."""

    item_id: str
    label: str
    before: int | None
    after: int
    rule: str
    detail_id: int | None = None

    @property
    def changes(self) -> bool:
        """Whether Tigerpaw must be written to (a missing line at 0 needs nothing)."""
        if self.before is None:
            return self.after > 0
        return self.before != self.after


def plan_charges(
    targets: Sequence[ChargeTarget], current: Sequence[AdditionalCharge]
) -> list[PlannedCharge]:
    """Each target beside the agreement's current line of the same item."""
    lines: dict[str, AdditionalCharge] = {}
    for charge in current:
        lines.setdefault(charge.item_id.strip().casefold(), charge)

    planned = []
    for target in targets:
        line = lines.get(target.item_id.casefold())
        planned.append(
            PlannedCharge(
                item_id=line.item_id if line else target.item_id,
                label=target.label,
                before=line.quantity if line else None,
                after=target.quantity,
                rule=target.rule,
                detail_id=line.detail_id if line else None,
            )
        )
    return planned
