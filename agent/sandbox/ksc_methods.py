"""The KSC Open API methods the emulator answers, each scoped to the caller's login.

Every handler takes a :class:`Call` and returns the reply's top-level JSON object
(``PxgRetVal`` and output parameters), or raises :class:`PxgFailure`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.sandbox import ksc_const as const
from agent.sandbox import ksc_records as records
from agent.sandbox import seed
from agent.sandbox.ksc_filter import FilterError, MatchAll, Node, parse
from agent.sandbox.ksc_sessions import Owner, Principal, PxgFailure, ResultSets
from agent.sandbox.ksc_values import encode_params, encode_top

ACCESSOR, SYNC_ITERATOR, EVENT_ITERATOR = "accessor", "sync", "events"


@dataclass
class Call:
    """One method call: who makes it, its decoded arguments, and the shared state."""

    fleet: seed.Fleet
    results: ResultSets
    principal: Principal
    owner: Owner
    args: dict[str, Any]

    def tenants(self) -> list[seed.Tenant]:
        """The virtual servers the login sees: its own, or all from the main server."""
        if self.principal.tenant is not None:
            return [self.principal.tenant]
        return list(self.fleet.tenants)

    def integer(self, name: str, default: int | None = None) -> int:
        """An integer argument, bare or wrapped as a long."""
        value = self.args.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            if name not in self.args and default is None:
                raise _bad(f"The argument '{name}' is missing")
            raise _bad(f"The argument '{name}' must be an integer, not {value!r}")
        return value

    def text(self, name: str, default: str | None = None) -> str:
        """A string argument."""
        value = self.args.get(name, default)
        if not isinstance(value, str):
            if name not in self.args and default is None:
                raise _bad(f"The argument '{name}' is missing")
            raise _bad(f"The argument '{name}' must be a string, not {value!r}")
        return value

    def params(self, name: str) -> dict[str, Any]:
        """A params argument (bare object or wrapped); absent or null is empty."""
        value = self.args.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _bad(f"The argument '{name}' must be a params object")
        return value

    def names(self, name: str) -> list[str]:
        """An array of attribute names."""
        value = self.args.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad(f"The argument '{name}' must be an array of attribute names")
        return value

    def order(self, name: str, known: dict[str, Any]) -> list[tuple[str, bool]]:
        """Sort keys: names, or params ``{"Name": ..., "Asc": ...}``, in any form."""
        value = self.args.get(name) or []
        if not isinstance(value, list):
            raise _bad(f"The argument '{name}' must be an array")
        keys = []
        for item in value:
            if isinstance(item, str):
                field, ascending = item, True
            elif isinstance(item, dict) and isinstance(item.get("Name"), str):
                field, ascending = item["Name"], bool(item.get("Asc", True))
            else:
                raise _bad(
                    f"Each entry of '{name}' needs a Name (and Asc), not {item!r}"
                )
            if field not in known:
                raise _bad(f"Cannot order by the unknown attribute '{field}'")
            keys.append((field, ascending))
        return keys

    def lifetime(self, name: str, default: int, cap: int) -> int:
        """A lifetime in seconds: 0 or absent is the default; capped."""
        seconds = self.integer(name, 0)
        return min(seconds, cap) if seconds > 0 else default


def _bad(message: str) -> PxgFailure:
    """A PxgError for a bad argument or filter."""
    return PxgFailure(const.ERR_BAD_FORMAT, message)


def _compile(text: str, known: dict[str, Any]) -> Node | MatchAll:
    """Compile a filter, as a PxgError if it cannot be read."""
    try:
        return parse(text, known)
    except FilterError as err:
        raise _bad(f"The filter {text!r} cannot be used: {err}") from err


def _getter(table: dict[str, Callable[[Any], Any]], ref: Any) -> Callable[[str], Any]:
    """A name-to-value lookup of one record through an attribute table."""

    def get(name: str) -> Any:
        """The value of one attribute of the record."""
        return table[name](ref)

    return get


def _select(refs: list[Any], node: Node | MatchAll, table: dict) -> list[Any]:
    """The records the filter matches."""
    if isinstance(node, MatchAll):
        return refs
    try:
        return [ref for ref in refs if node.matches(_getter(table, ref))]
    except FilterError as err:
        raise _bad(f"The filter cannot be used: {err}") from err


def _sort(refs: list[Any], keys: list[tuple[str, bool]], table: dict) -> None:
    """Order records in place by the sort keys."""
    # Stable sorts from the last key to the first; absent values sort first.
    for field, ascending in reversed(keys):
        getter = table[field]

        def key(ref: Any, getter: Callable = getter) -> tuple[bool, Any]:
            """The sort key of one record."""
            value = getter(ref)
            return (value is not None, value if value is not None else 0)

        refs.sort(key=key, reverse=not ascending)


def _rows(result_refs: list[Any], table: dict, fields: tuple[str, ...]) -> list[dict]:
    """The rows of some records with the given fields."""
    return [records.build_row(table, ref, fields) for ref in result_refs]


# Virtual servers (main-server logins only).


def _main_server_only(call: Call) -> None:
    """Refuse VServers calls from a virtual-server login."""
    if call.principal.tenant is not None:
        raise PxgFailure(
            const.ERR_NO_ACCESS,
            "Virtual servers are managed from the main server: log in with an empty "
            "X-KSC-VServer header to call VServers methods",
        )


def _vserver(call: Call, name: str) -> seed.Tenant:
    """The virtual server whose number is the argument ``name``."""
    number = call.integer(name)
    tenant = next((t for t in call.fleet.tenants if t.number == number), None)
    if tenant is None:
        raise PxgFailure(const.ERR_NOT_FOUND, f"There is no virtual server {number}")
    return tenant


def get_vservers(call: Call) -> dict:
    """VServers.GetVServers: every virtual server under ``lParentGroup``."""
    _main_server_only(call)
    parent = call.integer("lParentGroup", -1)
    servers = [
        records.vserver_attributes(tenant)
        for tenant in call.fleet.tenants
        if parent in (-1, const.MAIN_MANAGED_GROUP)
    ]
    return {"PxgRetVal": encode_top(servers)}


def get_vserver_info(call: Call) -> dict:
    """VServers.GetVServerInfo: the asked attributes of one virtual server."""
    _main_server_only(call)
    attributes = records.vserver_attributes(_vserver(call, "lVServer"))
    wanted = call.names("pFields2Return") or list(attributes)
    return {"PxgRetVal": encode_params({k: attributes.get(k) for k in wanted})}


def get_vserver_statistic(call: Call) -> dict:
    """VServers2.GetVServerStatistic: host count, keys and products of one VS."""
    _main_server_only(call)
    tenant = _vserver(call, "lVsId")
    return {"PxgRetVal": encode_params(records.vserver_statistic(tenant))}


# Hosts.


def find_hosts(call: Call) -> dict:
    """HostGroup.FindHosts: filter, order and open an accessor over the hosts."""
    node = _compile(call.text("wstrFilter", ""), records.HOST_FILTERABLE)
    fields = tuple(call.names("vecFieldsToReturn")) or records.DEFAULT_HOST_FIELDS
    keys = call.order("vecFieldsToOrder", records.HOST_ATTRIBUTES)
    options = call.params("pParams")
    lifetime = call.lifetime(
        "lMaxLifeTime", const.ACCESSOR_MAX_LIFETIME, const.ACCESSOR_MAX_LIFETIME
    )

    # The main server manages no hosts of its own in the sandbox.
    only_here = bool(options.get("KLGRP_FIND_FROM_CUR_VS_ONLY", False))
    tenants = [] if only_here and call.principal.tenant is None else call.tenants()
    hosts = [records.HostRef(t, d) for t in tenants for d in t.devices]
    hosts = _select(hosts, node, records.HOST_FILTERABLE)
    _sort(hosts, keys, records.HOST_ATTRIBUTES)

    result = call.results.create(
        ACCESSOR, call.owner, hosts, records.HOST_ATTRIBUTES, fields, lifetime
    )
    return {"PxgRetVal": len(hosts), "strAccessor": result.id}


def get_items_count(call: Call) -> dict:
    """ChunkAccessor.GetItemsCount."""
    result = call.results.get(
        call.args.get("strAccessor"), ACCESSOR, call.owner, "accessor"
    )
    return {"PxgRetVal": len(result.refs)}


def get_items_chunk(call: Call) -> dict:
    """ChunkAccessor.GetItemsChunk: rows ``nStart`` to ``nStart + nCount``."""
    result = call.results.get(
        call.args.get("strAccessor"), ACCESSOR, call.owner, "accessor"
    )
    start, count = call.integer("nStart"), call.integer("nCount")
    if start < 0 or count < 0:
        raise _bad("nStart and nCount must not be negative")
    rows = _rows(result.refs[start : start + count], result.table, result.fields)
    chunk = {"KLCSP_ITERATOR_ARRAY": rows}
    return {"PxgRetVal": len(rows), "pChunk": encode_params(chunk)}


def release_accessor(call: Call) -> dict:
    """ChunkAccessor.Release."""
    call.results.release(call.args.get("strAccessor"), ACCESSOR, call.owner)
    return {}


# License keys.


def enum_keys(call: Call) -> dict:
    """LicenseKeys.EnumKeys: a forward iterator over the keys of the login's VS."""
    fields = tuple(call.names("pFields")) or tuple(records.KEY_ATTRIBUTES)
    keys = call.order("pFieldsToOrder", records.KEY_ATTRIBUTES)
    lifetime = call.lifetime(
        "lTimeoutSec", const.ITERATOR_DEFAULT_LIFETIME, const.ITERATOR_MAX_LIFETIME
    )
    refs = [records.KeyRef(t, lic) for t in call.tenants() for lic in t.licenses]
    _sort(refs, keys, records.KEY_ATTRIBUTES)
    result = call.results.create(
        SYNC_ITERATOR, call.owner, refs, records.KEY_ATTRIBUTES, fields, lifetime
    )
    return {"lKeyCount": len(refs), "wstrIterator": result.id}


