"""Frame layout of a journal segment: ``u32 length | u32 crc32 | msgpack body``, little-endian.

The body is the msgpack array ``[seq, time, entity, type, version, payload]``. The payload is a map, or,
for an event schema version listed in ``kiln.events.layouts``, the list of its values in that layout's
order (``stored_payload``; about half the decoding work at replay). A frame whose
header or body runs past the end of the file, or a tail of zeros where a frame should start, is a
torn write; a frame whose CRC or body does not check is damage. The scanner reports which, and
where, and lets the caller decide.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack

from kiln.events.layouts import LAYOUTS
from kiln.journal.records import Record

HEADER = struct.Struct("<II")
MAX_FRAME = 64 * 1024 * 1024


# the journal's commit packs each frame's number and time with one Packer (packb() builds a new one per call, half
# the cost of packing a record); commits run one at a time (journal.py), so nothing else uses it meanwhile
pack_committed = msgpack.Packer(use_bin_type=True).pack
_header, _crc32, _layouts_get = HEADER.pack, zlib.crc32, LAYOUTS.get


def stored_payload(type_: str, version: int, payload: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """The payload as a frame stores it: its values in layout order when its keys are exactly the layout of
    ``(type_, version)`` (as ``Event.payload()`` makes them), else the map itself."""
    names = LAYOUTS.get((type_, version))
    if names is not None and len(payload) == len(names) and tuple(payload) == names:
        return list(payload.values())
    return payload


def check_stored(fields: Any) -> None:
    """Raise ValueError unless ``fields`` is a stored record ``[seq, time, entity, type, version, payload]``
    whose payload is a map or a list of as many values as its type's layout has names."""
    if type(fields) is not list or len(fields) != 6 or type(fields[0]) is not int:
        raise ValueError("record fields have the wrong types")
    payload = fields[5]
    if type(payload) is list:
        names = LAYOUTS.get((fields[3], fields[4]))
        if names is None or len(names) != len(payload):
            raise ValueError(f"no layout of {fields[3]} v{fields[4]} with {len(payload)} fields")
    elif type(payload) is not dict:
        raise ValueError("record fields have the wrong types")


def payload_map(type_: str, version: int, stored: dict[str, Any] | list[Any]) -> dict[str, Any]:
    """The payload as a map, from a stored payload that ``check_stored`` accepted."""
    if type(stored) is list:
        return dict(zip(LAYOUTS[(type_, version)], stored))  # noqa: B905 - check_stored checked the length
    return stored  # type: ignore[return-value]


def encode_frame(record: Record) -> bytes:
    return encode_fields(record.seq, record.time, record.entity, record.type, record.version, record.payload)


def encode_fields(seq: int, time: float, entity: str, type_: str, version: int, payload: dict[str, Any]) -> bytes:
    """``encode_frame`` of a record not built yet."""
    return b"".join(frame_parts(msgpack.packb(seq) + msgpack.packb(time), encode_tail(entity, type_, version, payload)))


def encode_tail(entity: str, type_: str, version: int, payload: dict[str, Any]) -> bytes:
    """The last four fields of a frame's body, ``entity, type, version, payload``, as msgpack (a msgpack array is
    its header and then its elements, one after the other). All that can fail in framing a record fails here:
    a value msgpack cannot store (an int beyond 64 bits, an object) raises, before the record's event changes any
    state (kiln/eventlog.py); the journal's commit then only adds the number and the time (``frame_parts``)."""
    names = _layouts_get((type_, version))
    stored: dict[str, Any] | list[Any] = payload
    if names is not None and len(payload) == len(names) and tuple(payload) == names:
        stored = list(payload.values())  # stored_payload, inlined: this runs once per appended record
    pack = getattr(_per_thread, "pack", None)
    if pack is None:
        pack = _per_thread.pack = msgpack.Packer(use_bin_type=True).pack
    packed: bytes = pack([entity, type_, version, stored])
    return packed[1:]  # without the fixarray header 0x94 (four elements)


def frame_parts(seq_time: bytes, tail: bytes) -> tuple[bytes, bytes, bytes]:
    """One frame, as the parts a write joins: its header, ``[seq, time`` and the record's ``encode_tail``;
    ``seq_time`` is the msgpack of the number and then the time. The body is exactly ``msgpack.packb([seq, time,
    entity, type, version, stored])``, so frames are those of every earlier version, and the checksum chains over
    the parts (the tail is not copied to make the body)."""
    head = _ARRAY6 + seq_time
    return _header(len(head) + len(tail), _crc32(tail, _crc32(head))), head, tail


_ARRAY6 = b"\x96"  # a msgpack fixarray of six elements: [seq, time, entity, type, version, payload]
# a Packer per thread for ``encode_tail``, which every actor runs on its own thread (the shared one is for the
# journal's commit, one at a time: a Packer's buffer is shared state, and a payload's dict subclass would run Python
# code in the middle of a pack)
_per_thread = threading.local()


def decode_body(body: bytes) -> Record:
    fields = msgpack.unpackb(body, raw=False, strict_map_key=False)
    check_stored(fields)
    seq, time_, entity, type_, version, payload = fields
    return Record(seq, float(time_), str(entity), str(type_), int(version), payload_map(type_, version, payload))


@dataclass(frozen=True)
class Frame:
    offset: int
    end: int
    record: Record


@dataclass(frozen=True)
class ScanStop:
    """Where and why a scan stopped before the end of the data (None when it read everything)."""

    offset: int
    reason: str
    torn: bool  # True: the data simply ends mid-frame; False: a complete frame is damaged


def zero_tail(view: memoryview, offset: int) -> bool:
    """Nothing but zeros from ``offset`` to the end: a file system can leave a crashed write's tail so
    (its new size made durable, its data not). A torn write, not damage (every frame scanner asks)."""
    return not view[offset:].tobytes().strip(b"\0")


def scan(data: bytes | memoryview, stop: list[ScanStop]) -> Iterator[Frame]:
    """Yield frames from ``data``; on the first bad frame append a ScanStop to ``stop`` and end."""
    view = memoryview(data)
    offset, size = 0, len(view)
    while offset < size:
        if size - offset < HEADER.size:
            stop.append(ScanStop(offset, "truncated frame header", True))
            return
        length, crc = HEADER.unpack_from(view, offset)
        if length == 0 and zero_tail(view, offset):
            stop.append(ScanStop(offset, "zero-filled tail", True))
            return
        if length > MAX_FRAME:
            stop.append(ScanStop(offset, f"frame length {length} is impossible", False))
            return
        end = offset + HEADER.size + length
        if end > size:
            stop.append(ScanStop(offset, f"frame of {length} bytes cut off at end of file", True))
            return
        body = view[offset + HEADER.size:end]
        if zlib.crc32(body) != crc:
            stop.append(ScanStop(offset, "checksum mismatch", end == size))
            return
        try:
            record = decode_body(bytes(body))
        except Exception as exc:  # noqa: BLE001 - any undecodable body is damage
            stop.append(ScanStop(offset, f"undecodable record ({exc})", False))
            return
        yield Frame(offset, end, record)
        offset = end
