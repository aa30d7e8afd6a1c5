"""A stream of a dynamic app (made from its vhost's ``*`` template) is served as it comes, as OME's transcoder does
(``TranscoderStream::CreateOutputStreamDynamic``): one output stream of the input's name whose tracks are all the
input's, bypassed, with no playlist of its own and no encoder, whatever the app's output profiles say. A relay
(OVT or RTSP ``<Relay>true</Relay>``) in such an app is served exactly as elsewhere; a stream of an app that is not
dynamic still goes through the profiles."""

from __future__ import annotations

from kiln.media.model import MS, Codec, MediaKind, Packet, Track
from kiln.media.stream.hub import CallbackSubscriber
from kiln.media.stream.live import LiveStream
from kiln.media.stream.registry import awaits_output

# a template that would scale the video, make an AAC->Opus audio, a second output, a thumbnail and its playlists
SCALE = {"name": "scale", "outputStreamName": "${OriginStreamName}",
         "encodes": {"videos": [{"name": "small", "codec": "h264", "width": 160, "height": 90, "bitrate": "100000",
                                 "preset": "faster"}],
                     "audios": [{"name": "opus", "codec": "opus", "bitrate": "64000", "samplerate": 48000,
                                 "channel": 2}],
                     "images": [{"codec": "jpeg", "framerate": 1, "width": 80, "height": 45}]},
         "playlists": [{"name": "abr", "fileName": "abr",
                        "renditions": [{"name": "r", "video": "small", "audio": "opus"}]}]}
LADDER = {"name": "ladder", "outputStreamName": "${OriginStreamName}_ladder",
          "encodes": {"videos": [{"name": "src", "bypass": "true"}]}}
VIDEO = Track(0, MediaKind.VIDEO, Codec.H264, MS, width=320, height=180)
AUDIO = Track(1, MediaKind.AUDIO, Codec.AAC, MS, sample_rate=48000, channels=2)


def _stream(*, dynamic: bool) -> LiveStream:
    stream = LiveStream("default", "app", "s", source_type="Ovt", source_url="ovt://origin/app/s",
                        profiles=[SCALE, LADDER], dynamic=dynamic)
    stream.on_metadata({"videocodecid": 7, "audiocodecid": 10})
    return stream


def _describe(stream: LiveStream) -> None:
    stream.on_track(VIDEO)
    stream.on_track(AUDIO)


def test_a_dynamic_apps_stream_is_one_output_of_its_own_name_with_every_track_bypassed_and_no_encoder() -> None:
    stream = _stream(dynamic=True)
    assert awaits_output(stream, "s") and not awaits_output(stream, "s_ladder")  # the profiles make nothing
    _describe(stream)
    assert stream.started
    try:
        [output] = stream.snapshot().outputs
        assert output.name == "s" and output.playlists == ()  # the publishers' default playlists only
        media = [t for t in output.tracks if t.kind != MediaKind.DATA.value]
        assert [(t.id, t.kind, t.codec, t.bypass, t.width, t.height, t.sample_rate) for t in media] == [
            (0, "Video", "H264", True, 320, 180, 0), (1, "Audio", "AAC", True, 0, 0, 48000)]
        assert stream.transcoder.workers == {} and stream.outputs["s"].images == {}  # no encoder, not an image
        seen: list[Packet] = []
        stream.outputs["s"].hub.subscribe(CallbackSubscriber("test", seen.append), from_keyframe=False)
        sent = [Packet(0, 0, 0, MS, b"\x00\x00\x00\x01\x65", keyframe=True), Packet(1, 0, 0, MS, b"aac")]
        for packet in sent:
            stream.ingest(packet)
        assert all(a is b for a, b in zip(seen, sent, strict=True)) and len(seen) == 2  # the input's packets
    finally:
        stream.end("test over")


def test_a_stream_of_an_app_that_is_not_dynamic_goes_through_the_profiles() -> None:
    stream = _stream(dynamic=False)
    assert awaits_output(stream, "s_ladder")
    _describe(stream)
    try:
        outputs = {o.name: o for o in stream.snapshot().outputs}
        assert sorted(outputs) == ["s", "s_ladder"]
        [small] = [t for t in outputs["s"].tracks if t.name == "small"]
        assert (small.bypass, small.width, small.height) == (False, 160, 90)
        assert [p["name"] for p in outputs["s"].playlists] == ["abr"]
        assert stream.transcoder.workers  # the scale and the Opus encode
    finally:
        stream.end("test over")


def test_a_relay_in_a_dynamic_app_is_served_as_any_relay() -> None:
    """An OVT relay keeps the origin's playlists and gets the app's image encodes (Kiln's thumbnails of a relay),
    dynamic app or not."""
    views = []
    for dynamic in (False, True):
        stream = _stream(dynamic=dynamic)
        origin_playlists = [{"name": "origin", "fileName": "origin", "renditions": []}]
        stream.relay([VIDEO, AUDIO], origin_playlists)
        try:
            assert stream.started
            [output] = stream.snapshot().outputs
            views.append((output.name, output.playlists, [(t.id, t.kind, t.codec, t.bypass) for t in output.tracks],
                          sorted(stream.outputs["s"].images)))
        finally:
            stream.end("test over")
    assert views[0] == views[1]
    assert views[0][1] == ({"name": "origin", "fileName": "origin", "renditions": []},) and views[0][3]