def acquire_key_hosts(call: Call) -> dict:
    """LicenseKeys.AcquireKeyHosts: a forward iterator over the hosts using a key."""
    serial = call.params("pInData").get("KLLIC_SERIAL")
    if not isinstance(serial, str):
        raise _bad("pInData must hold the key's KLLIC_SERIAL")
    fields = tuple(call.names("pFields")) or tuple(records.KEY_HOST_ATTRIBUTES)
    keys = call.order("pFieldsToOrder", records.KEY_HOST_ATTRIBUTES)
    lifetime = call.lifetime(
        "lTimeoutSec", const.ITERATOR_DEFAULT_LIFETIME, const.ITERATOR_MAX_LIFETIME
    )

    found = [(t, t.license(serial)) for t in call.tenants()]
    owner = next(((t, lic) for t, lic in found if lic is not None), None)
    if owner is None:
        raise PxgFailure(const.ERR_NOT_FOUND, f"There is no license key '{serial}'")
    tenant, lic = owner
    refs = [records.KeyHostRef(tenant, d, lic) for d in tenant.devices_using(serial)]
    _sort(refs, keys, records.KEY_HOST_ATTRIBUTES)

    result = call.results.create(
        SYNC_ITERATOR, call.owner, refs, records.KEY_HOST_ATTRIBUTES, fields, lifetime
    )
    return {"lKeyCount": len(refs), "wstrIterator": result.id}


