"""Kiln's bulk MPEG-TS demuxer: the same PES payloads and timestamps as FFmpeg's demuxer in any chunking,
and the per-packet rules (continuity, duplicates, adaptation fields, PSI changes, sync) on the fast path."""

from __future__ import annotations

import io
import logging
import random

import av
import pytest

from kiln.media.formats.mpegts.demux import AAC_ADTS, H264, H265, TS_PACKET, PesPacket, TsDemuxer, crc32_mpeg
from kiln.media.ingest.demux.convert import TS_TIME_BASE, AvConverter
from kiln.media.model import Codec
from tests.unit.demux.test_tsreader import assert_dts_increasing, make_ts, run_worker
from tests.unit.demux.tsbuild import PMT_PID, TsWriter, pat, pes, pmt

VIDEO, AUDIO = 0x100, 0x101


@pytest.fixture(scope="module")
def ts_bytes() -> bytes:
    return make_ts(60)


def demux(data: bytes, sizes: list[int] | int = 1316) -> tuple[TsDemuxer, list[PesPacket]]:
    demuxer = TsDemuxer()
    units: list[PesPacket] = []
    at = 0
    step = 0
    while at < len(data):
        size = sizes if isinstance(sizes, int) else sizes[step % len(sizes)]
        units += demuxer.feed(data[at:at + size])
        at += size
        step += 1
    return demuxer, units + demuxer.flush()


def ffmpeg_units(data: bytes) -> dict[int, list[tuple[int, int, bytes]]]:
    """FFmpeg's view (PyAV): per PID, (dts, pts, payload); AAC frames joined back per PES below."""
    out: dict[int, list[tuple[int, int, bytes]]] = {}
    with av.open(io.BytesIO(data), format="mpegts") as container:
        for packet in container.demux():
            if packet.size:
                out.setdefault(packet.stream.id, []).append((packet.dts, packet.pts, bytes(packet)))
    return out


@pytest.mark.parametrize("sizes", [1316, 188, 7, 1000, 65536, [1, 187, 189, 5000, 376, 3]])
def test_same_access_units_and_timestamps_as_ffmpeg_in_any_chunking(ts_bytes: bytes, sizes: list[int] | int) -> None:
    demuxer, units = demux(ts_bytes, sizes)
    assert {s.pid: s.stream_type for s in demuxer.streams.values()} == {VIDEO: H264, AUDIO: AAC_ADTS}
    reference = ffmpeg_units(ts_bytes)
    video = [(u.dts, u.pts, u.data) for u in units if u.pid == VIDEO]
    assert video == reference[VIDEO] and len(video) == 60
    audio = [u for u in units if u.pid == AUDIO]
    assert b"".join(u.data for u in audio) == b"".join(p[2] for p in reference[AUDIO])  # ADTS frames, all of them
    assert all(u.pts is not None for u in audio)
    assert (demuxer.cc_errors, demuxer.resyncs, demuxer.bad_pes, demuxer.crc_errors) == (0, 0, 0, 0)
    assert units[0].random_access  # the muxer flags the first (IDR) picture


def packets(data: bytes) -> list[bytes]:
    return [data[i:i + TS_PACKET] for i in range(0, len(data), TS_PACKET)]


def continuation_indexes(data: bytes, pid: int) -> list[int]:
    """Indexes of payload-only packets of ``pid`` that do not start a PES (the run path's packets)."""
    return [i for i, p in enumerate(packets(data))
            if (p[1] & 0x1F) << 8 | p[2] == pid and not p[1] & 0x40 and p[3] >> 4 == 1]


def test_a_lost_packet_is_counted_and_marks_only_its_pes(ts_bytes: bytes) -> None:
    cut = continuation_indexes(ts_bytes, VIDEO)[40]
    pieces = packets(ts_bytes)
    damaged = b"".join(pieces[:cut] + pieces[cut + 1:])
    demuxer, units = demux(damaged)
    assert demuxer.cc_errors == 1
    video = [u for u in units if u.pid == VIDEO]
    assert len(video) == 60
    assert [i for i, u in enumerate(video) if u.corrupt] == [next(
        i for i, u in enumerate(video) if len(u.data) < len(ffmpeg_units(ts_bytes)[VIDEO][i][2]))]
    assert sum(u.corrupt for u in units) == 1


