"""What real readers make of Kiln's fMP4: ffprobe 5.1 (Debian) for streams, packets and decoded frame
counts, and PyAV (FFmpeg 8.1) decoding every frame of init + fragments."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from kiln.media.formats.bmff.emsg import build_emsg_v1
from kiln.media.formats.bmff.fragment import build_fragment
from kiln.media.formats.bmff.init import build_init_segment, build_init_segment_multi
from kiln.media.formats.bmff.reader import read_fragments
from kiln.media.formats.id3 import Id3Frame, build_id3v24_tag
from tests.unit.bmff.media import (
    Encoded,
    ExpectedSample,
    decode_all,
    ffprobe,
    fragments_for,
    sample_table,
    traf_for,
)

CASES = {
    # fixture: (codec_name, codec_tag_string, description of the stream as ffprobe prints it)
    "h264_bframes": ("h264", "avc1", {"width": 320, "height": 180}),
    "h264_no_bframes": ("h264", "avc1", {"width": 320, "height": 180}),
    "h265": ("hevc", "hvc1", {"width": 320, "height": 180}),
    "aac": ("aac", "mp4a", {"sample_rate": "48000", "channels": 2}),
    "opus": ("opus", "Opus", {"sample_rate": "48000", "channels": 2}),
    "mp3": ("mp3", "mp4a", {"sample_rate": "48000", "channels": 2}),
}


def _packets(probe: dict, stream_index: int = 0) -> list[tuple[int, int, int | None, bool]]:
    """(pts, dts, duration, keyframe) per packet; a duration ffprobe does not print is ``None``."""
    return [(int(p["pts"]), int(p["dts"]), int(p["duration"]) if "duration" in p else None,
             p["flags"].startswith("K")) for p in probe["packets"] if p["stream_index"] == stream_index]


def _expected(rows: list[ExpectedSample], probed: list[tuple[int, int, int | None, bool]] | None = None,
              ) -> list[tuple[int, int, int | None, bool]]:
    """The rows as ffprobe should print them (durations left out where ``probed`` has none)."""
    durations: list[int | None] = [r.duration for r in rows]
    if probed is not None:
        durations = [None if i < len(probed) and probed[i][2] is None else d for i, d in enumerate(durations)]
    return [(r.pts, r.dts, d, r.keyframe) for r, d in zip(rows, durations, strict=True)]


@pytest.mark.parametrize("media", list(CASES))
def test_ffprobe_and_pyav_read_init_plus_fragments(media: str, request: pytest.FixtureRequest,
                                                   tmp_path: Path) -> None:
    encoded: Encoded = request.getfixturevalue(media)
    codec_name, tag, fields = CASES[media]
    rows = sample_table(encoded)
    data = build_init_segment(encoded.track) + b"".join(fragments_for(1, rows, 10))
    path = tmp_path / "track.mp4"
    path.write_bytes(data)
    probe = ffprobe(path)
    [stream] = probe["streams"]
    assert (stream["codec_name"], stream["codec_tag_string"]) == (codec_name, tag)
    assert {k: stream[k] for k in fields} == fields
    assert stream["time_base"] == f"1/{encoded.track.time_base.denominator}"
    assert int(stream["nb_read_frames"]) == len(rows)
    packets = _packets(probe)
    assert packets == _expected(rows, packets)
    # ffprobe 5.1 prints no duration for AAC's priming packet nor for any Opus packet in fragmented
    # MP4 (ffmpeg's own -movflags frag_keyframe output gives the same); dts continuity covers them.
    missing = [i for i, p in enumerate(packets) if p[2] is None]
    assert missing == {"aac": [0], "opus": list(range(len(rows)))}.get(media, [])
    assert decode_all(data) == {0: len(rows)}


def test_b_frame_composition_offsets_give_evenly_spaced_presentation_times(h264_bframes: Encoded,
                                                                           tmp_path: Path) -> None:
    rows = sample_table(h264_bframes)
    path = tmp_path / "b.mp4"
    path.write_bytes(build_init_segment(h264_bframes.track) + b"".join(fragments_for(1, rows, 15)))
    packets = _packets(ffprobe(path))
    assert [p[0] for p in packets] != sorted(p[0] for p in packets)  # decode order differs from display order
    frame = 15360 // 30
    assert sorted(p[0] for p in packets) == [2 * frame + i * frame for i in range(len(rows))]
    assert all(pts >= dts for pts, dts, _, _ in packets)


def test_90khz_timescale_keeps_the_same_times(h264_bframes: Encoded, tmp_path: Path) -> None:
    scale = Fraction(90000, 15360)
    rows = sample_table(h264_bframes, scale)
    assert rows[1].duration == 3000
    path = tmp_path / "90k.mp4"
    path.write_bytes(build_init_segment(h264_bframes.track, timescale=90000) + b"".join(fragments_for(1, rows, 15)))
    probe = ffprobe(path)
    assert probe["streams"][0]["time_base"] == "1/90000"
    assert _packets(probe) == _expected(rows)
    original = sample_table(h264_bframes)
    assert [float(p["pts_time"]) for p in probe["packets"]] == pytest.approx(
        [r.pts / 15360 for r in original], abs=1e-6)


def test_a_single_part_with_the_init_segment_probes_on_its_own(h264_bframes: Encoded, tmp_path: Path) -> None:
    rows = sample_table(h264_bframes)
    parts = fragments_for(1, rows, 15)
    path = tmp_path / "part.mp4"
    path.write_bytes(build_init_segment(h264_bframes.track) + parts[1])   # the second part: a keyframe at 15
    probe = ffprobe(path)
    assert _packets(probe) == _expected(rows[15:30])
    assert int(probe["streams"][0]["nb_read_frames"]) == 15


def test_two_tracks_in_one_init_and_one_fragment_per_part(h264_bframes: Encoded, aac: Encoded,
                                                          tmp_path: Path) -> None:
    video, audio = sample_table(h264_bframes), sample_table(aac)
    init = build_init_segment_multi([h264_bframes.track, replace(aac.track, id=2)])
    fragments = [build_fragment(n + 1, [traf_for(1, video[n * 15:(n + 1) * 15]),
                                        traf_for(2, audio[n * 16:(n + 1) * 16])]) for n in range(3)]
    data = init + b"".join(fragments)
    path = tmp_path / "av.mp4"
    path.write_bytes(data)
    probe = ffprobe(path)
    assert [(s["codec_name"], int(s["nb_read_frames"])) for s in probe["streams"]] == [("h264", 45), ("aac", 48)]
    assert _packets(probe, 0) == _expected(video)
    audio_packets = _packets(probe, 1)
    assert audio_packets == _expected(audio, audio_packets)
    assert decode_all(data) == {0: 45, 1: 48}


def test_emsg_boxes_before_moof_are_ignored_by_players_and_read_back(h264_no_bframes: Encoded,
                                                                     tmp_path: Path) -> None:
    rows = sample_table(h264_no_bframes)
    parts = fragments_for(1, rows, 15)
    tag = build_id3v24_tag([Id3Frame.txxx("key", "value")])
    emsgs = [build_emsg_v1(timescale=1000, presentation_time=500 * n, event_duration=0xFFFFFFFF, event_id=n,
                           scheme_id_uri="https://aomedia.org/emsg/ID3", value="OvenMediaEngine", message_data=tag)
             for n in range(3)]
    body = emsgs[0] + parts[0] + parts[1] + emsgs[1] + emsgs[2] + parts[2]
    data = build_init_segment(h264_no_bframes.track) + body
    path = tmp_path / "emsg.mp4"
    path.write_bytes(data)
    probe = ffprobe(path)
    assert _packets(probe) == _expected(rows)
    assert decode_all(data) == {0: len(rows)}
    fragments = read_fragments(body)
    assert [[e.id for e in f.emsgs] for f in fragments] == [[0], [], [1, 2]]
    assert fragments[2].emsgs[1].message_data == tag
