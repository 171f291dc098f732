"""Reading KSC's result sets in pieces: hosts, license keys and events.

KSC answers a search with a result set on the server (a host accessor, a key
iterator, an event iterator) that the client reads in chunks and releases. A result
set ends with the session that opened it, so a read that outlives its session opens
the set again after the last record it returned: hosts come in ``KLHST_WKS_HOSTNAME``
order and events in ``event_db_id`` order, and the new search asks only for the ones
after the last, so a renewed read loses and repeats nothing, even if devices came or
went meanwhile. A set that is lost again before a single record could be read ends
the read with an error.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from agent.errors import ProtocolError, ServerError
from agent.sources import records
from agent.sources.kbh_wire import CursorRefused
from agent.sources.ksc_records import (
    EVENT_FIELDS,
    EVENT_ID,
    HOST_FIELDS,
    HOSTNAME,
    KEY_FIELDS,
    KEY_HOST,
    SERIAL,
    parse_device,
    parse_event,
    parse_license,
)
from agent.sources.ksc_session import KscSession, where
from agent.sources.ksc_wire import (
    SYSTEM,
    ResultSetGone,
    filter_text,
    order_by,
    rows_of,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds the server keeps a result set open; a read that takes longer reopens it.
RESULT_LIFETIME = 1800
CHUNK_ARRAY = "KLCSP_ITERATOR_ARRAY"
EVENT_ARRAY = "KLEVP_EVENT_RANGE_ARRAY"


class Reader:
    """Chunked reads over one account's sessions."""

    def __init__(
        self, session: KscSession, page_size: int, lifetime: int = RESULT_LIFETIME
    ) -> None:
        self.session = session
        self.page_size = page_size
        self.lifetime = lifetime

    # Hosts.

    def hosts(self, vserver: str, tenant_id: str) -> Iterator[records.Device]:
        """Every host of the virtual server, one chunk in memory at a time."""
        last: str | None = None
        accessor: str | None = None
        total = position = 0
        lost = False
        try:
            while True:
                if accessor is None:
                    accessor, total = self._find_hosts(vserver, last)
                    position = 0
                if position >= total:
                    return
                try:
                    rows = self._host_chunk(vserver, accessor, position)
                except ResultSetGone as err:
                    accessor = None
                    if lost:
                        raise self._lost(vserver, "devices") from err
                    lost = True
                    logger.info(
                        "KSC's device list of %s ended after %s; reading on",
                        where(vserver),
                        last or "the start",
                    )
                    continue
                if not rows:
                    return

                lost = False
                position += len(rows)
                for row in rows:
                    device = self._parse("device", parse_device, tenant_id, row)
                    if device.id != last:
                        last = device.id
                        yield device
        finally:
            if accessor is not None:
                self.session.call_quietly(
                    vserver, "ChunkAccessor.Release", {"strAccessor": accessor}
                )

    def _find_hosts(self, vserver: str, after: str | None) -> tuple[str, int]:
        """HostGroup.FindHosts in hostname order, after ``after``; (accessor, count)."""
        body = {
            "wstrFilter": ""
            if after is None
            else f"({HOSTNAME} > {filter_text(after)})",
            "vecFieldsToReturn": list(HOST_FIELDS),
            "vecFieldsToOrder": order_by(HOSTNAME),
            "pParams": {"KLGRP_FIND_FROM_CUR_VS_ONLY": True},
            "lMaxLifeTime": self.lifetime,
        }
        reply = self.session.call(vserver, "HostGroup.FindHosts", body)
        accessor, count = reply.get("strAccessor"), reply.get("PxgRetVal")
        if not isinstance(accessor, str) or not isinstance(count, int):
            raise self._unreadable("HostGroup.FindHosts", "no accessor or count")
        return accessor, count

    def _host_chunk(self, vserver: str, accessor: str, start: int) -> list[dict]:
        """One chunk of host rows from ``start``."""
        body = {"strAccessor": accessor, "nStart": start, "nCount": self.page_size}
        reply = self.session.call(
            vserver, "ChunkAccessor.GetItemsChunk", body, result_set=True
        )
        return self._rows("ChunkAccessor.GetItemsChunk", reply.get("pChunk"))

    # License keys.

    def keys(self, vserver: str, tenant_id: str) -> list[records.LicenseUsage]:
        """Every license key of the virtual server with the hosts that use it."""
        try:
            return self._read_keys(vserver, tenant_id)
        except ResultSetGone:
            # Keys are few: read them again from the start, once.
            logger.info("KSC's key list of %s ended; reading again", where(vserver))
        try:
            return self._read_keys(vserver, tenant_id)
        except ResultSetGone as err:
            raise self._lost(vserver, "license keys") from err

    def _read_keys(self, vserver: str, tenant_id: str) -> list[records.LicenseUsage]:
        """LicenseKeys.EnumKeys, then AcquireKeyHosts for each key."""
        now = dt.datetime.now(dt.UTC)
        body = {
            "pFields": list(KEY_FIELDS),
            "pFieldsToOrder": order_by(SERIAL),
            "pOptions": {},
            "lTimeoutSec": self.lifetime,
        }
        keys = self._iterate(vserver, "LicenseKeys.EnumKeys", body, lambda row: row)

        usage = []
        for row in keys:
            serial = row.get(SERIAL)
            if not isinstance(serial, str) or not serial:
                raise self._unreadable("LicenseKeys.EnumKeys", "a key has no serial")
            body = {
                "pInData": {SERIAL: serial},
                "pFields": [KEY_HOST],
                "pFieldsToOrder": order_by(KEY_HOST),
                "pOptions": {},
                "lTimeoutSec": self.lifetime,
            }
            hosts = self._iterate(
                vserver, "LicenseKeys.AcquireKeyHosts", body, _host_of
            )
            device_ids = tuple(host for host in hosts if host)
            usage.append(
                self._parse(
                    "license key", parse_license, tenant_id, row, device_ids, now
                )
            )
        return usage

    def _iterate(
        self,
        vserver: str,
        method: str,
        body: dict[str, Any],
        pick: Callable[[dict[str, Any]], T],
    ) -> list[T]:
        """Open a GroupSyncIterator with ``method`` and read it to its end."""
        reply = self.session.call(vserver, method, body)
        iterator = reply.get("wstrIterator")
        if not isinstance(iterator, str):
            raise self._unreadable(method, "no iterator")

        found: list[T] = []
        try:
            while True:
                # GetNextItems moves the server's position: never resent blindly.
                part = self.session.call(
                    vserver,
                    "GroupSyncIterator.GetNextItems",
                    {"szwIterator": iterator, "nCount": self.page_size},
                    retry=False,
                    result_set=True,
                )
                rows = self._rows("GroupSyncIterator.GetNextItems", part.get("pData"))
                found += [pick(row) for row in rows]
                end = part.get("bEOF")
                if end is True:
                    return found
                if end is not False or not rows:
                    raise self._unreadable(
                        "GroupSyncIterator.GetNextItems", "no items and no end"
                    )
        finally:
            self.session.call_quietly(
                vserver, "GroupSyncIterator.ReleaseIterator", {"szwIterator": iterator}
            )

    # Events.

    def events(
        self, vserver: str, tenant_id: str, cursor: str, limit: int
    ) -> records.EventPage:
        """Up to ``limit`` events after the cursor (the last event_db_id read)."""
        text = (cursor or "").strip()
        if text and not text.isdigit():
            raise CursorRefused(
                f"The saved event position of {where(vserver)} ({text[:40]!r}) is "
                "not one this agent writes for KSC: the position must be reset to "
                "read its events",
                system=SYSTEM,
                company_id=tenant_id,
            )
        after = int(text) if text else None

        page: list[records.SecurityEvent] = []
        lost = False
        while len(page) < limit:
            before = len(page)
            try:
                self._read_events(vserver, tenant_id, after, limit, page)
                break
            except ResultSetGone as err:
                if lost and len(page) == before:
                    raise self._lost(vserver, "events") from err
                lost = True
                after = int(page[-1].id) if page else after
                logger.info("KSC's event list of %s ended; reading on", where(vserver))

        return records.EventPage(events=page, cursor=page[-1].id if page else text)

    def _read_events(
        self,
        vserver: str,
        tenant_id: str,
        after: int | None,
        limit: int,
        page: list[records.SecurityEvent],
    ) -> None:
        """Open an event iterator after ``after`` and add events to ``page``."""
        pfilter = (
            {} if after is None else {"KLEVP_RFC2254_FILTER": f"({EVENT_ID} > {after})"}
        )
        body = {
            "pFilter": pfilter,
            "vecFieldsToReturn": list(EVENT_FIELDS),
            "vecFieldsToOrder": order_by(EVENT_ID),
            "lifetimeSec": self.lifetime,
        }
        reply = self.session.call(
            vserver, "EventProcessingFactory.CreateEventProcessing2", body
        )
        iterator = reply.get("strIteratorId")
        if not isinstance(iterator, str):
            raise self._unreadable("CreateEventProcessing2", "no iterator")

        try:
            count = self.session.call(
                vserver,
                "EventProcessing.GetRecordCount",
                {"strIteratorId": iterator},
                result_set=True,
            ).get("PxgRetVal")
            if not isinstance(count, int):
                raise self._unreadable("EventProcessing.GetRecordCount", "no count")
            wanted = min(count, limit - len(page))
            start = 0
            while start < wanted:
                end = min(start + self.page_size, wanted)
                reply = self.session.call(
                    vserver,
                    "EventProcessing.GetRecordRange",
                    {"strIteratorId": iterator, "nStart": start, "nEnd": end},
                    result_set=True,
                )
                rows = self._rows(
                    "EventProcessing.GetRecordRange",
                    reply.get("pParamsEvents"),
                    EVENT_ARRAY,
                )
                if not rows:
                    return
                page += [self._parse("event", parse_event, tenant_id, r) for r in rows]
                start += len(rows)
        finally:
            self.session.call_quietly(
                vserver, "EventProcessing.ReleaseIterator", {"strIteratorId": iterator}
            )

    # Reading replies.

    def _rows(self, method: str, container: Any, key: str = CHUNK_ARRAY) -> list[dict]:
        """The records of a chunk reply."""
        try:
            return rows_of(container, key)
        except ValueError as err:
            raise self._unreadable(method, str(err)) from err

    def _parse(self, what: str, parse: Callable[..., T], *args: Any) -> T:
        """``parse(*args)``; a value we cannot read becomes a ProtocolError."""
        try:
            return parse(*args)
        except (KeyError, TypeError, ValueError) as err:
            raise self._unreadable(f"a {what}", f"{type(err).__name__}: {err}") from err

    def _unreadable(self, what: str, why: str) -> ProtocolError:
        """A reply we cannot read, said so that support can act on it."""
        return ProtocolError(
            f"KSC at {self.session.address} sent {what} the agent cannot read "
            f"({why}): send the agent's log to support",
            system=SYSTEM,
        )

    def _lost(self, vserver: str, what: str) -> ServerError:
        """The error when a result set is lost again before anything could be read."""
        return ServerError(
            f"KSC at {self.session.address} ended the list of {what} of "
            f"{where(vserver)} twice in a row before it could be read; the agent "
            "tries again later",
            system=SYSTEM,
        )


def _host_of(row: dict[str, Any]) -> str:
    """The host id of an AcquireKeyHosts row."""
    host = row.get(KEY_HOST)
    return host if isinstance(host, str) else ""