def test_a_duplicated_packet_is_dropped(ts_bytes: bytes) -> None:
    dup = continuation_indexes(ts_bytes, VIDEO)[25]
    pieces = packets(ts_bytes)
    doubled = b"".join(pieces[:dup + 1] + [pieces[dup]] + pieces[dup + 1:])
    demuxer, units = demux(doubled)
    _, clean = demux(ts_bytes)
    assert (demuxer.duplicates, demuxer.cc_errors) == (1, 0)
    assert [u.data for u in units] == [u.data for u in clean]


def test_garbage_between_packets_is_skipped_and_sync_found_again(ts_bytes: bytes) -> None:
    pieces = packets(ts_bytes)
    cut = continuation_indexes(ts_bytes, VIDEO)[30]
    noise = bytes(random.Random(7).randrange(256) for _ in range(1000)).replace(b"G", b"g")
    demuxer, units = demux(b"".join(pieces[:cut]) + noise + b"".join(pieces[cut:]), [1316, 500])
    assert demuxer.resyncs == 1 and demuxer.skipped_bytes == len(noise)
    _, clean = demux(ts_bytes)
    assert [u.data for u in units] == [u.data for u in clean]


def build(units: list[tuple[int, bytes]], *, streams: list[tuple[int, int]] | None = None) -> bytes:
    return TsWriter().stream(units, streams or [(H264, VIDEO), (AAC_ADTS, AUDIO)])


def test_a_pes_spanning_hundreds_of_packets_arrives_whole() -> None:
    payload = bytes(random.Random(1).randrange(256) for _ in range(120_000))
    data = build([(VIDEO, pes(0xE0, payload, 9000, 6000, bounded=False)),
                  (VIDEO, pes(0xE0, b"\x00\x00\x01\x09", 12000))])
    for sizes in (1316, [188 * 700], [5, 183]):
        _, units = demux(data, sizes)
        assert [(u.pts, u.dts, len(u.data)) for u in units] == [(9000, 6000, 120_000), (12000, 12000, 4)]
        assert units[0].data == payload


def test_a_bounded_pes_is_delivered_without_waiting_for_the_next_one() -> None:
    demuxer = TsDemuxer()
    writer = TsWriter()
    head = writer.psi(0, pat()) + writer.psi(PMT_PID, pmt([(AAC_ADTS, AUDIO)]))
    units = demuxer.feed(head + b"".join(writer.pes_packets(AUDIO, pes(0xC0, b"a" * 1000, 3600))))
    assert [(u.pid, u.pts, u.data) for u in units] == [(AUDIO, 3600, b"a" * 1000)]


def test_adaptation_fields_mid_pes_flags_and_discontinuity() -> None:
    writer = TsWriter()
    out = [writer.psi(0, pat()), writer.psi(PMT_PID, pmt([(H264, VIDEO)]))]
    frame = pes(0xE0, bytes(range(256)) * 4, 1000, bounded=False)
    pcr = b"\x10" + bytes(6)
    out.append(writer.packet(VIDEO, frame[:176], start=True, adaptation=b"\x50" + bytes(6)))  # RAI + PCR
    out.append(writer.packet(VIDEO, frame[176:360], start=False))
    cc = writer.counters[VIDEO]
    out.append(bytes([0x47, VIDEO >> 8, VIDEO & 0xFF, 0x20 | cc, 183]) + pcr + b"\xff" * 176)  # no payload: cc stays
    out.append(writer.packet(VIDEO, frame[360:536], start=False, adaptation=pcr))  # a PCR mid-PES
    out += [writer.packet(VIDEO, frame[at:at + 184], start=False) for at in range(536, len(frame), 184)]
    writer.counters[VIDEO] = 8  # a splice: the counter restarts, flagged by discontinuity_indicator
    out += writer.pes_packets(VIDEO, pes(0xE0, b"\x00\x00\x01\x09\xf0", 4000, bounded=False),
                              first_adaptation=b"\x80")
    demuxer, units = demux(b"".join(out))
    assert (demuxer.cc_errors, demuxer.duplicates) == (0, 0)
    assert units[0].data == bytes(range(256)) * 4 and units[0].random_access and not units[0].corrupt
    assert [(u.pts, u.data) for u in units[1:]] == [(4000, b"\x00\x00\x01\x09\xf0")]
    assert not units[1].random_access


