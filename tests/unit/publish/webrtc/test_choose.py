"""What a WebRTC viewer is sent: playable tracks, playlists' renditions, and never video with B-frames."""

from __future__ import annotations

from fractions import Fraction

import pytest

from kiln.media.model import Codec, MediaKind, Track
from kiln.media.publish.webrtc.abr import AutoAbr
from kiln.media.publish.webrtc.choose import DEFAULT_PLAYLIST, NotPlayable, Rendition, choose, rendition_json

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
