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

from kiln.events.layouts import LAYOUTS

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
        names = _FIELD_NAMES.get(type(self))
        if names is None:  # ``dataclasses.fields`` filters the class's fields on every call: once per class
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in dataclasses.fields(self))
        return {name: _plain(getattr(self, name)) for name in names}


EventT = TypeVar("EventT", bound=type[Event])


def event(cls: EventT) -> EventT:
    """Class decorator: register an event class under its TYPE (defaults to the class name)."""
    if not cls.__dict__.get("TYPE"):
        cls.TYPE = cls.__name__
    if cls.TYPE in _REGISTRY:
        raise TypeError(f"duplicate event type {cls.TYPE}")
    _REGISTRY[cls.TYPE] = cls
    return cls


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}
_SCALARS = frozenset((str, int, float, bool, type(None)))


def _plain(value: object) -> object:
    """A field value as msgpack stores it: tuples become lists, containers are copied."""
    if type(value) in _SCALARS:  # most fields: one set lookup, not two isinstance checks against unions
        return value
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


def decode_values(type_name: str, version: int, values: list[Any]) -> Event:
    """Rebuild an event from a payload stored as a list of values in the layout of ``(type_name, version)``
    (``kiln.events.layouts``), upcasting older schema versions."""
    names = LAYOUTS.get((type_name, version))
    if names is None or len(names) != len(values):
        raise UnknownEventError(f"no layout of {type_name} v{version} with {len(values)} fields")
    return values_decoder(type_name, version)(values)


ValuesDecoder = Callable[[list[Any]], Event]


def values_decoder(type_name: str, version: int) -> ValuesDecoder:
    """What rebuilds events of ``(type_name, version)`` from value lists of its layout's length (the journal's
    reader checks the length). Replay decodes millions: when the layout is the current class's fields, the
    instance's ``__dict__`` is filled from one dict display, as the generated ``__init__`` would, at a
    fraction of its cost; any other version goes through ``decode_event`` (upcasters)."""
    found = _DECODERS.get((type_name, version))
    if found is not None:
        return found
    names = LAYOUTS.get((type_name, version))
    cls = _REGISTRY.get(type_name)
    if names is None or cls is None:
        raise UnknownEventError(f"unknown event type {type_name!r} v{version}")
    if plain_layout(type_name, version) is not None:
        found = _fill_from_values(cls, names)
    else:
        def found(values: list[Any]) -> Event:
            return decode_event(type_name, version, dict(zip(names, values, strict=True)))
    _DECODERS[(type_name, version)] = found
    return found


def plain_layout(type_name: str, version: int) -> tuple[type[Event], tuple[str, ...]] | None:
    """(class, field names) when value lists of ``(type_name, version)`` are exactly the current class's fields
    in order and the class checks nothing itself (no ``__post_init__``): then an event is the class's instance
    whose ``__dict__`` maps each name to its value, as ``values_decoder``'s fill makes it (kiln.replay does
    the same stores in compiled code); None: another version or shape (``values_decoder`` upcasts)."""
    names = LAYOUTS.get((type_name, version))
    cls = _REGISTRY.get(type_name)
    if names is None or cls is None or version != cls.VERSION or hasattr(cls, "__post_init__") \
            or tuple(f.name for f in dataclasses.fields(cls)) != names:
        return None
    return cls, names


def _fill_from_values(cls: type[Event], names: tuple[str, ...]) -> ValuesDecoder:
    """``lambda values: <a cls whose __dict__ is {names[0]: values[0], ...}>``, compiled once per class (a store
    per field with constant keys; as dataclasses compile ``__init__``). Names are identifiers (event fields)."""
    if not all(name.isidentifier() for name in names):
        raise TypeError(f"{cls.__name__} has a field that is not an identifier")
    # one store per field into the new instance's __dict__: 30 % cheaper than updating it from a dict display
    stores = "".join(f"    d[{name!r}] = values[{index}]\n" for index, name in enumerate(names))
    source = f"def fill(values):\n    ev = _new(cls)\n    d = ev.__dict__\n{stores}    return ev\n"
    scope: dict[str, Any] = {"_new": _new, "cls": cls}
    exec(source, scope)  # noqa: S102 - source built from the class's own field names, checked above
    fill: ValuesDecoder = scope["fill"]
    return fill


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
# (type name, version) -> what rebuilds its events from stored value lists (values_decoder)
_DECODERS: dict[tuple[str, int], ValuesDecoder] = {}


def registered_types() -> dict[str, type[Event]]:
    return dict(_REGISTRY)
