"""sendEvent bodies and what the LL-HLS control refuses before anything is journaled."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.media.publish.llhls.control import LlhlsControl
from kiln.media.publish.llhls.events import EventBodyError, parse_event
from kiln.media.publish.llhls.publisher import LlhlsPublisher
from kiln.media.stream.live import LiveStream

ID3 = {"eventFormat": "id3v2", "events": [{"frameType": "TXXX", "info": "k", "data": "v"}]}


@pytest.mark.parametrize(("body", "text"), [
    (None, "eventFormat(string) and events(array) are required"),
    ({"eventFormat": "ID3v2", "events": []}, "eventFormat(string) and events(array) are required"),
    ({"eventFormat": "x", "events": [{}]}, "eventFormat is not supported: [x]"),
    ({"eventFormat": "id3v2", "events": [{"frameType": "APIC"}]}, "frameType is not supported: [APIC]"),
    ({"eventFormat": "cue", "events": [{"cueType": "up"}]}, "cueType is not supported: [up]"),
    ({**ID3, "eventType": "subtitle"}, "eventType is not supported: [subtitle]"),
])
def test_bad_bodies_are_refused_with_omes_texts(body: Any, text: str) -> None:
    with pytest.raises(EventBodyError) as caught:
        parse_event(body)
    assert caught.value.text == text and isinstance(caught.value, ValueError)


def test_a_stream_without_llhls_output_takes_no_event_and_cannot_be_concluded() -> None:
    control = LlhlsControl(LlhlsPublisher(stats=None))
    live = LiveStream("default", "app", "s", source_type="Rtmp", source_url="", profiles=[])
    failed = "Internal Server Error - Could not inject event: [default/app/s]"
    assert control.event_refusal(live, parse_event(ID3)).result(0) == failed
    cue = parse_event({"eventFormat": "cue", "events": [{"cueType": "out"}]})
    assert control.event_refusal(live, cue).result(0) == f"{failed} (cue markers are not supported)"
    assert control.can_conclude(live).result(0) is False
    assert control.conclude(live).result(0) == 0
