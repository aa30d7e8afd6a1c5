"""RTMP chunk stream (Adobe RTMP spec §5.3), sans-IO: bytes in, messages out, and back.

The reader is the ingest hot path, so it works on whole slices: a chunk's payload is copied with
one slice per chunk (never per byte), a message that fits one chunk is sliced straight out of the
received bytes, and only the few bytes of a header split across reads are kept aside. Memory is
bounded by ``max_message_size`` (partial messages) no matter what lengths or chunk sizes a peer
announces; anything inconsistent raises :class:`RtmpProtocolError`.
"""

from __future__ import annotations

import struct

from kiln.media.formats.rtmp.errors import RtmpProtocolError
from kiln.media.formats.rtmp.messages import ABORT, SET_CHUNK_SIZE, RtmpMessage

DEFAULT_CHUNK_SIZE = 128
MAX_CHUNK_SIZE = 0x7FFFFFFF          # the spec's limit (the top bit must be zero)
DEFAULT_MAX_MESSAGE_SIZE = 16 << 20
DEFAULT_MAX_CHUNK_STREAMS = 64
EXTENDED = 0xFFFFFF
MAX_CSID = 65599

_HDR1 = struct.Struct(">HBHBB")       # ts/delta(3) length(3) type(1); type 0 adds a little-endian stream id
_HDR2 = struct.Struct(">HB")
_U32 = struct.Struct(">I")
_SID = struct.Struct("<I")
_HEADER_SIZES = (11, 7, 3, 0)


class _ChunkStream:
    """Per-csid state: the last header (for header compression) and the message being assembled."""

    __slots__ = ("csid", "timestamp", "delta", "length", "type_id", "stream_id", "extended", "buf", "remaining")

    def __init__(self, csid: int) -> None:
        self.csid = csid
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.extended = False
        self.buf: bytearray | None = None   # the message in progress, None between messages
        self.remaining = 0                 # bytes of the message still to come


