"""The OutboxWorker: sends queued writes to Tigerpaw, a few at once, each safely
more than once.

Every write was saved in the outbox under its key before anything was sent; the
worker sends what is due (through :class:`agent.sync.senders.WriteSender`, which
makes a second send harmless), marks it done with Tigerpaw's id, and on failure sets
when to try again: backoff with jitter, Retry-After, a longer wait for what needs a
person.

A drain keeps up to ``per_api`` writes in flight, each holding a slot of the API's
limit. The writes of one lane (one order: its open, notes and close; one agreement;
one account) go one after another, in the order they were queued. Fed by a
:class:`WriteFeed`, a drain sends while the cycle still reads the console, so that
both APIs are busy at once, and ends when the feed is closed and nothing is due. It
stops when Tigerpaw stops answering, and between writes on Quit.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from agent.errors import (
    AccountInactive,
    AgentError,
    ConnectError,
    RateLimited,
    RecordLocked,
    RemoteError,
    RequestRejected,
    ServerError,
    TimedOut,
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

#: Due writes read from the store at a time, besides those in flight or spent.
BATCH = 20
#: A write is tried at most this often in one drain (a lock is not waited out).
TRIES_PER_DRAIN = 3
#: The longest a drain waits without looking at the stop event again.
POLL = 0.25

SENT, DEFERRED, FAILED = "sent", "deferred", "failed"


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
    #: Unreachable answers in a row after which a drain stops for this cycle (a
    #: single timeout stops it at once).
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
    """What one drain did; ``errors`` holds the last error per tenant id.

    ``refused`` says Tigerpaw refused a write (a field or master-table entry may
    have gone), so what the bootstrap found should be looked up again.
    """

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    #: Service orders opened in Tigerpaw (one found there after a crash counts).
    opened: int = 0
    halted: str | None = None
    errors: dict[int | None, str] = field(default_factory=dict)
    refused: bool = False

    def add(self, other: DrainResult) -> None:
        """Add another drain's figures (its halt and errors win)."""
        self.sent += other.sent
        self.failed += other.failed
        self.opened += other.opened
        self.deferred += other.deferred
        self.halted = other.halted or self.halted
        self.errors.update(other.errors)
        self.refused = self.refused or other.refused


class WriteFeed:
    """Tells a running drain that writes were queued, and when no more will be."""

    def __init__(self, *, closed: bool = False) -> None:
        """An open feed (``closed``: a drain of what is queued already)."""
        self._cond = threading.Condition()
        self._version = 0
        self._closed = closed

    def queued(self) -> None:
        """Something changed: writes were queued, or one in flight finished."""
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def close(self) -> None:
        """No more writes will be queued in this cycle."""
        with self._cond:
            self._closed = True
            self._version += 1
            self._cond.notify_all()

    def snapshot(self) -> tuple[int, bool]:
        """(how many changes so far, whether the feed is closed), read together."""
        with self._cond:
            return self._version, self._closed

    def wait(self, seen: int, timeout: float) -> None:
        """Wait until a change after ``seen`` (a snapshot's count), or ``timeout``."""
        with self._cond:
            self._cond.wait_for(lambda: self._version != seen, max(0.0, timeout))


#: What an attempt came to: SENT, DEFERRED or FAILED, and the failure if any.
Attempt = tuple[str, BaseException | None]


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

    def drain(
        self, *, settle: float = 0.0, feed: WriteFeed | None = None
    ) -> DrainResult:
        """Send every due write, up to ``per_api`` at once, until none is due (and
        ``feed``, if given, is closed) or the drain halts.

        Each write is tried at most TRIES_PER_DRAIN times per drain. With
        ``settle``, writes that come due within that many seconds of the end are
        waited for, so a one-off run ends with nothing left.
        """
        return _Drain(self, feed or WriteFeed(closed=True), settle).run()

    def send_now(self, write: writes.Write, tenant_id: int | None = None) -> None:
        """Queue one write and send it at once; its failure is raised."""
        item = self.store.enqueue(
            write.key,
            integration_id=self.integration_id,
            kind=write.kind,
            payload=write.payload,
            tenant_id=tenant_id,
        )
        _, error = self.attempt(item)
        if error is not None:
            raise error

    def attempt(self, item: OutboxItem) -> Attempt:
        """Send one write (holding a slot of Tigerpaw's limit); mark it done or
        failed. Safe to call from several threads at once."""
        try:
            with self.limits.hold(self.api):
                self.sender.send(item)
        except Deferred as why:
            self._failed(item, str(why), self.policy.base / 4)
            return DEFERRED, None
        except (ConnectError, ServerError) as err:
            self.reachability.failed(err)
            self._fail(item, err)
            return FAILED, err
        except AgentError as err:
            if isinstance(err, RemoteError):
                self.reachability.answered()
            self._fail(item, err)
            return FAILED, err
        except Exception as err:
            # A bug must not stop the other writes: log it whole, keep the write.
            logger.exception("Sending %s failed unexpectedly", item.key)
            self._fail(item, err)
            return FAILED, err

        self.reachability.answered()
        return SENT, None

    def _fail(self, item: OutboxItem, error: BaseException) -> None:
        """Record a failed attempt with the policy's wait."""
        message = describe_failure(error)
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
            "Could not %s; trying again in the first sync after %.0f s: %s",
            _lower_first(writes.describe(item.kind, item.payload)),
            delay,
            message,
        )
        self._failed(item, message, delay)

    def _failed(self, item: OutboxItem, message: str, delay: float) -> None:
        """Mark the write failed until ``delay`` seconds from now."""
        when = self.clock() + dt.timedelta(seconds=delay)
        self.store.mark_failed(item.key, message, when)


