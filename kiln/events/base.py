"""Immutable domain events and their registry.

Every event is a frozen dataclass with a ``TYPE`` name and a schema ``VERSION``. The journal stores
``(entity, type, version, payload)``; this module turns events into those parts and back, and is
the only place that knows which class a stored type name means. When an event's shape changes,
bump its VERSION and add an upcaster in ``UPCASTERS`` so old journals still replay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

_REGISTRY: dict[str, type[Event]] = {}

# (type, stored version) -> function turning that version's payload into the next version's
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


class UnknownEventError(ValueError):
    """A journal record names an event type this Kiln does not know."""


@dataclasses.dataclass(frozen=True)
class Event:
    """Base of all events. Subclasses set TYPE (unique) and VERSION."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    @property
    def entity(self) -> str:  # pragma: no cover - every subclass overrides
        raise TypeError(f"{type(self).__name__} does not name its entity")

    def payload(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


EventT = TypeVar("EventT", bound=type[Event])


def event(cls: EventT) -> EventT:
    """Class decorator: register an event class under its TYPE (defaults to the class name)."""
    if not cls.__dict__.get("TYPE"):
        cls.TYPE = cls.__name__
    if cls.TYPE in _REGISTRY:
        raise TypeError(f"duplicate event type {cls.TYPE}")
    _REGISTRY[cls.TYPE] = cls
    return cls


def _plain(value: object) -> object:
    """A field value as msgpack stores it: tuples become lists, containers are copied."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def decode_event(type_name: str, version: int, payload: dict[str, Any]) -> Event:
    """Rebuild an event from a stored record, upcasting older schema versions."""
    current = _CURRENT.get(type_name)
    if current is not None and version == current[0].VERSION and payload.keys() == current[1]:
        # the common case, a payload written by this schema version: replay decodes millions of these,
        # so the frozen instance's __dict__ is filled as the generated __init__ would, at a fraction of its cost
        ev = _new(current[0])
        ev.__dict__.update(payload)
        return ev
    return _decode_other(type_name, version, payload)


def _decode_other(type_name: str, version: int, payload: dict[str, Any]) -> Event:
    cls = _REGISTRY.get(type_name)
    if cls is None:
        raise UnknownEventError(f"unknown event type {type_name!r}")
    while version < cls.VERSION:
        upcast = UPCASTERS.get((type_name, version))
        if upcast is None:
            raise UnknownEventError(f"no upcaster for {type_name} v{version}")
        payload = upcast(payload)
        version += 1
    names = frozenset(f.name for f in dataclasses.fields(cls))
    if not hasattr(cls, "__post_init__"):  # an event that checks itself always goes through its __init__
        _CURRENT[type_name] = (cls, names)
    return cls(**{k: v for k, v in payload.items() if k in names})


_new = object.__new__
# type name -> (class, its field names), filled on first decode of each type
_CURRENT: dict[str, tuple[type[Event], frozenset[str]]] = {}


def registered_types() -> dict[str, type[Event]]:
    return dict(_REGISTRY)
