"""The OutboxWorker: sends queued writes to Tigerpaw, each safely more than once.

Every write was saved in the outbox under its key before anything was sent; the
worker sends what is due (through :class:`agent.sync.senders.WriteSender`, which
makes a second send harmless), marks it done with Tigerpaw's id, and on failure sets
when to try again: backoff with jitter, Retry-After, a longer wait for what needs a
person. A drain stops when Tigerpaw stops answering, and between writes on Quit.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.errors import (
    AccountInactive,
    AgentError,
    ConnectError,
    RateLimited,
    RecordLocked,
    RemoteError,
    ServerError,
    WrongCredentials,
)
from agent.store import OutboxItem, Store
from agent.store.db import utcnow
from agent.sync import writes
from agent.sync.health import Reachability
from agent.sync.limits import ApiLimits
from agent.sync.senders import Deferred, WriteSender
from agent.tigerpaw.client import TigerpawClient

logger = logging.getLogger(__name__)

BATCH = 50
#: A write is tried at most this often in one drain (a lock is not waited out).
TRIES_PER_DRAIN = 3


@dataclass(frozen=True)
class RetryPolicy:
    """How long a failed write waits before its next attempt, in seconds."""

    #: First wait after a transient failure; it doubles per attempt, with jitter.
    base: float = 15.0
    cap: float = 900.0
    #: First wait for an order someone holds open in Tigerpaw (doubles up to cap).
    locked: float = 60.0
    #: Wait for what needs a person (rights, a setting, a refused value).
    needs_person: float = 3600.0
    #: A Retry-After up to this long is waited out inside the drain.
    wait_inline: float = 5.0
    #: Unreachable answers in a row after which a drain stops for this cycle.
    unreachable_limit: int = 3

    def delay(self, error: BaseException, attempts: int) -> float:
        """Seconds until the next attempt of a write that failed with ``error``."""
        doubling = 2 ** min(attempts, 16)
        if isinstance(error, RateLimited):
            return max(0.0, error.retry_after)
        if isinstance(error, RecordLocked):
            return min(self.cap, self.locked * doubling)
        if isinstance(error, AgentError) and error.transient:
            ceiling = min(self.cap, self.base * doubling)
            return random.uniform(min(self.base, ceiling) / 2, ceiling)
        return self.needs_person


@dataclass
class DrainResult:
    """What one drain did; ``errors`` holds the last error per tenant id."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    halted: str | None = None
    errors: dict[int | None, str] = field(default_factory=dict)