def test_pmt_change_moves_a_stream_and_bad_crc_is_ignored() -> None:
    writer = TsWriter()
    out = [writer.psi(0, pat()), writer.psi(PMT_PID, pmt([(H264, VIDEO)]))]
    out += writer.pes_packets(VIDEO, pes(0xE0, b"one", 1000, bounded=True))
    broken = bytearray(pmt([(H265, 0x300)], version=3))
    broken[-1] ^= 0xFF
    out.append(writer.psi(PMT_PID, bytes(broken)))
    out.append(writer.psi(PMT_PID, pmt([(H264, 0x200)], version=1)))
    out += writer.pes_packets(0x200, pes(0xE0, b"two", 2000, bounded=True))
    out += writer.pes_packets(VIDEO, pes(0xE0, b"gone", 3000, bounded=True))  # no longer in the PMT
    demuxer = TsDemuxer()
    units = demuxer.feed(b"".join(out))
    assert [(u.pid, u.data) for u in units] == [(VIDEO, b"one"), (0x200, b"two")]
    assert demuxer.crc_errors == 1 and demuxer.changes == 2
    assert {pid: s.stream_type for pid, s in demuxer.streams.items()} == {0x200: H264}


def test_a_pes_header_split_over_two_packets() -> None:
    writer = TsWriter()
    out = [writer.psi(0, pat()), writer.psi(PMT_PID, pmt([(H264, VIDEO)]))]
    frame = pes(0xE0, b"payload" * 50, 7000, 5000, bounded=False)
    out.append(writer.packet(VIDEO, frame[:5], start=True))  # 5 bytes of header, adaptation stuffing around
    out += [writer.packet(VIDEO, frame[5 + i:5 + i + 184], start=False) for i in range(0, len(frame) - 5, 184)]
    demuxer = TsDemuxer()
    units = demuxer.feed(b"".join(out)) + demuxer.flush()
    assert [(u.pts, u.dts, u.data) for u in units] == [(7000, 5000, b"payload" * 50)]


def test_psi_crc_matches_the_mpeg_polynomial() -> None:
    assert crc32_mpeg(b"123456789") == 0x0376E6E7  # CRC-32/MPEG-2 check value
    assert crc32_mpeg(pat()) == 0


