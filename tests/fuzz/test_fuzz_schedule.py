"""Fuzz targets for scheduled channels' schedules: ``.sch`` files (OME's sample and generated documents,
mutated bytes, entity bombs, unknown encodings) and scheduledChannels JSON bodies (generated values).

Property: a schedule is read or refused with a ``ScheduleError`` (an ``Invalid``: 400 through the API, a
logged, skipped file at start), never another exception, within tests/fuzz/budget.py's bounds; a schedule
read from JSON is written as a ``.sch`` file that reads back as the same schedule.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

from hypothesis import given
from hypothesis import strategies as st

from kiln.domain.errors import Invalid
from kiln.domain.schedule import schedule_from_json, schedule_from_xml, schedule_to_xml
from tests.fuzz.budget import bounded, fuzz
from tests.fuzz.strategies import mutated

NOW_MS = 1_700_000_000_000
SAMPLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<Schedule>
    <Stream><Name>tv1</Name><BypassTranscoder>false</BypassTranscoder><VideoTrack>true</VideoTrack>
        <AudioTrack>true</AudioTrack></Stream>
    <FallbackProgram><Item url="file://sample.mp4" start="0" duration="60000" /></FallbackProgram>
    <Program name="1" scheduled="2023-09-27T13:21:15.123+09:00" repeat="true">
        <Item url="file://sample.mp4" duration="60000" /></Program>
    <Program name="2" scheduled="2024-03-14T15:10:0.0+09:00" repeat="false">
        <Item url="file://sample.mp4" start="0" duration="60000" />
        <Item url="file://sample.mp4" start="60000" duration="120000" /></Program>
</Schedule>"""
BOMB = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaaaaaaaa">'
        + b"".join(b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">' % ((c,) + (c - 1,) * 8) for c in range(98, 106))
        + b']><Schedule><Stream><Name>&i;</Name></Stream></Schedule>')
ODD_ENCODING = b'<?xml version="1.0" encoding="x-kiln-none"?><Schedule><Stream/></Schedule>'

TIMES = st.one_of(st.sampled_from(["2023-11-13T20:57:00.000+09", "2022-03-14T15:10:0.0+09:00", "2099-01-01T00:00:00Z",
                                   "1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "2023-02-31T00:00:00Z",
                                   "2023-13-01T00:00:00Z", "", "now", "2023-11-13T20:57:00.000+99:99"]),
                  st.text(max_size=30))
URLS = st.one_of(st.sampled_from(["file://a.mp4", "file:///abs.mp4", "FILE://A.MP4", "file://", "file://../x",
                                  "stream://default/app/s", "http://h/x", "", "file://é\u202e.mp4"]),
                 st.text(max_size=20))
INTS = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([-1, 0, 1, 999, 1000, 1001, 10**12, 10**12 + 1]))
ANY = st.recursive(st.none() | st.booleans() | INTS | st.floats(allow_nan=False) | st.text(max_size=8),
                   lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                   max_leaves=6)


def _item(draw: st.DrawFn) -> Any:
    item: dict[str, Any] = {"url": draw(URLS)} if draw(st.integers(0, 9)) else {}
    for key, values in (("start", INTS), ("duration", INTS)):
        if draw(st.booleans()):
            item[key] = draw(st.one_of(values, ANY))
    return item if draw(st.integers(0, 19)) else draw(ANY)


@st.composite
def bodies(draw: st.DrawFn) -> Any:
    body: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        body["stream"] = {"name": draw(st.one_of(st.sampled_from(["tv1", "", "a/b", "..", "a\x00b", "é"]),
                                                 st.text(max_size=8), ANY))}
        for key in ("bypassTranscoder", "videoTrack", "audioTrack", "audioMap"):
            if draw(st.integers(0, 3)) == 0:
                body["stream"][key] = draw(st.one_of(st.booleans(), ANY))
    if draw(st.booleans()):
        body["fallbackProgram"] = {"items": [_item(draw) for _ in range(draw(st.integers(0, 3)))]} \
            if draw(st.integers(0, 9)) else draw(ANY)
    if draw(st.booleans()):
        body["programs"] = [{"name": draw(st.one_of(st.text(max_size=6), ANY)), "scheduled": draw(TIMES),
                             "repeat": draw(st.one_of(st.booleans(), ANY)),
                             "items": [_item(draw) for _ in range(draw(st.integers(0, 3)))]}
                            for _ in range(draw(st.integers(0, 3)))]
    return body if draw(st.integers(0, 19)) else draw(ANY)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    def items() -> str:
        out = ""
        for _ in range(draw(st.integers(0, 3))):
            attrs = {k: draw(v) for k, v in (("url", URLS), ("start", INTS.map(str)), ("duration", INTS.map(str)))
                     if draw(st.integers(0, 4))}
            out += "<Item " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>"
        return out

    repeats = st.sampled_from(["true", "false", "yes", "0", ""])
    programs = "".join(f"<Program name={quoteattr(draw(st.text(max_size=4)))} scheduled={quoteattr(draw(TIMES))} "
                       f"repeat={quoteattr(draw(repeats))}>{items()}</Program>"
                       for _ in range(draw(st.integers(0, 3))))
    fallback = f"<FallbackProgram>{items()}</FallbackProgram>" if draw(st.booleans()) else ""
    return f"<Schedule><Stream><Name>x</Name></Stream>{fallback}{programs}</Schedule>".encode()


@fuzz(2.0)
@given(st.one_of(documents(), mutated([SAMPLE, BOMB, ODD_ENCODING], max_mutations=4)))
def test_sch_files(data: bytes) -> None:
    with bounded():
        try:
            schedule = schedule_from_xml(data, "tv1")
        except Invalid:
            return
        assert schedule_from_xml(schedule_to_xml(schedule), "tv1") == schedule


@fuzz(2.0)
@given(bodies())
def test_json_bodies(body: Any) -> None:
    with bounded():
        try:
            schedule = schedule_from_json(body, NOW_MS)
        except Invalid:
            return
        assert schedule_from_xml(schedule_to_xml(schedule), schedule.name) == schedule