class _Drain:
    """One drain's bookkeeping: writes in flight, busy lanes, tries and counts.

    Only the thread that runs :meth:`run` touches it; the pool's threads send and
    report back through their futures.
    """

    def __init__(self, worker: OutboxWorker, feed: WriteFeed, settle: float) -> None:
        """A drain through ``worker``, fed by ``feed``."""
        self.worker = worker
        self.feed = feed
        self.result = DrainResult()
        self.settle_until = worker.clock() + dt.timedelta(seconds=settle)
        self.tries: Counter[str] = Counter()
        self.spent = 0
        self.unreachable = 0
        self.in_flight: dict[Future[Attempt], OutboxItem] = {}
        self.busy_lanes: set[str] = set()
        #: No write starts before this (a short Retry-After is waited out).
        self.resume_at: dt.datetime | None = None

    def run(self) -> DrainResult:
        """Send until nothing is due and the feed is closed, or a halt or stop."""
        slots = self.worker.limits.per_api
        with ThreadPoolExecutor(slots, thread_name_prefix="sync-outbox") as pool:
            while True:
                seen, closed = self.feed.snapshot()
                self._collect()
                if self._halting():
                    if not self.in_flight:
                        break
                    self.feed.wait(seen, POLL)
                    continue

                self._start(pool, slots)
                paused = self._paused_for()
                if self.in_flight or not closed:
                    self.feed.wait(seen, min(POLL, paused) if paused else POLL)
                elif paused:
                    self.worker.stop.wait(paused)
                elif not self._wait_for_next():
                    break
        return self.result

    def _halting(self) -> bool:
        """Whether no new write may start (halted, or the agent stops)."""
        return self.result.halted is not None or self.worker.stop.is_set()

    def _paused_for(self) -> float:
        """Seconds left of a Retry-After being waited out (0 when none)."""
        if self.resume_at is None:
            return 0.0
        return max(0.0, (self.resume_at - self.worker.clock()).total_seconds())

    def _due(self, until: dt.datetime) -> list[OutboxItem]:
        """Writes due by ``until`` that this drain may still try, oldest first."""
        skip = {item.key for item in self.in_flight.values()}
        found = self.worker.store.due(
            until,
            BATCH + len(skip) + self.spent,
            integration_id=self.worker.integration_id,
        )
        return [
            item
            for item in found
            if item.key not in skip and self.tries[item.key] < TRIES_PER_DRAIN
        ]

    def _start(self, pool: ThreadPoolExecutor, slots: int) -> None:
        """Start due writes in free slots, one per lane at a time."""
        free = slots - len(self.in_flight)
        if free <= 0 or self._paused_for() > 0:
            return

        for item in self._due(self.worker.clock()):
            if free <= 0 or self._halting():
                break
            lane = writes.lane(item.kind, item.payload)
            if lane in self.busy_lanes:
                continue
            self.tries[item.key] += 1
            if self.tries[item.key] == TRIES_PER_DRAIN:
                self.spent += 1
            future = pool.submit(self.worker.attempt, item)
            self.in_flight[future] = item
            self.busy_lanes.add(lane)
            free -= 1
            future.add_done_callback(lambda _: self.feed.queued())

    def _collect(self) -> None:
        """Count the writes that finished and free their lanes."""
        for future in [f for f in self.in_flight if f.done()]:
            item = self.in_flight.pop(future)
            self.busy_lanes.discard(writes.lane(item.kind, item.payload))
            self._count(item, *future.result())

    def _count(
        self, item: OutboxItem, outcome: str, error: BaseException | None
    ) -> None:
        """Add one attempt to the result; decide whether the drain halts."""
        result = self.result
        if outcome == SENT:
            result.sent += 1
            if item.kind == writes.ORDER_OPEN:
                result.opened += 1
        elif outcome == DEFERRED:
            result.deferred += 1
        else:
            result.failed += 1
        if error is not None and not isinstance(error, RecordLocked):
            # A lock is someone at work in Tigerpaw, not a failure of the tenant.
            result.errors[item.tenant_id] = describe_failure(error)
        if isinstance(error, RequestRejected):
            result.refused = True

        if isinstance(error, ConnectError | ServerError):
            self.unreachable += 1
            # Each timed-out write held a slot a whole read timeout: one is enough
            # to tell a hung Tigerpaw, and more would only make the wait longer.
            hung = isinstance(error, TimedOut)
            if hung or self.unreachable >= self.worker.policy.unreachable_limit:
                result.halted = f"Tigerpaw is unreachable: {error}"
        elif error is None or isinstance(error, RemoteError):
            self.unreachable = 0
        if isinstance(error, WrongCredentials | AccountInactive):
            result.halted = str(error)
        if isinstance(error, RateLimited):
            if error.retry_after > self.worker.policy.wait_inline:
                result.halted = str(error)
            else:
                wait = dt.timedelta(seconds=error.retry_after)
                self.resume_at = self.worker.clock() + wait

    def _wait_for_next(self) -> bool:
        """Wait for the next write due before the settle time; False if none."""
        now = self.worker.clock()
        if now >= self.settle_until:
            return False
        upcoming = [item.next_attempt_at for item in self._due(self.settle_until)]
        if not upcoming:
            return False
        self.worker.stop.wait(max(0.0, (min(upcoming) - now).total_seconds()) + 0.01)
        return True


def describe_failure(error: BaseException) -> str:
    """A failure in words (its message, or its type when it has none)."""
    return str(error) or type(error).__name__


def _lower_first(text: str) -> str:
    """The text with its first letter in lower case (to continue a sentence)."""
    return text[:1].lower() + text[1:]