class OutboxWorker:
    """Sends one integration's due writes through a TigerpawClient."""

    def __init__(
        self,
        store: Store,
        client: TigerpawClient,
        integration_id: str,
        *,
        policy: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        limits: ApiLimits | None = None,
        reachability: Reachability | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        """Send through ``client``; ``stop`` ends a drain between writes."""
        self.store = store
        self.client = client
        self.integration_id = integration_id
        self.policy = policy or RetryPolicy()
        self.stop = stop or threading.Event()
        self.limits = limits or ApiLimits()
        self.api = f"tigerpaw:{client.api_url}"
        self.reachability = reachability or Reachability(
            f"Tigerpaw at {client.api_url}"
        )
        self.clock = clock
        self.sender = WriteSender(store, client, integration_id)

    # Driving.

    def drain(self, *, settle: float = 0.0) -> DrainResult:
        """Send every due write, oldest first, until none is due or the drain halts.

        Each write is tried at most TRIES_PER_DRAIN times per drain. With
        ``settle``, writes that come due within that many seconds are waited for, so
        a one-off run ends with nothing left.
        """
        result = DrainResult()
        tries: Counter[str] = Counter()
        settle_until = self.clock() + dt.timedelta(seconds=settle)
        unreachable = 0

        while not self.stop.is_set() and result.halted is None:
            due = [
                item
                for item in self.store.due(
                    self.clock(), BATCH, integration_id=self.integration_id
                )
                if tries[item.key] < TRIES_PER_DRAIN
            ]
            if not due:
                if not self._wait_for_next(settle_until, tries):
                    break
                continue

            for item in due:
                if self.stop.is_set() or result.halted is not None:
                    break
                tries[item.key] += 1
                error = self._attempt(item, result)
                if isinstance(error, ConnectError | ServerError):
                    unreachable += 1
                    if unreachable >= self.policy.unreachable_limit:
                        result.halted = f"Tigerpaw is unreachable: {error}"
                elif error is None or isinstance(error, RemoteError):
                    unreachable = 0
                if isinstance(error, WrongCredentials | AccountInactive):
                    result.halted = str(error)
                if isinstance(error, RateLimited):
                    if error.retry_after > self.policy.wait_inline:
                        result.halted = str(error)
                    else:
                        self.stop.wait(error.retry_after)
        return result

    def _wait_for_next(self, until: dt.datetime, tries: Counter[str]) -> bool:
        """Wait for the next write due before ``until``; False if there is none."""
        now = self.clock()
        if now >= until:
            return False
        upcoming = [
            item.next_attempt_at
            for item in self.store.due(until, BATCH, integration_id=self.integration_id)
            if tries[item.key] < TRIES_PER_DRAIN
        ]
        if not upcoming:
            return False
        self.stop.wait(max(0.0, (min(upcoming) - now).total_seconds()) + 0.01)
        return True

    def send_now(self, write: writes.Write, tenant_id: int | None = None) -> None:
        """Queue one write and send it at once; its failure is raised."""
        item = self.store.enqueue(
            write.key,
            integration_id=self.integration_id,
            kind=write.kind,
            payload=write.payload,
            tenant_id=tenant_id,
        )
        error = self._attempt(item, DrainResult())
        if error is not None:
            raise error

    def _attempt(self, item: OutboxItem, result: DrainResult) -> BaseException | None:
        """Send one write; mark it done or failed. Returns the failure, if any."""
        try:
            with self.limits.hold(self.api):
                self.sender.send(item)
        except Deferred as why:
            result.deferred += 1
            self._failed(item, str(why), self.policy.base / 4)
            return None
        except (ConnectError, ServerError) as err:
            self.reachability.failed(err)
            self._fail(item, err, result)
            return err
        except AgentError as err:
            if isinstance(err, RemoteError):
                self.reachability.answered()
            self._fail(item, err, result)
            return err
        except Exception as err:
            # A bug must not stop the other writes: log it whole, keep the write.
            logger.exception("Sending %s failed unexpectedly", item.key)
            self._fail(item, err, result)
            return err

        self.reachability.answered()
        result.sent += 1
        return None

    def _fail(
        self, item: OutboxItem, error: BaseException, result: DrainResult
    ) -> None:
        """Record a failed attempt with the policy's wait."""
        result.failed += 1
        message = str(error) or type(error).__name__
        if not isinstance(error, RecordLocked):
            # A lock is someone at work in Tigerpaw, not a failure of the tenant.
            result.errors[item.tenant_id] = message
        delay = self.policy.delay(error, item.attempts)
        if isinstance(error, ConnectError | ServerError):
            # Reachability says "unreachable" once; each write is only a detail.
            level = logging.DEBUG
        elif isinstance(error, RecordLocked):
            level = logging.INFO
        else:
            level = logging.WARNING
        logger.log(
            level,
            "Could not %s; trying again in %.0f s: %s",
            _lower_first(writes.describe(item.kind, item.payload)),
            delay,
            message,
        )
        self._failed(item, message, delay)

    def _failed(self, item: OutboxItem, message: str, delay: float) -> None:
        """Mark the write failed until ``delay`` seconds from now."""
        when = self.clock() + dt.timedelta(seconds=delay)
        self.store.mark_failed(item.key, message, when)


def _lower_first(text: str) -> str:
    """The text with its first letter in lower case (to continue a sentence)."""
    return text[:1].lower() + text[1:]
