"""MPEG-TS demultiplexing in bulk: TS bytes in, whole PES packets out, little Python work per TS packet.

A 3 Mbit/s input is about 2,000 TS packets a second; a Python step per packet costs more than the
rest of the ingest. Most packets only continue the PES of a known PID (payload only, no adaptation
field), so those are taken in runs: one regular-expression match (one per PID, compiled from its
header bytes) says how many such packets follow in a row, one strided slice compares their
continuity counters with the expected sequence, and their payloads are kept as memoryview slices that
are joined once per PES. Packets that start a PES, carry an adaptation field, hold PSI, or break the
counter sequence take the per-packet path, which does the full checks:

- **Continuity.** A repeated counter with a payload is a duplicate packet (dropped); any other gap,
  unless the adaptation field flags a discontinuity, counts in ``cc_errors`` and marks the PES being
  assembled ``corrupt`` (its data is kept, as FFmpeg's demuxer does).
- **PSI.** PAT and PMT sections are reassembled across packets, checked by CRC, and re-read when they
  change (``streams`` then changes and ``changes`` counts up); a PID that leaves the PMT stops being
  assembled, one that enters starts at its next PES start.
- **Sync.** Bytes that are not 188-byte packets starting with 0x47 are skipped until three sync bytes
  188 bytes apart are found again (``resyncs``); a packet cut across two ``feed`` calls is carried over.

Pure: no I/O, no logging; the caller reads the counters.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

TS_PACKET = 188
SYNC_BYTE = 0x47
SYNC_RUN = 3  # sync bytes in a row, one packet apart, that re-establish sync after garbage
PAYLOAD = TS_PACKET - 4

H264 = 0x1B
H265 = 0x24
AAC_ADTS = 0x0F
ID3_METADATA = 0x15
SCTE35 = 0x86

PAT_PID = 0x0000
NULL_PID = 0x1FFF
MAX_SECTION = 4096  # PAT/PMT sections are at most 1,024 bytes; anything longer being assembled is junk
MAX_RUN = 4096  # packets one run match may cover (bounds the counter sequence below)

_LOW_NIBBLE = bytes(b & 0x0F for b in range(256))
_CC_SEQUENCE = bytes(i & 0x0F for i in range(MAX_RUN + 16))
_SYNCS = bytes([SYNC_BYTE]) * 1024
UNPACK_RUN = 64  # payloads cut out of a run by one struct call (longer runs take several)
_run_unpackers: dict[int, Callable[[bytes, int], tuple[bytes, ...]]] = {}
_NO_OPTIONAL_HEADER = {0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF}  # stream ids whose PES has no PTS/flags


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else c << 1
        table.append(c & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc32_mpeg(data: bytes | bytearray | memoryview) -> int:
    """CRC-32/MPEG-2 (PSI sections): 0 over a whole section including its CRC field when it is intact."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ b]
    return crc


def _timestamp(b: bytes | memoryview, at: int) -> int:
    return ((b[at] >> 1) & 0x07) << 30 | b[at + 1] << 22 | (b[at + 2] >> 1) << 15 | b[at + 3] << 7 | b[at + 4] >> 1


@dataclass(slots=True)
class PesPacket:
    """One PES of an elementary stream: its payload (the access unit(s)), 33-bit timestamps in 1/90000."""

    pid: int
    stream_type: int
    pts: int | None
    dts: int | None
    data: bytes
    random_access: bool = False  # the adaptation field's random_access_indicator was set on one of its packets
    corrupt: bool = False  # a continuity gap fell inside it (data is missing)


@dataclass(frozen=True, slots=True)
class ElementaryStream:
    pid: int
    stream_type: int
    program: int
    registration: bytes = b""  # the format_identifier of a registration descriptor (e.g. b"Opus"), if any


class _Pes:
    """Assembly state of one elementary PID."""

    __slots__ = ("corrupt", "cc", "length", "parts", "pid", "random_access", "run", "size", "stream_type")

    def __init__(self, pid: int, stream_type: int) -> None:
        self.pid = pid
        self.stream_type = stream_type
        head = re.escape(bytes([SYNC_BYTE, pid >> 8, pid & 0xFF]))
        # payload-only packets of this PID that do not start a PES: no TEI/PUSI/priority, not scrambled
        self.run = re.compile(b"(?:" + head + b"[\x10-\x1f].{184})+", re.DOTALL)
        self.cc = -1
        self.parts: list[bytes | memoryview] | None = None  # None: waiting for a PES start
        self.size = 0
        self.length = 0  # 6 + PES_packet_length when the PES declares it, else 0 (ends at the next start)
        self.random_access = False
        self.corrupt = False


