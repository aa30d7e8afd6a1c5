"""What a WebRTC viewer is sent: playable tracks, playlists' renditions, and never video with B-frames."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from kiln.media.model import MS, Codec, MediaKind, Packet, Track
from kiln.media.publish.webrtc.abr import AutoAbr
from kiln.media.publish.webrtc.choose import (
    DEFAULT_PLAYLIST,
    NotPlayable,
    Rendition,
    choose,
    rendition_json,
    video_warning,
)
from kiln.media.publish.webrtc.publisher import PlayRefused, Target, WebRtcPublisher
from kiln.media.stream.live import LiveStream
from kiln.media.stream.registry import StreamRegistry

TB = Fraction(1, 90000)
H264 = Track(0, MediaKind.VIDEO, Codec.H264, TB, name="bypass_video", width=320, height=180)
LOW = Track(1, MediaKind.VIDEO, Codec.H264, TB, name="low", width=160, height=90, bitrate_conf=150_000)
H265 = Track(2, MediaKind.VIDEO, Codec.H265, TB, name="hevc")
AAC = Track(3, MediaKind.AUDIO, Codec.AAC, Fraction(1, 48000), name="aac_audio")
OPUS = Track(4, MediaKind.AUDIO, Codec.OPUS, Fraction(1, 48000), name="opus_audio", bitrate_conf=64000)


def no_bframes(track: Track) -> bool:
    return False


def test_default_playlist_is_first_playable_video_and_opus() -> None:
    picked = choose([H265, H264, AAC, OPUS], [], None, no_bframes)
    assert picked.renditions == (Rendition(DEFAULT_PLAYLIST, H264, OPUS),)
    assert any("H265" in why for why in picked.left_out) and any("AAC" in why for why in picked.left_out)


def test_video_with_bframes_is_never_passed_through() -> None:
    picked = choose([H264, LOW, OPUS], [], None, lambda t: t is H264)
    assert picked.renditions[0].video is LOW  # the profile's encode without B-frames
    with pytest.raises(NotPlayable, match="B-frames"):
        choose([H264], [], None, lambda t: True)


def test_video_warning_only_when_no_video_track_can_be_sent() -> None:
    warning = video_warning([H264, OPUS], lambda t: True)
    assert warning is not None and "no video" in warning and "B-frames" in warning and "bypass_video" in warning
    assert "BFrames" in warning  # says what to change in the output profile
    assert video_warning([H264, LOW, OPUS], lambda t: t is H264) is None  # an encode without B-frames exists
    assert video_warning([H264, OPUS], no_bframes) is None
    assert video_warning([OPUS], lambda t: True) is None  # no video at all: nothing is missing
    assert "H265" in (video_warning([H265], no_bframes) or "")


def test_audio_only_when_nothing_else_plays() -> None:
    picked = choose([H265, OPUS], [], None, no_bframes)
    assert picked.renditions == (Rendition(DEFAULT_PLAYLIST, None, OPUS),)


def test_playlist_renditions_take_the_opus_track_for_aac() -> None:
    playlist = {"fileName": "abr", "options": {"webRtcAutoAbr": "true"},
                "renditions": [{"name": "high", "video": "bypass_video", "audio": "aac_audio"},
                               {"name": "low", "video": "low", "audio": "aac_audio"}]}
    picked = choose([H264, LOW, AAC, OPUS], [playlist], "abr", no_bframes)
    assert [(r.name, r.video, r.audio) for r in picked.renditions] == [("high", H264, OPUS), ("low", LOW, OPUS)]
    assert picked.auto is True


def test_unknown_playlist_names_the_known_ones() -> None:
    with pytest.raises(NotPlayable, match=r"no playlist 'x' .*playlists: abr"):
        choose([H264, OPUS], [{"fileName": "abr", "renditions": []}], "x", no_bframes)


def test_rendition_json_is_what_ovenplayer_reads() -> None:
    out = rendition_json(Rendition("low", LOW, OPUS))
    assert out["name"] == "low"
    assert out["video_track"]["video"]["height"] == 90 and out["video_track"]["video"]["bitrate"] == 150_000
    assert out["audio_track"]["bitrate"] == 64000


def test_auto_abr_follows_the_estimate_and_goes_up_only_when_it_holds() -> None:
    high, low = Rendition("high", H264, OPUS), Rendition("low", LOW, OPUS)
    rates = {"high": 900_000, "low": 150_000}
    abr = AutoAbr((high, low), lambda r: rates[r.name])
    assert abr.decide(high, None) is None                 # no estimate yet: stay
    assert abr.decide(high, 400_000) is low               # down at once
    assert abr.decide(low, 2_000_000) is None             # one good report is not enough to go up
    assert abr.decide(low, 2_000_000) is high
    assert abr.decide(high, 2_000_000) is None
    assert abr.target(10_000) is low                      # nothing fits: the lowest


def test_a_rendition_picks_a_simulcast_layer_by_video_index_hint() -> None:
    """A bypassed simulcast input is one group of same-named tracks (largest first); VideoIndexHint picks one."""
    layers = [Track(i, MediaKind.VIDEO, Codec.H264, TB, name="src", width=960 >> i, height=540 >> i) for i in range(3)]
    playlist = {"fileName": "sim", "renditions": [
        {"name": "full", "video": "src", "audio": "opus_audio"},
        {"name": "half", "video": "src", "videoIndexHint": "1", "audio": "opus_audio"},
        {"name": "quarter", "video": "src", "videoIndexHint": 2, "audio": "opus_audio"},
        {"name": "none", "video": "src", "videoIndexHint": 3, "audio": "opus_audio"}]}
    picked = choose([*layers, OPUS], [playlist], "sim", no_bframes)
    assert [(r.name, r.video) for r in picked.renditions[:3]] == [("full", layers[0]), ("half", layers[1]),
                                                                  ("quarter", layers[2])]
    assert picked.renditions[3] == Rendition("none", None, OPUS)  # no 4th layer: its video is left out
    assert any("'none'" in why for why in picked.left_out)


def test_create_default_playlist_false_plays_only_named_playlists() -> None:
    """OME's Publishers/WebRTC/CreateDefaultPlaylist false: a URL naming no playlist has nothing to play."""
    with pytest.raises(NotPlayable, match="CreateDefaultPlaylist is false"):
        choose([H264, OPUS], [], None, no_bframes, create_default=False)
    with pytest.raises(NotPlayable, match="CreateDefaultPlaylist is false"):
        choose([H264, OPUS], [], DEFAULT_PLAYLIST, no_bframes, create_default=False)
    named = {"fileName": "abr", "renditions": [{"name": "high", "video": "bypass_video", "audio": "opus_audio"}]}
    picked = choose([H264, OPUS], [named], "abr", no_bframes, create_default=False)
    assert [(r.name, r.video, r.audio) for r in picked.renditions] == [("high", H264, OPUS)]
    own = {"fileName": DEFAULT_PLAYLIST, "renditions": [{"name": "mine", "video": "bypass_video",
                                                         "audio": "opus_audio"}]}
    assert choose([H264, OPUS], [own], None, no_bframes, create_default=False).renditions[0].name == "mine"


