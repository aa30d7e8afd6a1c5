"""Multiplex channels: OME's multiplexChannels JSON and .mux files checked with its texts, and the app's channels."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.domain.errors import Conflict, Forbidden, Invalid, NotFound
from kiln.domain.multiplex import (
    NO_APPLICATION,
    AppMultiplexes,
    ChangeChannelFile,
    CreateChannel,
    DeleteChannel,
    LoadChannelFile,
    MultiplexError,
    RemoveChannelFile,
    multiplex_from_json,
    multiplex_from_xml,
    multiplex_to_xml,
)
from kiln.events.multiplex import Multiplex
from kiln.events.streams import MultiplexDefined, MultiplexRemoved

NOW = 1_700_000_000.0

DOC_FILE = b"""<?xml version="1.0" encoding="UTF-8"?>
<Multiplex>
    <OutputStream><Name>stream</Name></OutputStream>
    <SourceStreams>
        <SourceStream>
            <Name>tv1</Name>
            <Url>stream://default/app/tv1</Url>
            <TrackMap>
                <Track><SourceTrackName>bypass_video</SourceTrackName><NewTrackName>tv1_video</NewTrackName></Track>
                <Track><SourceTrackName>bypass_audio</SourceTrackName><NewTrackName>tv1_audio</NewTrackName>
                  <BitrateConf>128000</BitrateConf></Track>
            </TrackMap>
        </SourceStream>
        <SourceStream>
            <Name>tv2</Name>
            <Url>stream://default/app/tv2</Url>
            <TrackMap>
                <Track><SourceTrackName>bypass_video</SourceTrackName><NewTrackName>tv2_video</NewTrackName></Track>
            </TrackMap>
        </SourceStream>
    </SourceStreams>
    <Playlists>
        <Playlist>
            <Name>LLHLS ABR</Name>
            <FileName>abr</FileName>
            <Rendition><Name>1080p</Name><Video>tv1_video</Video><Audio>tv1_audio</Audio></Rendition>
            <Rendition><Name>720p</Name><Video>tv2_video</Video><Audio>tv1_audio</Audio></Rendition>
        </Playlist>
    </Playlists>
