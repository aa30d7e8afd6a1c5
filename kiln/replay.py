"""Startup replay's inner loop: records as the journal stores them, a list at a time, into the projections.

Replay applies millions of events before Kiln answers its first request, so this loop is written for speed
(and compiled with mypyc where the build can, setup.py): each event type is routed once to the projections
that read it (``replay_handler``), an event is built only when one of them does, value lists of a type's
first-seen version are built by one generated ``fill`` (``values_decoder``), and a projection that has a
``replay_lock`` has it taken once per list rather than once per event (its handlers then do not lock).
What each projection holds afterwards is what applying the events one by one through ``apply`` gives
(tests/unit/projections/test_projection_contract.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kiln.events.base import Event, ValuesDecoder, decode_event, decode_values, plain_layout, values_decoder

log = logging.getLogger("kiln.eventlog")

Handler = Callable[[Event], None]
# the projections that read one event type: (what each calls, the projection's name for the log)
Route = tuple[tuple[Handler, str], ...]
# what replay keeps per event type: its route; the version whose value lists it decodes itself (-1: none, the type
# was first met as a map); for that version, ``values_decoder``'s fill and, when the layout is plain
# (``plain_layout``), the class and field names it fills in place of calling fill
RouteEntry = tuple[Route, Any, ValuesDecoder, "type[Event] | None", tuple[str, ...]]
_new = object.__new__


def _no_fill(values: list[Any]) -> Event:  # pragma: no cover - a type first seen as a map: never called
    raise AssertionError("no fill for a type first stored as a map")


def decode_stored(type_name: str, version: int, payload: Any) -> Event:
    """An event from a stored payload: a map, or a list in its layout's order (kiln.events.layouts)."""
    if type(payload) is list:
        return decode_values(type_name, version, payload)
    return decode_event(type_name, version, payload)


class Replay:
    """Applies lists of stored records ``[seq, time, entity, type, version, payload]`` to ``projections``;
    ``failures`` counts handlers that raised (each logged with its projection, type and seq; the others,
    and the rest of the list, still apply)."""

    def __init__(self, projections: Sequence[Any]) -> None:
        self.projections = tuple(projections)
        self.failures = 0
        self.count = 0
        self._routes: dict[Any, RouteEntry] = {}  # by type name, as stored
        self._locks: list[Any] = []
        for projection in self.projections:
            lock = getattr(projection, "replay_lock", None)
            if lock is not None:
                self._locks.append(lock)
        self._unlocks: list[Any] = self._locks[::-1]

    def _route(self, type_name: Any, version: Any, payload: Any) -> RouteEntry:
        """The first record of a type: decoded even when nothing reads it (so an unknown type still fails
        replay), and its route found."""
        decode_stored(type_name, version, payload)
        route: list[tuple[Handler, str]] = []
        for projection in self.projections:
            replay_handler = getattr(projection, "replay_handler", None)
            handler = replay_handler(type_name) if replay_handler is not None else projection.apply
            if handler is not None:
                route.append((handler, type(projection).__name__))
        listed = type(payload) is list
        plain = plain_layout(type_name, version) if listed else None
        found = (tuple(route), version if listed else -1, values_decoder(type_name, version) if listed else _no_fill,
                 plain[0] if plain is not None else None, plain[1] if plain is not None else ())
        self._routes[type_name] = found
        return found

    def run(self, lists: Iterable[list[list[Any]]]) -> int:
        """Apply every list of ``lists`` (``Journal.read_stored_lists``); the number of records."""
        for rows in lists:
            self.apply(rows)
        return self.count

    def apply(self, rows: list[list[Any]]) -> None:
        """Apply one list of stored records, in order, holding every projection's ``replay_lock``."""
        for lock in self._locks:
            lock.acquire()
        try:
            self._apply(rows)
        finally:
            for lock in self._unlocks:
                lock.release()

    def _apply(self, rows: list[list[Any]]) -> None:
        routes = self._routes
        self.count += len(rows)
        for row in rows:
            type_name: Any = row[3]  # not narrowed: compiled code would refuse a damaged record differently
            found = routes.get(type_name)
            if found is None:
                found = self._route(type_name, row[4], row[5])
            route, fill_version, fill, cls, names = found
            if not route:
                continue
            payload = row[5]
            if type(payload) is list:
                version: Any = row[4]
                if version != fill_version:
                    ev = decode_values(type_name, version, payload)
                elif cls is not None:  # fill's stores, without a Python frame per event
                    ev = _new(cls)
                    fields: dict[str, Any] = ev.__dict__
                    for index, name in enumerate(names):
                        fields[name] = payload[index]
                else:
                    ev = fill(payload)
            else:
                ev = decode_event(type_name, row[4], payload)
            for handler, name in route:
                try:
                    handler(ev)
                except Exception:
                    self.failures += 1
                    log.exception("projection failed projection=%s type=%s seq=%s", name, type_name, row[0])