def get_next_items(call: Call) -> dict:
    """GroupSyncIterator.GetNextItems: the next ``nCount`` items and ``bEOF``."""
    result = call.results.get(
        call.args.get("szwIterator"), SYNC_ITERATOR, call.owner, "iterator"
    )
    count = call.integer("nCount")
    if count <= 0:
        raise _bad("nCount must be a positive number of items")
    part = result.refs[result.position : result.position + count]
    result.position += len(part)
    rows = _rows(part, result.table, result.fields)
    return {
        "bEOF": result.position >= len(result.refs),
        "pData": encode_params({"KLCSP_ITERATOR_ARRAY": rows}),
    }


def release_sync_iterator(call: Call) -> dict:
    """GroupSyncIterator.ReleaseIterator."""
    call.results.release(call.args.get("szwIterator"), SYNC_ITERATOR, call.owner)
    return {}


# Events.


EventTest = Callable[[records.EventRef], bool]


def _risen_since(since: dt.datetime) -> EventTest:
    """Events raised at or after ``since``."""
    return lambda ref: ref.event.time >= since


def _matching(node: Node | MatchAll) -> EventTest:
    """Events the compiled filter matches."""
    return lambda ref: node.matches(_getter(records.EVENT_ATTRIBUTES, ref))


def _equal(getter: Callable[[Any], Any], value: Any) -> EventTest:
    """Events whose attribute equals ``value``."""
    return lambda ref: getter(ref) == value


