"""Tests of the outbox and the history of writes to Tigerpaw."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.errors import StoreError
from agent.secrets import register_secret
from agent.store import (
    ABANDONED,
    FAILED,
    PENDING,
    SENT,
    IntegrationSettings,
    NewHistory,
    NewTenant,
    Store,
)

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    """A time some seconds after T0."""
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture
def integration(store):
    """A KSC integration with one tenant."""
    created = store.create_integration(
        IntegrationSettings(source="ksc", ksc_address="ksc.example.test")
    )
    store.add_tenants(created.id, [NewTenant("1", "Contoso")])
    return created


def test_enqueue_is_idempotent_on_the_key(store, integration):
    """A second enqueue with the same key keeps the first payload and state."""
    first = store.enqueue(
        "order:1:dev:status", integration_id=integration.id, kind="so", payload={"n": 1}
    )
    store.mark_failed("order:1:dev:status", "timeout", at(60))

    again = store.enqueue(
        "order:1:dev:status", integration_id=integration.id, kind="so", payload={"n": 2}
    )

    assert first.state == PENDING and first.attempts == 0
    assert again.payload == {"n": 1}
    assert again.state == FAILED
    assert again.attempts == 1
    assert store.pending_count() == 1


def test_due_orders_by_time_and_waits_out_backoff(store, integration):
    """A failed write waits for its next attempt; the others go first."""
    for index, key in enumerate(("a", "b", "c")):
        store.enqueue(
            key, integration_id=integration.id, kind="k", payload={}, now=at(index)
        )
    store.mark_failed("a", "Tigerpaw said 503", at(100), now=at(5))

    assert [i.key for i in store.due(at(10))] == ["b", "c"]
    assert [i.key for i in store.due(at(10), limit=1)] == ["b"]
    assert [i.key for i in store.due(at(100))] == ["b", "c", "a"]

    store.mark_failed("b", "locked", at(50), now=at(11))
    store.mark_sent("c", "77", now=at(12))
    assert [i.key for i in store.due(at(60))] == ["b"]
    assert [i.key for i in store.due(at(200))] == ["b", "a"]
    failed = store.get_outbox_item("a")
    assert (failed.attempts, failed.last_error) == (1, "Tigerpaw said 503")
    assert failed.next_attempt_at == at(100)


def test_due_can_be_limited_to_one_integration(store, integration):
    """Each integration's sender sees only its own writes."""
    other = store.create_integration(
        IntegrationSettings(source="kbh", name="Other", kbh_email="o@example.test")
    )
    store.enqueue("mine", integration_id=integration.id, kind="k", payload={})
    store.enqueue("theirs", integration_id=other.id, kind="k", payload={})

    assert [i.key for i in store.due(integration_id=other.id)] == ["theirs"]
    assert store.pending_count(integration.id) == 1
    assert store.pending_count() == 2


def test_mark_sent_keeps_history_in_the_same_step(store, integration):
    """Sent writes carry Tigerpaw's id and their history; a repeat changes nothing."""
    [tenant] = store.list_tenants(integration.id)
    store.map_account(tenant.id, 1001, "Contoso")
    store.enqueue("charge:1", integration_id=integration.id, kind="c", payload={"q": 3})
    history = NewHistory(
        integration_id=integration.id,
        tenant_id=tenant.id,
        account_number=1001,
        target="agreement 55 charge KES",
        action="set quantity",
        before={"quantity": 2},
        after={"quantity": 3},
    )

    sent = store.mark_sent("charge:1", 9001, history=history, now=at(1))
    repeat = store.mark_sent("charge:1", 9002, history=history, now=at(2))

    assert (sent.state, sent.tigerpaw_id, sent.attempts) == (SENT, "9001", 1)
    assert sent.done_at == at(1)
    assert repeat == sent
    [entry] = store.list_history(account_number=1001)
    assert entry.before == {"quantity": 2} and entry.after == {"quantity": 3}
    assert entry.outbox_key == "charge:1"
    assert entry.at == at(1)
    assert store.due(at(10)) == []
    assert store.pending_count() == 0


def test_abandon_and_retry(store, integration):
    """An abandoned write is not due and not pending until a person retries it."""
    store.enqueue("w", integration_id=integration.id, kind="k", payload={}, now=at(0))

    store.abandon("w", "the account is inactive", now=at(1))
    assert store.get_outbox_item("w").state == ABANDONED
    assert store.due(at(1000)) == []
    assert store.pending_count() == 0
    assert store.outbox_counts() == {ABANDONED: 1}

    retried = store.retry("w", now=at(2))
    assert retried.state == PENDING
    assert [i.key for i in store.due(at(2))] == ["w"]
    assert [i.key for i in store.list_outbox(state=PENDING)] == ["w"]