class ChunkReader:
    """``feed(data)`` returns the messages completed by ``data``. Set Chunk Size and Abort are applied
    here (they change how the following bytes are read) and not returned."""

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 max_chunk_streams: int = DEFAULT_MAX_CHUNK_STREAMS) -> None:
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams
        self.chunk_size = DEFAULT_CHUNK_SIZE     # as announced by the peer
        self._effective_chunk = DEFAULT_CHUNK_SIZE
        self.bytes_received = 0
        self._streams: dict[int, _ChunkStream] = {}
        self._pending = b""                      # an incomplete chunk header from the previous feed
        self._cur: _ChunkStream | None = None    # stream whose chunk payload is being read
        self._cur_left = 0                       # payload bytes of the current chunk still to come
        self._buffered = 0                       # bytes held in partial messages, all streams
        self._buffer_limit = 2 * max_message_size

    @property
    def mid_message(self) -> bool:
        """The bytes fed so far end inside a message (a header, or a payload, still to come)."""
        return self._cur is not None or bool(self._pending) or self._buffered > 0

    def feed(self, data: bytes) -> list[RtmpMessage]:
        n = len(data)
        self.bytes_received += n
        if self._pending:
            data = self._pending + data
            n = len(data)
            self._pending = b""
        out: list[RtmpMessage] = []
        pos = 0
        mv = memoryview(data)
        cs = self._cur
        if cs is not None:  # the rest of a chunk whose header (and maybe some payload) came in an earlier read
            left = self._cur_left
            buf = cs.buf
            if left > n:  # the chunk goes on past this read too
                if buf is None:
                    cs.buf = bytearray(data)
                else:
                    buf += data
                self._buffered += n
                self._cur_left = left - n
                return out
            self._cur = None
            pos = left
            if buf is None:  # only the header came before (a publisher that writes header and body apart)
                if cs.remaining == 0:  # the whole message is this one slice
                    type_id = cs.type_id
                    if type_id > ABORT:
                        out.append(RtmpMessage(type_id, cs.timestamp, cs.stream_id, data[:left], cs.csid))
                    else:
                        self._emit(cs, data[:left], out)
                else:
                    cs.buf = bytearray(mv[:left])
                    self._buffered += left
            else:
                buf += mv[:left]
                self._buffered += left
                if cs.remaining == 0:
                    self._complete(cs, buf, out)
        streams = self._streams
        while pos < n:
            # ---- basic header
            b0 = data[pos]
            fmt = b0 >> 6
            csid = b0 & 0x3F
            p = pos + 1
            if csid < 2:
                extra = csid + 1
                if p + extra > n:
                    self._pending = data[pos:]
                    break
                csid = 64 + data[p] + (data[p + 1] << 8 if csid == 1 else 0)
                p += extra
            hsize = _HEADER_SIZES[fmt]
            if p + hsize > n:
                self._pending = data[pos:]
                break
            cs = streams.get(csid)
            if cs is None:
                if fmt != 0:
                    raise RtmpProtocolError(f"chunk stream {csid} starts with a type-{fmt} header")
                if len(streams) >= self.max_chunk_streams:
                    raise RtmpProtocolError(f"more than {self.max_chunk_streams} chunk streams in use")
                cs = streams[csid] = _ChunkStream(csid)
            # ---- message header
            buf = cs.buf
            if fmt == 3:
                ext = cs.extended
                if ext:
                    if p + 4 > n:
                        self._pending = data[pos:]
                        break
                    ext_value = _U32.unpack_from(data, p)[0]
                    p += 4
                if buf is None:
                    if ext:
                        cs.delta = ext_value
                    cs.timestamp = (cs.timestamp + cs.delta) & 0xFFFFFFFF
                    cs.remaining = cs.length
            else:
                if buf is not None:
                    raise RtmpProtocolError(
                        f"type-{fmt} header on chunk stream {csid} inside an unfinished message")
                if fmt == 2:
                    th, tl = _HDR2.unpack_from(data, p)
                    length = cs.length
                else:
                    th, tl, lh, ll, cs.type_id = _HDR1.unpack_from(data, p)
                    length = (lh << 8) | ll
                    if length > self.max_message_size:
                        raise RtmpProtocolError(f"message of {length} bytes on chunk stream {csid} exceeds the "
                                                f"{self.max_message_size}-byte limit")
                    cs.length = length
                    if fmt == 0:
                        cs.stream_id = _SID.unpack_from(data, p + 7)[0]
                p += hsize
                field = (th << 8) | tl
                ext = field == EXTENDED
                if ext:
                    if p + 4 > n:
                        self._pending = data[pos:]
                        break
                    field = _U32.unpack_from(data, p)[0]
                    p += 4
                cs.extended = ext
                cs.delta = field
                cs.timestamp = field if fmt == 0 else (cs.timestamp + field) & 0xFFFFFFFF
                cs.remaining = length
            # ---- chunk payload
            pos = p
            remaining = cs.remaining
            chunk = self._effective_chunk
            take = remaining if remaining < chunk else chunk
            remaining -= take
            cs.remaining = remaining
            end = pos + take
            if buf is None and remaining == 0 and end <= n:
                # the whole message is in this chunk and in this read: slice it out directly
                pos = end
                type_id = cs.type_id
                if type_id > ABORT:
                    out.append(RtmpMessage(type_id, cs.timestamp, cs.stream_id, data[p:end] if take else b"", csid))
                else:
                    self._emit(cs, data[p:end], out)
                continue
            if self._buffered + take > self._buffer_limit:
                raise RtmpProtocolError(f"partial messages exceed the {self._buffer_limit}-byte buffering limit")
            if end > n:  # the chunk goes on in the next read (a message's first chunk: no buffer until bytes come)
                if pos < n:
                    if buf is None:
                        cs.buf = bytearray(mv[pos:])
                    else:
                        buf += mv[pos:]
                    self._buffered += n - pos
                self._cur = cs
                self._cur_left = end - n
                break
            if buf is None:
                buf = cs.buf = bytearray(mv[pos:end])
            else:
                buf += mv[pos:end]
            self._buffered += take
            pos = end
            if remaining == 0:
                self._complete(cs, buf, out)
        return out

    def _complete(self, cs: _ChunkStream, buf: bytearray, out: list[RtmpMessage]) -> None:
        """A message assembled from several chunks: its buffer becomes the payload as it is (no copy; the
        stream starts a new one for its next message)."""
        self._buffered -= len(buf)
        cs.buf = None
        self._emit(cs, buf, out)

    def _emit(self, cs: _ChunkStream, payload: bytes | bytearray, out: list[RtmpMessage]) -> None:
        type_id = cs.type_id
        if type_id == SET_CHUNK_SIZE:
            self._set_chunk_size(payload)
        elif type_id == ABORT:
            self._abort(payload)
        else:
            out.append(RtmpMessage(type_id, cs.timestamp, cs.stream_id, payload, cs.csid))

    def _set_chunk_size(self, payload: bytes | bytearray) -> None:
        if len(payload) < 4:
            raise RtmpProtocolError("Set Chunk Size message shorter than 4 bytes")
        size = _U32.unpack_from(payload)[0]
        if size == 0 or size > MAX_CHUNK_SIZE:
            raise RtmpProtocolError(f"Set Chunk Size {size} is outside 1..{MAX_CHUNK_SIZE}")
        self.chunk_size = size
        # a chunk never holds more than one message, so a size above the message limit reads the
        # same as the limit itself: cap it there and keep every count in a bounded range
        self._effective_chunk = min(size, self.max_message_size)

    def _abort(self, payload: bytes | bytearray) -> None:
        if len(payload) < 4:
            raise RtmpProtocolError("Abort message shorter than 4 bytes")
        cs = self._streams.get(_U32.unpack_from(payload)[0])
        if cs is not None and cs.buf is not None:
            self._buffered -= len(cs.buf)
            cs.buf = None
            cs.remaining = 0