def _event_test(pfilter: dict[str, Any]) -> EventTest:
    """One test for all the conditions of a pFilter."""
    tests: list[EventTest] = []
    for name, value in pfilter.items():
        if name == const.EVENT_FILTER_LAST_DAYS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _bad(f"{name} must be a number of days")
            since = dt.datetime.now(dt.UTC) - dt.timedelta(days=value)
            tests.append(_risen_since(since))
        elif name == const.EVENT_FILTER_RFC2254:
            if not isinstance(value, str):
                raise _bad(f"{name} must be a filter string")
            tests.append(_matching(_compile(value, records.EVENT_ATTRIBUTES)))
        elif name in records.EVENT_ATTRIBUTES:
            tests.append(_equal(records.EVENT_ATTRIBUTES[name], value))
        else:
            raise _bad(
                f"The event filter attribute '{name}' is not supported by the "
                f"sandbox; use {const.EVENT_FILTER_RFC2254}, "
                f"{const.EVENT_FILTER_LAST_DAYS} or event attributes"
            )
    return lambda ref: all(test(ref) for test in tests)


def create_event_processing(call: Call) -> dict:
    """EventProcessingFactory.CreateEventProcessing2: an iterator over events."""
    test = _event_test(call.params("pFilter"))
    fields = tuple(call.names("vecFieldsToReturn")) or tuple(records.EVENT_ATTRIBUTES)
    keys = call.order("vecFieldsToOrder", records.EVENT_ATTRIBUTES)
    lifetime = call.lifetime(
        "lifetimeSec", const.EVENTS_DEFAULT_LIFETIME, const.EVENTS_MAX_LIFETIME
    )

    events = [records.EventRef(t, e) for t in call.tenants() for e in t.events]
    try:
        events = [ref for ref in events if test(ref)]
    except FilterError as err:
        raise _bad(f"The event filter cannot be used: {err}") from err
    events.sort(key=lambda ref: ref.event.id)
    _sort(events, keys, records.EVENT_ATTRIBUTES)

    result = call.results.create(
        EVENT_ITERATOR, call.owner, events, records.EVENT_ATTRIBUTES, fields, lifetime
    )
    return {"strIteratorId": result.id}


def get_record_count(call: Call) -> dict:
    """EventProcessing.GetRecordCount."""
    result = call.results.get(
        call.args.get("strIteratorId"), EVENT_ITERATOR, call.owner, "event iterator"
    )
    return {"PxgRetVal": len(result.refs)}


def get_record_range(call: Call) -> dict:
    """EventProcessing.GetRecordRange: events ``nStart`` up to ``nEnd`` (exclusive)."""
    result = call.results.get(
        call.args.get("strIteratorId"), EVENT_ITERATOR, call.owner, "event iterator"
    )
    start, end = call.integer("nStart"), call.integer("nEnd")
    if start < 0 or end < 0:
        raise _bad("nStart and nEnd must not be negative")
    part = result.refs[start : min(end, len(result.refs))]
    rows = _rows(part, result.table, result.fields)
    return {"pParamsEvents": encode_params({"KLEVP_EVENT_RANGE_ARRAY": rows})}


def release_event_iterator(call: Call) -> dict:
    """EventProcessing.ReleaseIterator."""
    call.results.release(call.args.get("strIteratorId"), EVENT_ITERATOR, call.owner)
    return {}


METHODS: dict[str, Callable[[Call], dict]] = {
    "VServers.GetVServers": get_vservers,
    "VServers.GetVServerInfo": get_vserver_info,
    "VServers2.GetVServerStatistic": get_vserver_statistic,
    "HostGroup.FindHosts": find_hosts,
    "ChunkAccessor.GetItemsCount": get_items_count,
    "ChunkAccessor.GetItemsChunk": get_items_chunk,
    "ChunkAccessor.Release": release_accessor,
    "LicenseKeys.EnumKeys": enum_keys,
    "LicenseKeys.AcquireKeyHosts": acquire_key_hosts,
    "GroupSyncIterator.GetNextItems": get_next_items,
    "GroupSyncIterator.ReleaseIterator": release_sync_iterator,
    "EventProcessingFactory.CreateEventProcessing2": create_event_processing,
    "EventProcessing.GetRecordCount": get_record_count,
    "EventProcessing.GetRecordRange": get_record_range,
    "EventProcessing.ReleaseIterator": release_event_iterator,
}