def _run_payloads(data: bytes, at: int, count: int) -> list[bytes]:
    """The payloads of ``count`` header-only packets from ``at``, cut out by ``struct`` in C (a slice per packet
    made in Python cost five times as much, and joining memoryviews more than joining bytes)."""
    out: list[bytes] = []
    while count:
        k = min(count, UNPACK_RUN)
        unpack = _run_unpackers.get(k)
        if unpack is None:
            unpack = _run_unpackers[k] = struct.Struct("4x184s" * k).unpack_from
        out += unpack(data, at)
        at += k * TS_PACKET
        count -= k
    return out


@dataclass
class TsDemuxer:
    """Feed TS bytes in any chunking; get complete PES packets of the PIDs whose stream type is in ``accept``."""

    accept: frozenset[int] = frozenset({H264, H265, AAC_ADTS})
    streams: dict[int, ElementaryStream] = field(default_factory=dict)  # every PMT's streams, by PID
    changes: int = 0  # times ``streams`` changed (the first PMT included)
    cc_errors: int = 0
    duplicates: int = 0
    resyncs: int = 0
    skipped_bytes: int = 0  # bytes dropped while looking for sync
    scrambled: int = 0
    transport_errors: int = 0
    bad_pes: int = 0  # PES starts that are not a PES header (dropped)
    crc_errors: int = 0
    _rest: bytes = b""
    _synced: bool = False
    _pes: dict[int, _Pes] = field(default_factory=dict)
    _pmt_pids: dict[int, int] = field(default_factory=dict)  # PMT PID -> program number
    _pmts: dict[int, tuple[ElementaryStream, ...]] = field(default_factory=dict)  # program -> its streams
    _sections: dict[int, bytearray] = field(default_factory=dict)
    _last_section: dict[int, bytes] = field(default_factory=dict)
    _psi_cc: dict[int, int] = field(default_factory=dict)

    @property
    def pmt_known(self) -> bool:
        """A PAT was read and every program it lists has had its PMT read."""
        return bool(self._pmt_pids) and all(p in self._pmts for p in self._pmt_pids.values())

    def feed(self, data: bytes) -> list[PesPacket]:
        out: list[PesPacket] = []
        if self._rest:
            data = self._rest + data
            self._rest = b""
        n = len(data)
        pos = 0
        while n - pos >= TS_PACKET:
            if not self._synced or data[pos] != SYNC_BYTE:
                lost = self._synced
                found = self._resync(data, pos)
                if found is not None and (lost or found != pos):
                    self.resyncs += 1
                if found is None:
                    keep = max(pos, n - (SYNC_RUN * TS_PACKET - 1))  # a run may still start in the tail
                    self.skipped_bytes += keep - pos
                    pos = keep
                    break
                self.skipped_bytes += found - pos
                pos = found
            count = min((n - pos) // TS_PACKET, len(_SYNCS))
            syncs = data[pos:pos + count * TS_PACKET:TS_PACKET]
            if syncs != _SYNCS[:count]:
                count -= len(syncs.lstrip(b"G"))  # packets up to the first without its sync byte
            end = pos + count * TS_PACKET
            self._packets(data, pos, end, out)
            pos = end
        self._rest = data[pos:]
        return out

    def flush(self) -> list[PesPacket]:
        """End of input: the PES still being assembled on every PID (those that end at the next start)."""
        out: list[PesPacket] = []
        for state in self._pes.values():
            if state.parts is not None:
                self._emit(state, out)
        self._rest = b""
        return out

    # -- packets ------------------------------------------------------------------------------------
    def _resync(self, data: bytes, pos: int) -> int | None:
        """Offset of the next run of SYNC_RUN sync bytes one packet apart, or None."""
        last = len(data) - (SYNC_RUN - 1) * TS_PACKET
        at = data.find(b"G", pos, last) if last > pos else -1  # (a negative end would count from the end)
        while at >= 0:
            if all(data[at + k * TS_PACKET] == SYNC_BYTE for k in range(1, SYNC_RUN)):
                self._synced = True
                return at
            at = data.find(b"G", at + 1, last)
        self._synced = False
        return None

    def _packets(self, data: bytes, pos: int, end: int, out: list[PesPacket]) -> None:
        view = memoryview(data)
        states = self._pes
        sequence = _CC_SEQUENCE
        i = pos
        while i < end:
            state = states.get((data[i + 1] & 0x1F) << 8 | data[i + 2])
            if state is not None and state.parts is not None and state.cc >= 0:
                match = state.run.match(data, i, min(end, i + MAX_RUN * TS_PACKET))
                if match is not None:
                    j = match.end()
                    k = (j - i) // TS_PACKET
                    first = (state.cc + 1) & 0x0F
                    counters = data[i + 3:j:TS_PACKET].translate(_LOW_NIBBLE)
                    if counters == sequence[first:first + k]:
                        state.parts += _run_payloads(data, i, k)
                        state.size += k * PAYLOAD
                        state.cc = counters[-1]
                        i = j
                        if state.length and state.size >= state.length:
                            self._emit(state, out)
                        continue
            self._packet(data, view, i, out)
            i += TS_PACKET

    def _packet(self, data: bytes, view: memoryview, i: int, out: list[PesPacket]) -> None:
        b1, b3 = data[i + 1], data[i + 3]
        if b1 & 0x80:
            self.transport_errors += 1
            return
        pid = (b1 & 0x1F) << 8 | data[i + 2]
        if pid == NULL_PID:
            return
        control = b3 >> 4 & 0x03
        start = i + 4
        discontinuity = random_access = False
        if control & 0x02:
            length = data[i + 4]
            if length > 183 or (length > 182 and control & 0x01):
                self.transport_errors += 1
                return
            if length:
                flags = data[i + 5]
                discontinuity, random_access = bool(flags & 0x80), bool(flags & 0x40)
            start = i + 5 + length
        if not control & 0x01:
            return  # adaptation field only: no payload, the counter does not move
        if b3 & 0xC0:
            self.scrambled += 1
            return
        cc = b3 & 0x0F
        state = self._pes.get(pid)
        if state is None:
            if pid == PAT_PID or pid in self._pmt_pids:
                self._psi(pid, bool(b1 & 0x40), cc, discontinuity, view[start:i + TS_PACKET])
            return
        if state.cc >= 0 and not discontinuity:
            if cc == state.cc:
                self.duplicates += 1
                return
            if cc != (state.cc + 1) & 0x0F:
                self.cc_errors += 1
                state.corrupt = True
        state.cc = cc
        payload = view[start:i + TS_PACKET]
        if b1 & 0x40:
            if state.parts is not None:
                self._emit(state, out)
            state.parts = [payload]
            state.size = len(payload)
            state.random_access = random_access
            state.corrupt = False
            state.length = (6 + (payload[4] << 8 | payload[5])) if len(payload) >= 6 and (
                payload[4] or payload[5]) else 0
        elif state.parts is None:
            return  # joined mid-PES: wait for the next start
        else:
            state.parts.append(payload)
            state.size += len(payload)
            state.random_access = state.random_access or random_access
        if state.length and state.size >= state.length:
            self._emit(state, out)

    def _emit(self, state: _Pes, out: list[PesPacket]) -> None:
        parts, state.parts = state.parts, None
        if not parts:
            return
        head = parts[0]
        if len(head) < 9:  # the PES header is split across packets (rare): read it from the whole
            head = memoryview(b"".join(parts))
            parts = [head]
        if head[0] or head[1] or head[2] != 1 or head[3] in _NO_OPTIONAL_HEADER or head[6] & 0xC0 != 0x80:
            self.bad_pes += 1
            return
        header_end = 9 + head[8]
        if len(head) < header_end:
            head = memoryview(b"".join(parts))
            parts = [head]
            if len(head) < header_end:
                self.bad_pes += 1
                return
        pts = dts = None
        flags = head[7] >> 6
        if flags & 0x02 and header_end >= 14:
            pts = dts = _timestamp(head, 9)
            if flags == 0x03 and header_end >= 19:
                dts = _timestamp(head, 14)
        parts[0] = head[header_end:]
        data = b"".join(parts)
        if state.length and len(data) > state.length - header_end:
            data = data[:state.length - header_end]
        out.append(PesPacket(state.pid, state.stream_type, pts, dts, data, state.random_access, state.corrupt))

    # -- PSI ----------------------------------------------------------------------------------------
    def _psi(self, pid: int, unit_start: bool, cc: int, discontinuity: bool, payload: memoryview) -> None:
        last = self._psi_cc.get(pid)
        self._psi_cc[pid] = cc
        if last is not None and not discontinuity:
            if cc == last:
                return  # duplicate
            if cc != (last + 1) & 0x0F:
                self._sections.pop(pid, None)  # a section in progress lost a piece
        buf = self._sections.get(pid)
        if unit_start:
            if not len(payload):
                return
            pointer = payload[0]
            if buf is not None:
                buf += payload[1:1 + pointer]
                self._sections_in(pid, buf)
            buf = bytearray(payload[1 + pointer:])
        elif buf is None:
            return
        else:
            buf += payload
        if len(buf) > MAX_SECTION:
            self._sections.pop(pid, None)
            return
        self._sections[pid] = buf
        self._sections_in(pid, buf)

    def _sections_in(self, pid: int, buf: bytearray) -> None:
        """Read every complete section at the front of ``buf`` (consumed in place)."""
        while len(buf) >= 3 and buf[0] != 0xFF:
            size = 3 + ((buf[1] & 0x0F) << 8 | buf[2])
            if len(buf) < size:
                return
            section = bytes(buf[:size])
            del buf[:size]
            if section != self._last_section.get(pid):
                self._section(pid, section)
        if buf and buf[0] == 0xFF:
            buf.clear()  # stuffing to the end of the packet

    def _section(self, pid: int, section: bytes) -> None:
        if len(section) < 12 or not section[1] & 0x80 or crc32_mpeg(section):
            self.crc_errors += 1
            return
        if not section[5] & 0x01:
            return  # current_next_indicator 0: not applicable yet
        if pid == PAT_PID and section[0] == 0x00:
            self._last_section[pid] = section
            self._pat(section)
        elif pid in self._pmt_pids and section[0] == 0x02:
            self._last_section[pid] = section
            self._pmt(section)

    def _pat(self, section: bytes) -> None:
        pmts: dict[int, int] = {}
        for at in range(8, len(section) - 4 - 3, 4):
            program = section[at] << 8 | section[at + 1]
            if program:  # program 0 names the network PID
                pmts[(section[at + 2] & 0x1F) << 8 | section[at + 3]] = program
        if pmts != self._pmt_pids:
            for gone in set(self._pmt_pids) - set(pmts):
                self._sections.pop(gone, None)
                self._last_section.pop(gone, None)
            self._pmt_pids = pmts
            kept = set(pmts.values())
            if any(p not in kept for p in self._pmts):
                self._pmts = {p: s for p, s in self._pmts.items() if p in kept}
                self._streams_changed()

    def _pmt(self, section: bytes) -> None:
        program = section[3] << 8 | section[4]
        info_length = (section[10] & 0x0F) << 8 | section[11]
        at = 12 + info_length
        end = len(section) - 4
        found: list[ElementaryStream] = []
        while at + 5 <= end:
            stream_type = section[at]
            pid = (section[at + 1] & 0x1F) << 8 | section[at + 2]
            es_length = (section[at + 3] & 0x0F) << 8 | section[at + 4]
            descriptors = section[at + 5:min(end, at + 5 + es_length)]
            found.append(ElementaryStream(pid, stream_type, program, _registration(descriptors)))
            at += 5 + es_length
        streams = tuple(found)
        if self._pmts.get(program) != streams:
            self._pmts[program] = streams
            self._streams_changed()

    def _streams_changed(self) -> None:
        self.streams = {s.pid: s for streams in self._pmts.values() for s in streams}
        self.changes += 1
        wanted = {pid: s.stream_type for pid, s in self.streams.items() if s.stream_type in self.accept}
        for pid in list(self._pes):
            if wanted.get(pid) != self._pes[pid].stream_type:
                del self._pes[pid]
        for pid, stream_type in wanted.items():
            if pid not in self._pes and pid != PAT_PID and pid not in self._pmt_pids:
                self._pes[pid] = _Pes(pid, stream_type)


def _registration(descriptors: bytes) -> bytes:
    at = 0
    while at + 2 <= len(descriptors):
        tag, length = descriptors[at], descriptors[at + 1]
        if tag == 0x05 and length >= 4:
            return bytes(descriptors[at + 2:at + 6])
        at += 2 + length
    return b""
