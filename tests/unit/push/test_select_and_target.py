"""Track selection reasons and RTMP destination parsing (no sockets)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from kiln.media.model import Codec, MediaKind, Track
from kiln.media.publish.push.net import PushError
from kiln.media.publish.push.rtmp_client import parse_target
from kiln.media.publish.push.select import select_tracks

TB = Fraction(1, 1000)
TRACKS = [Track(0, MediaKind.VIDEO, Codec.H264, TB, name="bypass_video"),
          Track(1, MediaKind.AUDIO, Codec.AAC, TB, name="bypass_audio")]


def test_variant_names_that_match_nothing_name_the_selection_and_the_tracks() -> None:
    selection = select_tracks(TRACKS, "rtmp", ["nope"], [])
    assert selection.tracks == []
    assert "variantNames ['nope']" in selection.reason
    assert "track 0 (bypass_video, H264)" in selection.reason and "track 1 (bypass_audio, AAC)" in selection.reason


def test_track_ids_that_match_nothing_name_the_selection() -> None:
    reason = select_tracks(TRACKS, "mpegts", [], [999]).reason
    assert reason.startswith("no track matches trackIds [999]"), reason


def test_a_matching_selection_keeps_its_tracks() -> None:
    selection = select_tracks(TRACKS, "rtmp", ["bypass_audio"], [])
    assert [t.id for t in selection.tracks] == [1] and selection.reason == ""


def test_an_uncarriable_selection_says_why() -> None:
    opus = [Track(3, MediaKind.AUDIO, Codec.OPUS, TB, name="opus")]
    reason = select_tracks(opus, "rtmp", [], [3]).reason
    assert "OPUS" in reason and "rtmp cannot carry" in reason, reason


@pytest.mark.parametrize(("url", "app", "stream", "tc_url", "port"), [
    ("rtmp://127.0.0.1:1936/live/key", "live", "key", "rtmp://127.0.0.1:1936/live", 1936),
    ("rtmp://a.example/app/inst/key", "app/inst", "key", "rtmp://a.example/app/inst", 1935),
    ("rtmps://a.example/live/k?x=1", "live", "k?x=1", "rtmps://a.example/live", 443),
    ("rtmp://a.example/live/%zz", "live", "%zz", "rtmp://a.example/live", 1935),
])
def test_parse_target_splits_like_ffmpeg(url: str, app: str, stream: str, tc_url: str, port: int) -> None:
    target = parse_target(url)
    assert (target.app, target.stream, target.tc_url, target.port) == (app, stream, tc_url, port)


@pytest.mark.parametrize("url", ["rtmp://a.example/live", "rtmp://a.example/", "rtmp:///live/k"])
def test_parse_target_rejects_a_url_without_app_key_or_host(url: str) -> None:
    with pytest.raises(PushError):
        parse_target(url)


def test_rtmp_without_a_selection_names_a_kind_it_cannot_carry_instead_of_dropping_it_silently() -> None:
    """A VP8 WebRTC input with an AAC encode: the audio goes, the VP8 video is named as left out."""
    tracks = [Track(0, MediaKind.VIDEO, Codec.VP8, TB, name="bypass_video"),
              Track(1, MediaKind.AUDIO, Codec.AAC, TB, name="aac_audio"),
              Track(2, MediaKind.AUDIO, Codec.OPUS, TB, name="bypass_audio")]
    selection = select_tracks(tracks, "rtmp", [], [])
    assert [t.id for t in selection.tracks] == [1]
    assert selection.skipped == ["track 0 (bypass_video) is VP8, which rtmp cannot carry"]
    nothing = select_tracks([tracks[0], tracks[2]], "rtmp", [], [])
    assert nothing.tracks == [] and "VP8" in nothing.reason and "OPUS" in nothing.reason, nothing.reason
