"""Reading ISO-BMFF back: the box tree, and decoders for every box Kiln writes.

Used by tests and by Kiln's own end-to-end checks, so it is strict: any size or count that does not fit
the bytes raises :class:`BmffError`. Work is bounded by the input length (every box consumes at least
8 bytes, nesting stops at ``MAX_DEPTH``, tables are checked against the bytes left before decoding).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from kiln.media.formats.bmff.errors import BmffError

MAX_DEPTH = 16
MAX_EMPTY_TRUN_SAMPLES = 1 << 20   # a trun with no per-sample fields holds no bytes to check a count against

_HEADER = struct.Struct(">I4s")
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

# Box types whose payload is (after a fixed prefix of the given length) a sequence of boxes.
CHILD_OFFSETS: dict[str, int] = {
    **dict.fromkeys(("moov", "trak", "mdia", "minf", "dinf", "stbl", "mvex", "moof", "traf", "edts",
                     "udta", "mfra", "sinf", "schi"), 0),
    "stsd": 8, "dref": 8,                                                       # FullBox + entry_count
    **dict.fromkeys(("avc1", "avc3", "hvc1", "hev1", "encv"), 78),             # VisualSampleEntry
    **dict.fromkeys(("mp4a", "Opus", "enca"), 28),                              # AudioSampleEntry
}
VISUAL_ENTRIES = frozenset({"avc1", "avc3", "hvc1", "hev1", "encv"})
AUDIO_ENTRIES = frozenset({"mp4a", "Opus", "enca"})


@dataclass(frozen=True, slots=True)
class Box:
    """One box: its type, where it starts in the parsed buffer, and its payload (after the header)."""

    type: str
    offset: int
    size: int
    header_size: int
    payload: bytes
    children: tuple[Box, ...] = ()

    def first(self, box_type: str) -> Box | None:
        return next((c for c in self.children if c.type == box_type), None)

    def child(self, box_type: str) -> Box:
        found = self.first(box_type)
        if found is None:
            raise BmffError(f"{self.type} at {self.offset} has no {box_type}")
        return found

    def all(self, box_type: str) -> list[Box]:
        return [c for c in self.children if c.type == box_type]

    def path(self, path: str) -> Box:
        """The box at ``a/b/c`` below this one (first match at each level)."""
        node = self
        for part in path.split("/"):
            node = node.child(part)
        return node


def parse_boxes(data: bytes) -> list[Box]:
    """The top-level boxes of ``data`` with their known children parsed recursively."""
    return _parse_range(bytes(data), 0, len(data), 0)


def _parse_range(data: bytes, start: int, end: int, depth: int) -> list[Box]:
    if depth > MAX_DEPTH:
        raise BmffError(f"boxes nested deeper than {MAX_DEPTH} levels")
    boxes: list[Box] = []
    pos = start
    while pos < end:
        if end - pos < 8:
            raise BmffError(f"truncated box header at {pos}")
        size, raw_type = _HEADER.unpack_from(data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise BmffError(f"truncated largesize at {pos}")
            (size,) = _U64.unpack_from(data, pos + 8)
            header = 16
        elif size == 0:
            if depth:
                raise BmffError(f"size 0 (to end of file) on a nested box at {pos}")
            size = end - pos
        if raw_type == b"uuid":
            header += 16
        if size < header or size > end - pos:
            raise BmffError(f"box {raw_type!r} at {pos}: size {size} does not fit (header {header}, "
                            f"{end - pos} bytes left)")
        box_type = raw_type.decode("latin-1")
        children: tuple[Box, ...] = ()
        skip = CHILD_OFFSETS.get(box_type)
        if skip is not None:
            if size - header < skip:
                raise BmffError(f"{box_type} at {pos} is shorter than its fixed fields")
            children = tuple(_parse_range(data, pos + header + skip, pos + size, depth + 1))
        boxes.append(Box(box_type, pos, size, header, data[pos + header:pos + size], children))
        pos += size
    return boxes


def find(boxes: list[Box], path: str) -> Box:
    """The box at ``a/b/c`` in a list of top-level boxes (first match at each level)."""
    head, _, rest = path.partition("/")
    top = next((b for b in boxes if b.type == head), None)
    if top is None:
        raise BmffError(f"no top-level {head}")
    return top.path(rest) if rest else top


class _Reader:
    """Bounds-checked sequential reads of one box payload."""

    __slots__ = ("data", "pos", "name")

    def __init__(self, box: Box) -> None:
        self.data, self.pos, self.name = box.payload, 0, box.type

    def unpack(self, fmt: struct.Struct) -> tuple[Any, ...]:
        if self.pos + fmt.size > len(self.data):
            raise BmffError(f"{self.name}: truncated at byte {self.pos} (need {fmt.size})")
        values = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return values

    def u(self, fmt: struct.Struct) -> int:
        value: int = self.unpack(fmt)[0]
        return value

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BmffError(f"{self.name}: {n} bytes needed at {self.pos}, {len(self.data) - self.pos} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def version_flags(self) -> tuple[int, int]:
        word = self.u(_U32)
        return word >> 24, word & 0xFFFFFF

    def c_string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise BmffError(f"{self.name}: string at {self.pos} has no NUL terminator")
        raw = self.data[self.pos:end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BmffError(f"{self.name}: string is not UTF-8") from exc

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out

    def left(self) -> int:
        return len(self.data) - self.pos


def _fixed_16_16(value: int) -> float:
    return value / 65536


_TIMES_V1, _TIMES_V0 = struct.Struct(">QQIQ"), struct.Struct(">IIII")


def _timescale_duration(r: _Reader, version: int) -> tuple[int, int]:
    """mvhd and mdhd: creation and modification times (skipped), then timescale and duration."""
    _, _, timescale, duration = r.unpack(_TIMES_V1 if version == 1 else _TIMES_V0)
    return timescale, duration


@dataclass(frozen=True, slots=True)
class Ftyp:
    major_brand: str
    minor_version: int
    compatible_brands: tuple[str, ...]


def decode_ftyp(box: Box) -> Ftyp:
    r = _Reader(box)
    major, minor = r.unpack(struct.Struct(">4sI"))
    if r.left() % 4:
        raise BmffError("ftyp: compatible brands are not whole 4-byte codes")
    rest = r.rest()
    brands = tuple(rest[i:i + 4].decode("latin-1") for i in range(0, len(rest), 4))
    return Ftyp(major.decode("latin-1"), minor, brands)


@dataclass(frozen=True, slots=True)
class Mvhd:
    version: int
    timescale: int
    duration: int
    rate: float
    volume: float
    next_track_id: int


def decode_mvhd(box: Box) -> Mvhd:
    r = _Reader(box)
    version, _ = r.version_flags()
    timescale, duration = _timescale_duration(r, version)
    rate, volume = r.unpack(struct.Struct(">iH10x36x24x"))
    return Mvhd(version, timescale, duration, _fixed_16_16(rate), volume / 256, r.u(_U32))


@dataclass(frozen=True, slots=True)
class Tkhd:
    version: int
    flags: int
    track_id: int
    duration: int
    layer: int
    alternate_group: int
    volume: float
    width: float
    height: float


def decode_tkhd(box: Box) -> Tkhd:
    r = _Reader(box)
    version, flags = r.version_flags()
    if version == 1:
        _, _, track_id, _, duration = r.unpack(struct.Struct(">QQIIQ"))
    else:
        _, _, track_id, _, duration = r.unpack(struct.Struct(">IIIII"))
    layer, group, volume, width, height = r.unpack(struct.Struct(">8xhhH2x36xII"))
    return Tkhd(version, flags, track_id, duration, layer, group, volume / 256, _fixed_16_16(width),
                _fixed_16_16(height))


@dataclass(frozen=True, slots=True)
class Mdhd:
    version: int
    timescale: int
    duration: int
    language: str


def decode_mdhd(box: Box) -> Mdhd:
    r = _Reader(box)
    version, _ = r.version_flags()
    timescale, duration = _timescale_duration(r, version)
    packed = r.u(_U16)
    language = "".join(chr(((packed >> shift) & 0x1F) + 0x60) for shift in (10, 5, 0))
    return Mdhd(version, timescale, duration, language)


@dataclass(frozen=True, slots=True)
class Hdlr:
    handler_type: str
    name: str


def decode_hdlr(box: Box) -> Hdlr:
    r = _Reader(box)
    r.version_flags()
    (handler,) = r.unpack(struct.Struct(">4x4s12x"))
    name = r.rest().split(b"\0", 1)[0].decode("utf-8", "replace")
    return Hdlr(handler.decode("latin-1"), name)


@dataclass(frozen=True, slots=True)
class VisualSampleEntry:
    format: str
    data_reference_index: int
    width: int
    height: int
    depth: int
    boxes: tuple[Box, ...]

    def config(self, box_type: str) -> bytes | None:
        return next((b.payload for b in self.boxes if b.type == box_type), None)


@dataclass(frozen=True, slots=True)
class AudioSampleEntry:
    format: str
    data_reference_index: int
    channel_count: int
    sample_size: int
    sample_rate: int
    boxes: tuple[Box, ...]

    def config(self, box_type: str) -> bytes | None:
        return next((b.payload for b in self.boxes if b.type == box_type), None)


SampleEntry = VisualSampleEntry | AudioSampleEntry | Box


def decode_sample_entry(box: Box) -> SampleEntry:
    """A visual or audio sample entry; other entry types come back as the raw :class:`Box`."""
    r = _Reader(box)
    if box.type in VISUAL_ENTRIES:
        dri, width, height, depth = r.unpack(struct.Struct(">6xH16xHH14x32xH2x"))
        return VisualSampleEntry(box.type, dri, width, height, depth, box.children)
    if box.type in AUDIO_ENTRIES:
        dri, channels, sample_size, rate = r.unpack(struct.Struct(">6xH8xHH4xI"))
        return AudioSampleEntry(box.type, dri, channels, sample_size, rate >> 16, box.children)
    return box


def decode_stsd(box: Box) -> list[SampleEntry]:
    r = _Reader(box)
    r.version_flags()
    count = r.u(_U32)
    if count != len(box.children):
        raise BmffError(f"stsd: entry_count {count} but {len(box.children)} entries")
    return [decode_sample_entry(entry) for entry in box.children]


@dataclass(frozen=True, slots=True)
class Esds:
    es_id: int
    object_type: int
    stream_type: int
    buffer_size: int
    max_bitrate: int
    avg_bitrate: int
    decoder_specific_info: bytes
    sl_predefined: int | None


def _descriptors(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, body) of each MPEG-4 descriptor in ``data``."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        tag, size, pos = data[pos], 0, pos + 1
        for _ in range(4):
            if pos >= len(data):
                raise BmffError("esds: truncated descriptor size")
            byte = data[pos]
            pos += 1
            size = size << 7 | (byte & 0x7F)
            if not byte & 0x80:
                break
        else:
            raise BmffError("esds: descriptor size longer than 4 bytes")
        if pos + size > len(data):
            raise BmffError(f"esds: descriptor tag {tag:#x} runs past its container")
        out.append((tag, data[pos:pos + size]))
        pos += size
    return out


def decode_esds(box: Box) -> Esds:
    r = _Reader(box)
    r.version_flags()
    top = _descriptors(r.rest())
    if not top or top[0][0] != 0x03 or len(top[0][1]) < 3:
        raise BmffError("esds: no ES_Descriptor")
    es = top[0][1]
    es_id, es_flags = struct.unpack_from(">HB", es)
    pos = 3 + (2 if es_flags & 0x80 else 0)       # dependsOn_ES_ID
    if es_flags & 0x40:                            # URL
        if pos >= len(es):
            raise BmffError("esds: truncated URL")
        pos += 1 + es[pos]
    if es_flags & 0x20:                            # OCR_ES_Id
        pos += 2
    if pos > len(es):
        raise BmffError("esds: ES_Descriptor fields run past its end")
    inner = dict(_descriptors(es[pos:]))
    config = inner.get(0x04)
    if config is None or len(config) < 13:
        raise BmffError("esds: no DecoderConfigDescriptor")
    oti, stream_byte, buf_hi, buf_lo, max_rate, avg_rate = struct.unpack_from(">BBBHII", config)
    dsi = dict(_descriptors(config[13:])).get(0x05, b"")
    sl = inner.get(0x06)
    return Esds(es_id, oti, stream_byte >> 2, buf_hi << 16 | buf_lo, max_rate, avg_rate, dsi,
                sl[0] if sl else None)


@dataclass(frozen=True, slots=True)
class Dops:
    version: int
    output_channel_count: int
    pre_skip: int
    input_sample_rate: int
    output_gain: int
    channel_mapping_family: int
    channel_mapping_table: bytes


def decode_dops(box: Box) -> Dops:
    r = _Reader(box)
    version, channels, pre_skip, rate, gain, family = r.unpack(struct.Struct(">BBHIhB"))
    table = r.take(2 + channels) if family else b""
    return Dops(version, channels, pre_skip, rate, gain, family, table)


@dataclass(frozen=True, slots=True)
class Trex:
    track_id: int
    default_sample_description_index: int
    default_sample_duration: int
    default_sample_size: int
    default_sample_flags: int


def decode_trex(box: Box) -> Trex:
    r = _Reader(box)
    r.version_flags()
    return Trex(*r.unpack(struct.Struct(">5I")))


@dataclass(frozen=True, slots=True)
class Mfhd:
    sequence_number: int


def decode_mfhd(box: Box) -> Mfhd:
    r = _Reader(box)
    r.version_flags()
    return Mfhd(r.u(_U32))


@dataclass(frozen=True, slots=True)
class Tfhd:
    flags: int
    track_id: int
    base_data_offset: int | None
    sample_description_index: int | None
    default_sample_duration: int | None
    default_sample_size: int | None
    default_sample_flags: int | None

    @property
    def default_base_is_moof(self) -> bool:
        return bool(self.flags & 0x020000)


def decode_tfhd(box: Box) -> Tfhd:
    r = _Reader(box)
    _, flags = r.version_flags()
    track_id = r.u(_U32)
    base = r.u(_U64) if flags & 0x01 else None
    index = r.u(_U32) if flags & 0x02 else None
    duration = r.u(_U32) if flags & 0x08 else None
    size = r.u(_U32) if flags & 0x10 else None
    sample_flags = r.u(_U32) if flags & 0x20 else None
    return Tfhd(flags, track_id, base, index, duration, size, sample_flags)


@dataclass(frozen=True, slots=True)
class Tfdt:
    version: int
    base_media_decode_time: int


def decode_tfdt(box: Box) -> Tfdt:
    r = _Reader(box)
    version, _ = r.version_flags()
    return Tfdt(version, r.u(_U64) if version == 1 else r.u(_U32))


@dataclass(frozen=True, slots=True)
class TrunSample:
    duration: int | None
    size: int | None
    flags: int | None
    composition_offset: int | None

    @property
    def is_sync(self) -> bool:
        """From sample_is_non_sync_sample; a sample without flags counts as sync."""
        return self.flags is None or not self.flags & 0x00010000


@dataclass(frozen=True, slots=True)
class Trun:
    version: int
    flags: int
    data_offset: int | None
    first_sample_flags: int | None
    samples: tuple[TrunSample, ...]


_TRUN_FIELDS = ((0x100, "I"), (0x200, "I"), (0x400, "I"), (0x800, None))


def decode_trun(box: Box) -> Trun:
    r = _Reader(box)
    version, flags = r.version_flags()
    count = r.u(_U32)
    data_offset = r.unpack(struct.Struct(">i"))[0] if flags & 0x001 else None
    first_flags = r.u(_U32) if flags & 0x004 else None
    codes = "".join(code or ("i" if version else "I") for bit, code in _TRUN_FIELDS if flags & bit)
    entry_size = 4 * len(codes)
    if entry_size == 0:
        if count > MAX_EMPTY_TRUN_SAMPLES:
            raise BmffError(f"trun: {count} samples without per-sample fields")
        return Trun(version, flags, data_offset, first_flags, (TrunSample(None, None, None, None),) * count)
    if count * entry_size > r.left():
        raise BmffError(f"trun: {count} samples of {entry_size} bytes do not fit in {r.left()} bytes")
    samples = []
    for row in struct.iter_unpack(">" + codes, r.take(count * entry_size)):
        values = iter(row)
        samples.append(TrunSample(*(next(values) if flags & bit else None for bit, _ in _TRUN_FIELDS)))
    return Trun(version, flags, data_offset, first_flags, tuple(samples))


@dataclass(frozen=True, slots=True)
class Emsg:
    version: int
    timescale: int
    presentation_time: int      # absolute (version 1) or the delta from the segment start (version 0)
    event_duration: int
    id: int
    scheme_id_uri: str
    value: str
    message_data: bytes


def decode_emsg(box: Box) -> Emsg:
    r = _Reader(box)
    version, _ = r.version_flags()
    if version == 0:
        scheme, value = r.c_string(), r.c_string()
        timescale, delta, duration, event_id = r.unpack(struct.Struct(">IIII"))
        return Emsg(0, timescale, delta, duration, event_id, scheme, value, r.rest())
    if version != 1:
        raise BmffError(f"emsg: unknown version {version}")
    timescale, time, duration, event_id = r.unpack(struct.Struct(">IQII"))
    scheme, value = r.c_string(), r.c_string()
    return Emsg(1, timescale, time, duration, event_id, scheme, value, r.rest())


DECODERS = {
    "ftyp": decode_ftyp, "mvhd": decode_mvhd, "tkhd": decode_tkhd, "mdhd": decode_mdhd, "hdlr": decode_hdlr,
    "stsd": decode_stsd, "esds": decode_esds, "dOps": decode_dops, "trex": decode_trex, "mfhd": decode_mfhd,
    "tfhd": decode_tfhd, "tfdt": decode_tfdt, "trun": decode_trun, "emsg": decode_emsg,
    **dict.fromkeys(VISUAL_ENTRIES | AUDIO_ENTRIES, decode_sample_entry),
}


def decode(box: Box) -> object:
    """The decoded form of any box type in :data:`DECODERS`."""
    decoder = DECODERS.get(box.type)
    if decoder is None:
        raise BmffError(f"no decoder for box type {box.type!r}")
    return decoder(box)
