"""Fuzz targets for multiplex channels' profiles: ``.mux`` files (OME's documented sample and generated documents,
mutated bytes, entity bombs, unknown encodings) and multiplexChannels JSON bodies (generated values).

Property: a profile is read or refused with an ``Invalid`` (400 through the API, a logged, skipped file),
never another exception, within tests/fuzz/budget.py's bounds; a profile read from JSON is written as a ``.mux``
file that reads back as the same profile, and so is one read from a file.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from hypothesis import given
from hypothesis import strategies as st

from kiln.domain.errors import Invalid
from kiln.domain.multiplex import multiplex_from_json, multiplex_from_xml, multiplex_to_xml
from kiln.events.multiplex import Multiplex
from tests.fuzz.budget import bounded, fuzz
from tests.fuzz.strategies import mutated

SAMPLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<Multiplex>
    <OutputStream><Name>stream</Name><BypassTranscoder>true</BypassTranscoder></OutputStream>
    <SourceStreams>
        <SourceStream><Name>tv1</Name><Url>stream://default/app/tv1</Url><TrackMap>
            <Track><SourceTrackName>bypass_video</SourceTrackName><NewTrackName>tv1_video</NewTrackName>
              <BitrateConf>2000000</BitrateConf><FramerateConf>30</FramerateConf></Track>
            <Track><SourceTrackName>bypass_audio</SourceTrackName><NewTrackName>tv1_audio</NewTrackName></Track>
        </TrackMap></SourceStream>
    </SourceStreams>
    <Playlists><Playlist><Name>LLHLS ABR</Name><FileName>abr</FileName>
        <Options><WebRtcAutoAbr>true</WebRtcAutoAbr><HLSChunklistPathDepth>0</HLSChunklistPathDepth></Options>
        <Rendition><Name>1080p</Name><Video>tv1_video</Video><Audio>tv1_audio</Audio>
          <VideoIndexHint>0</VideoIndexHint></Rendition>
    </Playlist></Playlists>
</Multiplex>"""
BOMB = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaaaaaaaa">'
        + b"".join(b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">' % ((c,) + (c - 1,) * 8) for c in range(98, 106))
        + b']><Multiplex><OutputStream><Name>&i;</Name></OutputStream></Multiplex>')
ODD_ENCODING = b'<?xml version="1.0" encoding="x-kiln-none"?><Multiplex><OutputStream/></Multiplex>'

NAMES = st.one_of(st.sampled_from(["tv1", "", "a/b", "..", "a\x00b", "é", " x "]), st.text(max_size=8))
URLS = st.one_of(st.sampled_from(["stream://default/app/s", "STREAM://d/a/s", "stream://d/a", "stream://d//s",
                                  "stream://d/a/s/x", "rtmp://h/a/s", "", "nonsense", "stream://é/\u202e/s"]),
                 st.text(max_size=20))
INTS = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([-1, 0, 1, 30]))
ANY = st.recursive(st.none() | st.booleans() | INTS | st.floats(allow_nan=False) | st.text(max_size=8),
                   lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                   max_leaves=6)
TRACKS = st.sampled_from(["v", "a", "x", ""])


@st.composite
def bodies(draw: st.DrawFn) -> Any:
    def maybe(value: st.SearchStrategy[Any]) -> Any:
        return draw(value) if draw(st.integers(0, 9)) else draw(ANY)

    body: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        body["outputStream"] = {"name": maybe(NAMES)}
        if draw(st.booleans()):
            body["outputStream"]["bypassTranscoder"] = maybe(st.booleans())
    if draw(st.integers(0, 9)):
        body["sourceStreams"] = [
            {"name": maybe(NAMES), "url": maybe(URLS),
             "trackMap": [{"sourceTrackName": maybe(TRACKS), "newTrackName": maybe(TRACKS),
                           "bitrateConf": maybe(INTS), "framerateConf": maybe(INTS)}
                          for _ in range(draw(st.integers(0, 3)))]}
            for _ in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        body["playlists"] = [
            {"name": maybe(NAMES), "fileName": maybe(NAMES),
             "options": maybe(st.fixed_dictionaries({}, optional={
                 "webrtcAutoAbr": st.booleans(), "hlsChunklistPathDepth": INTS, "enableTsPackaging": st.booleans()})),
             "renditions": [{"name": maybe(NAMES), "video": maybe(TRACKS), "audio": maybe(TRACKS),
                             "videoIndexHint": maybe(INTS)} for _ in range(draw(st.integers(0, 3)))]}
            for _ in range(draw(st.integers(0, 2)))]
    return body if draw(st.integers(0, 19)) else draw(ANY)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    def text(values: st.SearchStrategy[str]) -> str:
        return escape(draw(values).replace("\x00", ""))

    tracks = "".join(f"<Track><SourceTrackName>{text(TRACKS)}</SourceTrackName><NewTrackName>{text(TRACKS)}"
                     f"</NewTrackName><BitrateConf>{text(st.text(max_size=4))}</BitrateConf></Track>"
                     for _ in range(draw(st.integers(0, 3))))
    sources = "".join(f"<SourceStream><Name>{text(NAMES)}</Name><Url>{text(URLS)}</Url><TrackMap>{tracks}"
                      f"</TrackMap></SourceStream>" for _ in range(draw(st.integers(0, 2))))
    renditions = "".join(f"<Rendition><Name>r</Name><Video>{text(TRACKS)}</Video>"
                         f"<AudioIndexHint>{text(st.text(max_size=3))}</AudioIndexHint></Rendition>"
                         for _ in range(draw(st.integers(0, 2))))
    playlists = f"<Playlists><Playlist><Name>p</Name><FileName>f</FileName>{renditions}</Playlist></Playlists>" \
        if draw(st.booleans()) else ""
    return (f"<Multiplex><OutputStream><Name>{text(NAMES)}</Name></OutputStream><SourceStreams>{sources}"
            f"</SourceStreams>{playlists}</Multiplex>").encode()


def _round_trips(mux: Multiplex) -> None:
    assert multiplex_from_xml(multiplex_to_xml(mux)) == mux
    assert Multiplex.from_stored(mux.to_stored()) == mux


@fuzz(2.0)
@given(st.one_of(documents(), mutated([SAMPLE, BOMB, ODD_ENCODING], max_mutations=4)))
def test_mux_files(data: bytes) -> None:
    with bounded():
        try:
            mux = multiplex_from_xml(data)
        except Invalid:
            return
        _round_trips(mux)


@fuzz(2.0)
@given(bodies())
def test_json_bodies(body: Any) -> None:
    with bounded():
        try:
            mux = multiplex_from_json(body)
        except Invalid:
            return
        _round_trips(mux)