class _Stats:
    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None: ...

    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None: ...


TARGET = Target("default", "app", "cam", None, ("127.0.0.1", 5000), "ws://edge/app/cam")
WEBRTC_APP = {"publishers": {"webrtc": {}}}


def _registry(dynamic: bool) -> tuple[StreamRegistry, LiveStream]:
    """An H.264 + AAC stream in an app whose one profile bypasses both (a dynamic app's or not)."""
    profile = {"name": "bypass", "outputStreamName": "${OriginStreamName}",
               "encodes": {"videos": [{"name": "v", "bypass": "true"}], "audios": [{"name": "a", "bypass": "true"}]}}
    registry = StreamRegistry()
    live = LiveStream("default", "app", "cam", source_type="Ovt", source_url="", profiles=[profile], dynamic=dynamic)
    live.on_metadata({"videocodecid": 7, "audiocodecid": 10})
    live.on_track(replace(H264, id=0))
    live.on_track(replace(AAC, id=1))
    registry.add(live)
    return registry, live


@pytest.mark.parametrize("dynamic", [False, True])
def test_aac_audio_is_left_out_with_advice_an_operator_can_follow(dynamic: bool) -> None:
    """Through a profile, an Opus encode is the fix; a stream served as it comes (a dynamic app's stream, a relay)
    has no profile to add it to, so the viewer and the log say its source must send Opus (OME only logs "Ignore
    unsupported codec(AAC)" and plays the video)."""
    registry, live = _registry(dynamic)
    try:
        _live, _output, picked = WebRtcPublisher(registry, _Stats(), None).choice(TARGET, WEBRTC_APP)
        assert picked.renditions[0].video is not None and picked.renditions[0].audio is None
        [why] = [w for w in picked.left_out if w.startswith("audio")]
        assert "AAC" in why
        if dynamic:
            assert "served as it comes" in why and "its source must send Opus" in why
            assert "add an Opus encode to the output profile" not in why
        else:
            assert why.endswith("(add an Opus encode to the output profile)")
    finally:
        live.end("test over")


def test_aac_of_a_relay_says_its_source_must_send_opus() -> None:
    picked = choose([H264, AAC], [], None, no_bframes, as_it_comes=True)
    assert picked.renditions == (Rendition(DEFAULT_PLAYLIST, H264, None),)
    assert any("its source must send Opus" in why for why in picked.left_out)
    picked = choose([H264, AAC], [], None, no_bframes)
    assert any("add an Opus encode to the output profile" in why for why in picked.left_out)


@pytest.mark.parametrize("dynamic", [False, True])
def test_video_with_bframes_of_a_stream_served_as_it_comes_says_its_source_must_send_none(dynamic: bool) -> None:
    """No profile can add an encode without B-frames to a dynamic app's stream: the refusal and the stream's
    warning say what the source can do instead."""
    registry, live = _registry(dynamic)
    try:
        for i in range(30):  # pts ahead of dts: B-frames, as the meter sees them
            live.ingest(Packet(0, i * 33 + 66, i * 33, MS, bytes(500), keyframe=i % 15 == 0))
        with pytest.raises(PlayRefused) as refused:
            WebRtcPublisher(registry, _Stats(), None).choice(TARGET, WEBRTC_APP)
        warning = live.outputs["cam"].warnings["webrtc"]
        for text in (refused.value.text, warning):
            assert "has B-frames" in text
            assert ("its source must send none" in text) is dynamic
            assert ("to the output profile (or publish with -bf 0" in text) is not dynamic
    finally:
        live.end("test over")
