"""The positional layouts (kiln/events/layouts.py) are part of the journal's format: every event's current
schema version is listed with exactly its fields, and value lists decode to the events they came from."""

from __future__ import annotations

import dataclasses

import pytest

from kiln.events import registered_types
from kiln.events.base import UPCASTERS, UnknownEventError, decode_values, values_decoder
from kiln.events.catalog import AppPatched
from kiln.events.codec import record_parts
from kiln.events.layouts import LAYOUTS
from kiln.events.streams import StreamTracksDescribed
from kiln.events.tasks import PushCreated


def test_every_event_version_is_listed_with_its_fields_in_order() -> None:
    wrong = {}
    for name, cls in registered_types().items():
        fields = tuple(f.name for f in dataclasses.fields(cls))
        if LAYOUTS.get((name, cls.VERSION)) != fields:
            wrong[(name, cls.VERSION)] = fields
    # an event whose fields changed needs a new VERSION (and an upcaster) and a new entry; existing entries
    # are never edited, or journals written with them would decode wrong
    assert wrong == {}, f"add these to kiln/events/layouts.py (bump VERSION first if the entry exists): {wrong}"
    assert all(type(names) is tuple and all(n.isidentifier() for n in names) for names in LAYOUTS.values())


def test_a_value_list_decodes_to_the_event_it_came_from() -> None:
    ev = PushCreated("default", "app", "p1", "cam", ["v"], [0, 1], "rtmp", "rtmp://h/live", "key", 12.5)
    _entity, type_, version, payload = record_parts(ev)
    back = decode_values(type_, version, list(payload.values()))
    assert back == ev and type(back) is PushCreated and back.spec == ev.spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        back.id = "other"  # type: ignore[misc]
    assert values_decoder(type_, version) is values_decoder(type_, version)  # compiled once


def test_a_list_of_the_wrong_length_or_type_is_refused() -> None:
    with pytest.raises(UnknownEventError):
        decode_values("AppPatched", 1, ["v", "a"])
    with pytest.raises(UnknownEventError):
        decode_values("NoSuchEvent", 1, [])


def test_an_older_versions_list_goes_through_its_upcaster(monkeypatch: pytest.MonkeyPatch) -> None:
    """A layout of an older version than the class's: its names make a map that the upcasters carry on."""
    monkeypatch.setitem(LAYOUTS, ("AppPatched", 0), ("vhost", "name", "conf"))
    monkeypatch.setitem(UPCASTERS, ("AppPatched", 0),
                        lambda p: {"vhost": p["vhost"], "name": p["name"], "config": p["conf"], "patch": {}})
    assert decode_values("AppPatched", 0, ["v", "a", {"x": 1}]) == AppPatched("v", "a", {"x": 1}, {})


def test_a_layout_that_is_not_the_class_fields_decodes_through_the_map(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same version, other names (a field added with a default without a new VERSION): still decoded right."""
    monkeypatch.setitem(LAYOUTS, ("StreamTracksDescribed", 9), ("vhost", "app", "name", "instance"))
    monkeypatch.setattr(StreamTracksDescribed, "VERSION", 9)
    back = decode_values("StreamTracksDescribed", 9, ["v", "a", "s", "i"])
    assert back == StreamTracksDescribed("v", "a", "s", "i", [])
