"""AvConverter and the framing of H.264 samples: an MP4 file's samples are 4-byte length-prefixed NAL units, and one
whose first NAL unit is 256-511 bytes long begins 00 00 01, as an Annex-B start code does. Taken for Annex-B it was
cut at every 00 00 01 it held: a scheduled channel's file items (read by PyAV) reached players as undecodable
frames (hls.js: PIPELINE_ERROR_DECODE on the first such frame, fatal)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from kiln.media.formats.codecs import CodecConfigError, h264, nal
from kiln.media.ingest.demux.convert import AvConverter
from kiln.media.model import Codec
from tests.unit.codecs.media import encode_video

TB = Fraction(1, 90000)


def avcc_extradata() -> bytes:
    extradata: bytes = encode_video("libx264", 320, 180, "yuv420p", (("preset", "veryfast"),)).extradata
    return extradata


def slice_nal(size: int) -> bytes:
    """A non-IDR slice NAL unit of ``size`` bytes (its header, then bytes with no start-code pattern)."""
    return bytes([0x41]) + bytes((7 + i % 200) for i in range(size - 1))


def test_a_length_prefixed_sample_that_starts_like_a_start_code_passes_unchanged() -> None:
    converter = AvConverter()
    converter.add_track(0, Codec.H264, TB, avcc_extradata())
    sample = nal.to_length_prefixed([slice_nal(300), slice_nal(40)])
    assert sample.startswith(b"\x00\x00\x01\x2c")  # 300 bytes: looks like a start code
    track, packets = converter.convert_data(0, sample, 0, 0, 3000, False)
    assert track is not None and [p.data for p in packets] == [sample]


def test_annexb_samples_are_still_converted() -> None:
    """A track whose container gives Annex-B (MPEG-TS, RTSP: no avcC) is converted; so is an Annex-B sample
    on a length-prefixed track (it is not a whole length-prefixed sequence)."""
    units = [slice_nal(300), slice_nal(40)]
    annexb = b"".join(b"\x00\x00\x00\x01" + u for u in units)
    config = h264.parse_avcc(avcc_extradata())
    annexb_extradata = b"".join(b"\x00\x00\x00\x01" + s for s in [*config.sps, *config.pps])
    for extradata in (annexb_extradata, avcc_extradata()):
        converter = AvConverter()
        converter.add_track(0, Codec.H264, TB, extradata)
        _, packets = converter.convert_data(0, annexb, 0, 0, 3000, False)
        assert [p.data for p in packets] == [nal.to_length_prefixed(units)]


def with_length_size(sample: bytes, size: int) -> bytes:
    """An MP4 sample's NAL units (4-byte lengths) with ``size``-byte lengths instead."""
    return b"".join(len(unit).to_bytes(size, "big") + bytes(unit) for unit in nal.iter_length_prefixed(sample))


def avcc_saying(avcc: bytes, size: int) -> bytes:
    """The avcC record with lengthSizeMinusOne (byte 4, low two bits) saying ``size``, every other byte kept."""
    return avcc[:4] + bytes([0xFC | (size - 1)]) + avcc[5:]


def two_byte_mp4(path: Path) -> int:
    """An H.264 MP4 whose avcC says 2-byte NAL lengths and whose samples have them (legal; some encoders write it):
    libx264's file, its samples and avcC rewritten; the number of frames."""
    four = path.with_suffix(".four.mp4")
    with av.open(str(four), "w") as out:
        stream = out.add_stream("libx264", rate=20)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.codec_context.options = {"preset": "veryfast", "g": "10"}
        source = av.open("testsrc2=size=320x180:rate=20", format="lavfi")
        for index, frame in enumerate(source.decode(video=0)):
            if index == 30:
                break
            frame.pts = index
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
        source.close()
    count = 0
    with av.open(str(four)) as src, av.open(str(path), "w", format="mp4") as out:
        ins = src.streams.video[0]
        outs = out.add_stream_from_template(ins)
        outs.codec_context.extradata = avcc_saying(bytes(ins.codec_context.extradata), 2)
        for packet in src.demux(ins):
            if packet.size == 0:
                continue
            rewritten = av.Packet(with_length_size(bytes(packet), 2))
            rewritten.pts, rewritten.dts, rewritten.time_base = packet.pts, packet.dts, packet.time_base
            rewritten.is_keyframe, rewritten.stream = packet.is_keyframe, outs
            out.mux(rewritten)
            count += 1
    return count


def test_an_mp4_whose_avcc_says_two_byte_nal_lengths_reaches_players_decodable(tmp_path: Path) -> None:
    """Kiln carries 4-byte NAL lengths (the model): an MP4 (a scheduled channel's file item) whose avcC says 2 went
    on as it was, so every consumer reading the model's form (OVT's and WebRTC's Annex-B, an item after a 4-byte
    one) cut its frames at the wrong places."""
    path = tmp_path / "two.mp4"
    frames = two_byte_mp4(path)
    converter = AvConverter()
    packets = []
    track = None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert bytes(stream.codec_context.extradata)[4] & 0x03 == 1  # the file says 2-byte lengths
        converter.add_stream(stream)
        for packet in container.demux(stream):
            new, out = converter.convert(packet)
            track = new or track
            packets.extend(out)
    assert track is not None and len(packets) == frames
    config = h264.parse_avcc(track.config)
    assert config.nal_length_size == 4  # what Kiln writes out (avcC in fMP4 inits, RTMP sequence headers) says 4
    decoder = av.CodecContext.create("h264", "r")
    sets = b"".join(b"\x00\x00\x00\x01" + s for s in (*config.sps, *config.pps))
    decoded = 0
    for p in packets:
        try:
            annexb = nal.length_prefixed_to_annexb(p.data)  # the model's 4-byte lengths, as OVT and WebRTC read them
        except CodecConfigError:
            continue
        decoded += len(decoder.decode(av.Packet((sets if p.keyframe else b"") + annexb)))
    decoded += len(decoder.decode(None))
    assert decoded == frames