class ChunkWriter:
    """Turns messages into chunks, compressing headers against the previous message on each csid."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.chunk_size = chunk_size
        self._last: dict[int, tuple[int, int, int, int, int]] = {}  # csid -> stream, length, type, ts, delta

    def set_chunk_size(self, size: int) -> None:
        """Use ``size`` from now on (send the Set Chunk Size message with the old size first)."""
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size {size} outside 1..{MAX_CHUNK_SIZE}")
        self.chunk_size = size

    @staticmethod
    def _basic_header(fmt: int, csid: int) -> bytes:
        if 2 <= csid < 64:
            return bytes([(fmt << 6) | csid])
        if 64 <= csid < 320:
            return bytes([fmt << 6, csid - 64])
        if 320 <= csid <= MAX_CSID:
            return bytes([(fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])
        raise ValueError(f"chunk stream id {csid} outside 2..{MAX_CSID}")

    def write(self, csid: int, type_id: int, timestamp: int, stream_id: int, payload: bytes) -> bytes:
        timestamp &= 0xFFFFFFFF
        length = len(payload)
        if length > 0xFFFFFF:
            raise ValueError(f"message of {length} bytes does not fit a 24-bit length")
        last = self._last.get(csid)
        fmt = 0
        field = timestamp
        if last is not None and last[0] == stream_id and timestamp >= last[3]:
            field = timestamp - last[3]
            same_shape = last[1] == length and last[2] == type_id
            fmt = (3 if field == last[4] else 2) if same_shape else 1
        self._last[csid] = (stream_id, length, type_id, timestamp, field)
        ext = field >= EXTENDED
        ts3 = (EXTENDED if ext else field).to_bytes(3, "big")
        header = self._basic_header(fmt, csid)
        if fmt == 0:
            header += ts3 + length.to_bytes(3, "big") + bytes([type_id]) + _SID.pack(stream_id)
        elif fmt == 1:
            header += ts3 + length.to_bytes(3, "big") + bytes([type_id])
        elif fmt == 2:
            header += ts3
        ext_bytes = _U32.pack(field) if ext else b""
        header += ext_bytes
        if length <= self.chunk_size:
            return header + payload
        continuation = self._basic_header(3, csid) + ext_bytes
        view = memoryview(payload)
        size = self.chunk_size
        parts: list[bytes | memoryview] = [header, view[:size]]
        for start in range(size, length, size):
            parts.append(continuation)
            parts.append(view[start:start + size])
        return b"".join(parts)
