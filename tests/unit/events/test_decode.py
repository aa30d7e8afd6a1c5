"""Decoding stored events: the fast path for current payloads builds the same event as the constructor."""

from __future__ import annotations

import dataclasses

import pytest

from kiln.events.base import UnknownEventError, decode_event
from kiln.events.catalog import AppPatched
from kiln.events.codec import record_parts
from kiln.events.streams import StreamTracksDescribed
from kiln.events.tasks import PushCreated, PushSpec


def test_a_current_payload_decodes_to_an_equal_frozen_event() -> None:
    ev = PushCreated("default", "app", "p1", "cam", ["v"], [0, 1], "rtmp", "rtmp://h/live", "key", 12.5)
    _entity, type_, version, payload = record_parts(ev)
    back = decode_event(type_, version, payload)
    assert back == ev and type(back) is PushCreated
    assert back.spec == ev.spec and back.entity == ev.entity
    with pytest.raises(dataclasses.FrozenInstanceError):
        back.id = "other"  # type: ignore[misc]
    assert type(back.spec) is PushSpec and back.spec == PushSpec(**{f.name: getattr(ev, f.name)
                                                                   for f in dataclasses.fields(PushSpec)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        back.spec.url = "other"  # type: ignore[misc]


def test_an_older_payload_gets_its_defaults_and_unknown_keys_are_dropped() -> None:
    described = decode_event("StreamTracksDescribed", 1, {"vhost": "v", "app": "a", "name": "s", "instance": "i"})
    assert described == StreamTracksDescribed("v", "a", "s", "i", [])
    patched = decode_event("AppPatched", 1, {"vhost": "v", "name": "a", "config": {"x": 1}, "gone": True})
    assert patched == AppPatched("v", "a", {"x": 1}) and not hasattr(patched, "gone")


def test_a_payload_missing_a_required_field_is_refused() -> None:
    with pytest.raises(TypeError):
        decode_event("AppPatched", 1, {"vhost": "v", "name": "a"})
    with pytest.raises(UnknownEventError):
        decode_event("NoSuchEvent", 1, {})