def test_errors_of_unknown_keys_and_masked_secrets(store, integration):
    """Unknown keys raise StoreError; error texts lose registered secrets."""
    register_secret("s3cret-in-an-error")
    store.enqueue("w", integration_id=integration.id, kind="k", payload={})

    failed = store.mark_failed("w", "auth s3cret-in-an-error bad", at(5))

    assert failed.last_error == "auth ******** bad"
    with pytest.raises(StoreError, match="holds no write with the key 'nope'"):
        store.mark_sent("nope", 1)


def test_prune_forgets_old_sent_writes_only(store, integration):
    """Pruning removes sent rows done before the time and keeps the rest."""
    for key in ("old", "new", "waiting"):
        store.enqueue(key, integration_id=integration.id, kind="k", payload={})
    store.mark_sent("old", 1, now=at(0))
    store.mark_sent("new", 2, now=at(100))

    assert store.prune_outbox(at(50)) == 1

    assert store.get_outbox_item("old") is None
    assert store.get_outbox_item("new").state == SENT
    assert store.get_outbox_item("waiting").state == PENDING


def test_history_pages_newest_first_and_filters(store, integration):
    """List by integration, account or tenant; page back with before_id."""
    [tenant] = store.list_tenants(integration.id)
    for number in range(5):
        store.record_history(
            NewHistory(
                integration_id=integration.id,
                tenant_id=tenant.id,
                account_number=1000 + number % 2,
                target=f"order {number}",
                action="create",
                after={"n": number},
            ),
            at=at(number),
        )

    newest = store.list_history(limit=2)
    older = store.list_history(limit=2, before_id=newest[-1].id)

    assert [e.target for e in newest] == ["order 4", "order 3"]
    assert [e.target for e in older] == ["order 2", "order 1"]
    assert [e.target for e in store.list_history(account_number=1001)] == [
        "order 3",
        "order 1",
    ]
    assert len(store.list_history(tenant_id=tenant.id)) == 5
    assert store.list_history(integration_id="someone else") == []


def test_retry_waiting_makes_only_this_integrations_failed_writes_due(
    store, integration
) -> None:
    other = store.create_integration(
        IntegrationSettings(source="kbh", name="Other", kbh_email="o@example.test")
    )
    for key, owner in (("a", integration.id), ("b", integration.id), ("c", other.id)):
        store.enqueue(key, integration_id=owner, kind="charge", payload={})
        store.mark_failed(key, "refused", at(3600))
    store.mark_sent("b", "7")

    assert store.retry_waiting(integration.id, now=at(10)) == 1

    assert store.get_outbox_item("a").state == "pending"
    assert store.get_outbox_item("b").state == "sent"
    assert store.get_outbox_item("c").state == "failed"
    assert [item.key for item in store.due(at(10))] == ["a"]


def test_start_attempt_says_whether_an_earlier_attempt_began(tmp_path):
    """The first call marks the write and says no; every later one says yes, also
    after a restart (the mark is committed before the send)."""
    with Store.open_in(tmp_path) as store:
        made = store.create_integration(
            IntegrationSettings(source="ksc", ksc_address="ksc.example.test")
        )
        store.enqueue("order:1:open", integration_id=made.id, kind="so", payload={})
        store.enqueue("order:2:open", integration_id=made.id, kind="so", payload={})

        assert store.start_attempt("order:1:open") is False
        assert store.start_attempt("order:1:open") is True

    with Store.open_in(tmp_path) as reopened:
        assert reopened.start_attempt("order:1:open") is True
        assert reopened.start_attempt("order:2:open") is False


def test_start_attempt_refuses_to_join_a_transaction(store, integration):
    """A mark inside another change would be saved only with it: refused."""
    store.enqueue("k", integration_id=integration.id, kind="so", payload={})

    with pytest.raises(StoreError, match="a bug"), store.transaction():
        store.start_attempt("k")

    assert store.start_attempt("k") is False


def test_start_attempt_of_an_unknown_key_says_so(store, integration):
    """A write that is gone gets the outbox's own message."""
    with pytest.raises(StoreError, match="holds no write"):
        store.start_attempt("missing")