# -- the worker on Kiln's demuxer -------------------------------------------------------------------
def test_the_worker_uses_kilns_demuxer_for_h264_and_aac(ts_bytes: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiln.media.ingest.demux.tsreader")
    glue, stream, got = run_worker(ts_bytes)
    assert "demuxer=kiln" in caplog.text
    video = [p for p in got if p.track_id == 0]
    assert len(video) == 60 and video[0].keyframe
    assert {t.codec for t in stream.tracks.values()} == {Codec.H264, Codec.AAC}
    assert_dts_increasing(got)


def test_mp3_or_opus_inputs_still_go_to_pyav(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiln.media.ingest.demux.tsreader")
    _, stream, _ = run_worker(make_ts(30, audios=("aac", "libmp3lame")))
    assert "ts input demuxing" in caplog.text and "demuxer=kiln" not in caplog.text
    assert sorted(t.codec.value for t in stream.tracks.values()) == ["AAC", "H264", "MP3"]


def test_a_stream_that_moves_to_another_pid_keeps_its_track(ts_bytes: bytes,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiln.media.ingest.demux.tsreader")
    pieces = packets(ts_bytes)
    cut = len(pieces) // 2
    moved = pmt([(H264, 0x200), (AAC_ADTS, AUDIO)], version=1, pcr_pid=0x200)
    out = pieces[:cut]
    for piece in pieces[cut:]:
        pid = (piece[1] & 0x1F) << 8 | piece[2]
        if pid == PMT_PID:
            fresh = bytearray(TsWriter().psi(PMT_PID, moved))
            fresh[3] = (fresh[3] & 0xF0) | (piece[3] & 0x0F)
            piece = bytes(fresh)
        elif pid == VIDEO:
            piece = piece[:1] + bytes([(piece[1] & 0xE0) | 0x02, 0x00]) + piece[3:]
        out.append(piece)
    glue, stream, got = run_worker(b"".join(out))
    assert "ts stream moved" in caplog.text
    assert [t.codec for t in stream.tracks.values()].count(Codec.H264) == 1
    video = [p for p in got if p.track_id == 0]
    assert len(video) >= 55  # the frames on the new PID kept coming on the same track (one may straddle the move)
    assert_dts_increasing(got)


def test_without_a_random_access_flag_the_nal_types_say_keyframe(ts_bytes: bytes) -> None:
    _, units = demux(ts_bytes)
    converter = AvConverter()
    converter.add_track(VIDEO, Codec.H264, TS_TIME_BASE)
    first = next(u for u in units if u.pid == VIDEO)
    track, out = converter.convert_data(VIDEO, first.data, 0, 0)  # SPS, PPS, IDR: described, a keyframe
    assert track is not None and out[0].keyframe
    _, out = converter.convert_data(VIDEO, b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x41\x9a\x02\x03", 3000, 3000)
    assert not out[0].keyframe and out[0].data == b"\x00\x00\x00\x02\x09\xf0\x00\x00\x00\x04\x41\x9a\x02\x03"
    _, out = converter.convert_data(VIDEO, first.data, 6000, 6000, keyframe=False)  # the demuxer's word wins
    assert not out[0].keyframe


def test_a_declared_track_that_never_comes_does_not_hold_the_stream_back(ts_bytes: bytes) -> None:
    """The PMT lists AAC but no audio packet arrives: the stream still opens, with the video, when the input ends
    (a live input: after PROBE_MEDIA_S of media)."""
    video_only = b"".join(p for p in packets(ts_bytes) if (p[1] & 0x1F) << 8 | p[2] != AUDIO)
    _, stream, got = run_worker(video_only)
    assert [t.codec for t in stream.tracks.values()] == [Codec.H264]
    assert len(got) == 60 and stream.ended_reason == "disconnected"


def test_audio_pes_without_pts_follows_the_previous_frames(ts_bytes: bytes) -> None:
    """MPEG-TS lets an audio PES leave its PTS out (timestamps at most 0.7 s apart): its ADTS frames follow on."""
    _, units = demux(ts_bytes)
    audio = [u for u in units if u.pid == AUDIO][:4]
    writer = TsWriter()
    out = [writer.psi(0, pat()), writer.psi(PMT_PID, pmt([(AAC_ADTS, AUDIO)], pcr_pid=AUDIO))]
    for index, unit in enumerate(audio):
        out += writer.pes_packets(AUDIO, pes(0xC0, unit.data, unit.pts if index in (0, 3) else None))
    _, stream, got = run_worker(b"".join(out))
    frames = [unit.data.count(b"\xff\xf1") for unit in audio]  # ADTS frames per PES (no CRC: 0xFFF1)
    assert len(got) == sum(frames) and stream.tracks[0].codec is Codec.AAC
    steps = {b.dts - a.dts for a, b in zip(got, got[1:], strict=False)}
    assert steps == {1920}  # 1024 samples at 48 kHz in 1/90000, across the PES without PTS
