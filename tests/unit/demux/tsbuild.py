"""A small MPEG-TS writer for the demuxer's tests: PAT, PMT and PES packets with chosen counters and
adaptation fields, so the tests can build exactly the packet layouts a muxer (or a lossy network) makes."""

from __future__ import annotations

from dataclasses import dataclass, field

from kiln.media.formats.mpegts.demux import crc32_mpeg

PMT_PID = 0x1000


def _ts(at: int) -> bytes:
    return bytes([(at >> 29) & 0x0E, (at >> 22) & 0xFF, (at >> 14) & 0xFE, (at >> 7) & 0xFF, (at << 1) & 0xFE])


def pes(stream_id: int, payload: bytes, pts: int | None = None, dts: int | None = None, *, bounded: bool = True,
        stuffing: int = 0) -> bytes:
    """A PES packet: header (PTS, optional DTS, ``stuffing`` header bytes), then ``payload``."""
    optional = b""
    flags = 0
    if pts is not None:
        flags = 0x80
        optional = bytes([0x20 | _ts(pts)[0] | 1]) + _ts(pts)[1:]
        if dts is not None:
            flags = 0xC0
            optional = bytes([0x30 | _ts(pts)[0] | 1]) + _ts(pts)[1:] + bytes([0x10 | _ts(dts)[0] | 1]) + _ts(dts)[1:]
        optional = bytes(b | 1 if i in (2, 4, 7, 9) else b for i, b in enumerate(optional))
    optional += b"\xff" * stuffing
    body = bytes([0x80, flags, len(optional)]) + optional + payload
    length = len(body) if bounded and len(body) <= 0xFFFF else 0
    return b"\x00\x00\x01" + bytes([stream_id]) + length.to_bytes(2, "big") + body


def section(table_id: int, extension: int, body: bytes, version: int = 0) -> bytes:
    head = bytes([table_id]) + (0xB000 | (len(body) + 9)).to_bytes(2, "big") + extension.to_bytes(2, "big") + \
        bytes([0xC1 | (version & 0x1F) << 1, 0, 0])
    data = head + body
    return data + crc32_mpeg(data).to_bytes(4, "big")


def pat(pmt_pid: int = PMT_PID, program: int = 1, version: int = 0) -> bytes:
    return section(0x00, 1, program.to_bytes(2, "big") + (0xE000 | pmt_pid).to_bytes(2, "big"), version)


def pmt(streams: list[tuple[int, int]], program: int = 1, version: int = 0, pcr_pid: int = 0x100) -> bytes:
    body = (0xE000 | pcr_pid).to_bytes(2, "big") + b"\xf0\x00"
    for stream_type, pid in streams:
        body += bytes([stream_type]) + (0xE000 | pid).to_bytes(2, "big") + b"\xf0\x00"
    return section(0x02, program, body, version)


@dataclass
class TsWriter:
    """Packetizes sections and PES packets; keeps one continuity counter per PID."""

    counters: dict[int, int] = field(default_factory=dict)

    def packet(self, pid: int, payload: bytes, *, start: bool, adaptation: bytes | None = None,
               cc: int | None = None) -> bytes:
        """One 188-byte packet; ``adaptation`` is the adaptation field's content after its length byte
        (flags first); the payload is padded with adaptation stuffing when short."""
        room = 184 - (0 if adaptation is None else 1 + len(adaptation))
        assert len(payload) <= room
        if len(payload) < room:
            adaptation = (adaptation if adaptation is not None else b"\x00" if room - len(payload) > 1 else b"")
            adaptation += b"\xff" * (184 - 1 - len(adaptation) - len(payload))
        if cc is None:
            cc = self.counters[pid] = (self.counters.get(pid, -1) + 1) & 0x0F
        control = (0x30 if adaptation is not None else 0x10) | cc
        head = bytes([0x47, (0x40 if start else 0) | pid >> 8, pid & 0xFF, control])
        af = b"" if adaptation is None else bytes([len(adaptation)]) + adaptation
        packet = head + af + payload
        assert len(packet) == 188, len(packet)
        return packet

    def psi(self, pid: int, data: bytes) -> bytes:
        return self.packet(pid, b"\x00" + data, start=True)

    def pes_packets(self, pid: int, data: bytes, *, random_access: bool = False,
                    first_adaptation: bytes | None = None) -> list[bytes]:
        """``data`` (a whole PES) cut into packets; the first gets ``first_adaptation`` (or a RAI flag)."""
        out = []
        adaptation = first_adaptation if first_adaptation is not None else (b"\x40" if random_access else None)
        at = 0
        first = True
        while at < len(data) or first:
            room = 184 - (0 if adaptation is None else 1 + len(adaptation))
            chunk = data[at:at + room]
            out.append(self.packet(pid, chunk, start=first, adaptation=adaptation))
            at += len(chunk)
            first, adaptation = False, None
        return out

    def stream(self, units: list[tuple[int, bytes]], streams: list[tuple[int, int]], *, version: int = 0) -> bytes:
        """PAT + PMT, then each (pid, PES) packetized."""
        out = [self.psi(0, pat()), self.psi(PMT_PID, pmt(streams, version=version))]
        for pid, data in units:
            out += self.pes_packets(pid, data)
        return b"".join(out)