</Multiplex>
"""


def body(**extra: Any) -> dict[str, Any]:
    return {"outputStream": {"name": "abr"}, "sourceStreams": [
        {"name": "a", "url": "stream://default/app/a", "trackMap": [
            {"sourceTrackName": "v", "newTrackName": "a_video"}, {"sourceTrackName": "a", "newTrackName": "a_audio"}]},
        {"name": "b", "url": "stream://default/app/b", "trackMap": [
            {"sourceTrackName": "v", "newTrackName": "b_video", "framerateConf": 30}]}],
        "playlists": [{"name": "ABR", "fileName": "abr", "renditions": [
            {"name": "high", "video": "b_video", "audio": "a_audio"},
            {"name": "low", "video": "a_video", "audio": "a_audio"}]}], **extra}


def test_the_json_as_ome_shows_it_back() -> None:
    mux = multiplex_from_json(body())
    assert mux.to_json() == {
        "outputStream": {"name": "abr", "bypassTranscoder": True},
        "sourceStreams": [
            {"name": "a", "url": "stream://default/app/a", "trackMap": [  # by source track name (OME's std::map)
                {"sourceTrackName": "a", "newTrackName": "a_audio"},
                {"sourceTrackName": "v", "newTrackName": "a_video"}]},
            {"name": "b", "url": "stream://default/app/b", "trackMap": [
                {"sourceTrackName": "v", "newTrackName": "b_video", "framerateConf": 30}]}],
        "playlists": [{"name": "ABR", "fileName": "abr", "options": None, "renditions": [
            {"name": "high", "video": "b_video", "audio": "a_audio"},
            {"name": "low", "video": "a_video", "audio": "a_audio"}]}]}
    assert Multiplex.from_stored(mux.to_stored()) == mux


@pytest.mark.parametrize(("change", "text"), [
    ({"outputStream": None}, "Failed to find outputStream object"),
    ({"outputStream": {}}, "Failed to find outputStream/name object"),
    ({"outputStream": {"name": "../x"}}, "Invalid stream name: [../x]"),
    ({"sourceStreams": None}, "Failed to find sourceStreams object"),
    ({"sourceStreams": [{"url": "stream://default/app/a", "trackMap": []}]},
     "Failed to find sourceStreams/name object"),
    ({"sourceStreams": [{"name": "a", "trackMap": []}]}, "Failed to find sourceStreams/url object"),
    ({"sourceStreams": [{"name": "a", "url": "stream://default/app/a"}]},
     "Failed to find sourceStreams/trackMap object"),
    ({"sourceStreams": [{"name": "a", "url": "nonsense", "trackMap": []}]}, "Failed to parse url: nonsense"),
    ({"sourceStreams": [{"name": "a", "url": "stream://default/a", "trackMap": []}]},
     "Failed to parse url: stream://default/a"),
    ({"sourceStreams": [{"name": "a", "url": "rtmp://h/app/a", "trackMap": []}]},
     "Kiln multiplexes only stream://{vhost}/{app}/{stream} sources: rtmp://h/app/a"),
    ({"sourceStreams": [{"name": "a", "url": "stream://d/app/a", "trackMap": [{"newTrackName": "x"}]}]},
     "Failed to find sourceStreams/trackMap/sourceTrackName object"),
    ({"playlists": [{"fileName": "x"}]}, "Failed to find playlists/name object"),
    ({"playlists": [{"name": "x"}]}, "Failed to find playlists/fileName object"),
    ({"playlists": [{"name": "x", "fileName": "x", "renditions": [{"video": "a_video"}]}]},
     "Failed to find playlists/renditions/name object"),
    ({"playlists": [{"name": "x", "fileName": "x", "renditions": [{"name": "r", "video": "c_video"}]}]},
     "Failed to find video variant name c_video in SourceStream/TrackMap object"),
    ({"playlists": [{"name": "x", "fileName": "x", "renditions": [{"name": "r", "audio": "zz"}]}]},
     "Failed to find audio variant name zz in SourceStream/TrackMap object"),
    ({"sourceStreams": "a"}, "sourceStreams must be an array"),
])
def test_bodies_ome_refuses_with_its_texts(change: dict[str, Any], text: str) -> None:
    with pytest.raises(MultiplexError) as refused:
        multiplex_from_json(body(**change))
    assert refused.value.text == text


def test_texts_a_mux_file_cannot_carry_are_refused() -> None:
    """A NUL or CR in a playlist's fileName was accepted and written into a .mux file that no longer read back
    (found by tests/fuzz/test_fuzz_multiplex.py)."""
    for text in ("a\x00b", "a\rb", "a\x1fb"):
        with pytest.raises(MultiplexError) as refused:
            multiplex_from_json(body(playlists=[{"name": "ABR", "fileName": text}]))
        assert refused.value.text == f"playlists/fileName must not hold control characters: {text!r}"
    with pytest.raises(MultiplexError):
        multiplex_from_xml(DOC_FILE.replace(b"<FileName>abr</FileName>", b"<FileName>a&#13;b</FileName>"))


def test_a_body_that_is_not_an_object() -> None:
    with pytest.raises(Invalid) as refused:
        multiplex_from_json([body()])
    assert refused.value.text == "Invalid request body"


def test_the_documented_file_is_read_and_written_back_as_ome_saves_it() -> None:
    mux = multiplex_from_xml(DOC_FILE)
    assert mux.name == "stream" and mux.bypass_transcoder
    assert [s.target for s in mux.sources] == [("default", "app", "tv1"), ("default", "app", "tv2")]
    assert [(m.source_track_name, m.new_track_name, m.bitrate_conf) for m in mux.sources[0].track_map] == [
        ("bypass_audio", "tv1_audio", 128000), ("bypass_video", "tv1_video", 0)]
    xml = multiplex_to_xml(mux)
    assert b"<BypassTranscoder>true</BypassTranscoder>" in xml and b"<BitrateConf>128000</BitrateConf>" in xml
    assert b"<Options />" in xml  # OME always writes the Options element
    assert multiplex_from_xml(xml) == mux
    assert multiplex_from_xml(multiplex_to_xml(multiplex_from_json(body()))) == multiplex_from_json(body())


@pytest.mark.parametrize(("data", "text"), [
    (b"<Multiplex>", "Failed to load schedule file: no element found: line 1, column 11"),
    (b"<Schedule/>", "Failed to find root node"),
    (b"<Multiplex/>", "Failed to find OutputStream node"),
    (b"<Multiplex><OutputStream/></Multiplex>", "Failed to find Name node"),
    (b"<Multiplex><OutputStream><Name>x</Name></OutputStream><SourceStreams><SourceStream><Name>a</Name>"
     b"</SourceStream></SourceStreams></Multiplex>", "Failed to find SourceStreams/SourceStream/Url node"),
    (b"<Multiplex><OutputStream><Name>x</Name></OutputStream><Playlists><Playlist><Name>p</Name><FileName>p"
     b"</FileName><Rendition><Name>r</Name><Video>v</Video></Rendition></Playlist></Playlists></Multiplex>",
     "Failed to find video variant name v in SourceStream/TrackMap/NewTrackName"),
])
def test_files_ome_refuses(data: bytes, text: str) -> None:
    with pytest.raises(MultiplexError) as refused:
        multiplex_from_xml(data)
    assert refused.value.text == text


def test_the_channel_set_decides_as_omes_controller() -> None:
    muxes = AppMultiplexes("default", "app", enabled=False)
    with pytest.raises(Invalid):  # the body is checked before the provider
        muxes.decide(CreateChannel("x"), NOW)
    with pytest.raises(Forbidden):
        muxes.decide(CreateChannel(body()), NOW)
    with pytest.raises(NotFound) as missing:
        muxes.decide(DeleteChannel("abr"), NOW)
    assert missing.value.text == NO_APPLICATION
    muxes.enabled = True
    with pytest.raises(Conflict) as taken:
        muxes.decide(CreateChannel(body(), frozenset({"abr"})), NOW)
    assert taken.value.text == "Stream 'abr' already exists"
    [defined] = muxes.decide(CreateChannel(body()), NOW)
    assert isinstance(defined, MultiplexDefined) and defined.source == "api" and defined.name == "abr"
    muxes.apply(defined)
    assert muxes.channel("abr") == multiplex_from_json(body())
    with pytest.raises(Conflict):
        muxes.decide(LoadChannelFile(multiplex_from_json(body())), NOW)
    with pytest.raises(NotFound) as unknown:
        muxes.decide(DeleteChannel("nope"), NOW)
    assert unknown.value.text == "Could not get the multiplex stream <nope>"
    [removed] = muxes.decide(DeleteChannel("abr"), NOW)
    assert isinstance(removed, MultiplexRemoved)
    muxes.apply(removed)
    assert muxes.channels == {}
    [loaded] = muxes.decide(LoadChannelFile(multiplex_from_xml(DOC_FILE)), NOW)
    assert isinstance(loaded, MultiplexDefined) and loaded.source == "file" and loaded.name == "stream"
    muxes.apply(loaded)
    changed = multiplex_from_xml(DOC_FILE.replace(b"<Name>720p</Name>", b"<Name>540p</Name>"))
    [redefined] = muxes.decide(ChangeChannelFile(changed), NOW)
    muxes.apply(redefined)
    assert muxes.channel("stream") == changed
    with pytest.raises(NotFound):
        muxes.decide(ChangeChannelFile(multiplex_from_json(body())), NOW)
    [gone] = muxes.decide(RemoveChannelFile("stream"), NOW)
    assert isinstance(gone, MultiplexRemoved) and gone.reason == "file deleted"
