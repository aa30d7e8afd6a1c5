"""A chunklist's gzip for each viewer without compressing it per viewer (pure: zlib only).

Why: a chunklist differs per player only by the session query its URIs carry, so with 1,000 players every
new part asked for 1,000 gzips of the same playlist (~180 µs each here, most of it zlib's stream set-up):
the largest Python cost of a part boundary. The template (the query replaced by a mark) is compressed once;
each player's gzip is those compressed pieces with its query put in between as stored deflate blocks, plus
the CRC of its own body: a join and a crc32 (~8 µs).

Why it is exact: the compressor sees, where each query goes, a filler of the same length made of bytes
>= 0x80, and every template byte is ASCII (checked, else no splice). Each template piece is ended by a sync
flush, so every block kept covers exactly one piece's bytes; a back-reference in it copies bytes equal to
ASCII ones, so it never reaches into a filler, and the fillers' own blocks are dropped. The decoder sees
the same template bytes at the same distances (query and filler have one length), the query bytes
verbatim in between.
"""

from __future__ import annotations

import struct
import zlib

# gzip member header as zlib.compress(level=1, wbits=31) writes it: deflate, no name, mtime 0, fastest, Unix
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\x03"
_FILLER = 0x80
MAX_INSERT = 0xFFFF  # a stored block holds at most this many bytes


class SplicedGzip:
    """The compressed pieces of one template for inserts of one length."""

    __slots__ = ("_blocks", "insert_len")

    def __init__(self, blocks: list[bytes], insert_len: int) -> None:
        self._blocks = blocks
        self.insert_len = insert_len

    def gzip(self, insert: bytes, body: bytes) -> bytes:
        """The gzip member of ``body``, which must be the template with every mark replaced by ``insert``."""
        n = len(insert)
        if n != self.insert_len:
            raise ValueError(f"insert of {n} bytes, compressed for {self.insert_len}")
        stored = b"\x00" + struct.pack("<HH", n, n ^ 0xFFFF) + insert
        return _HEADER + stored.join(self._blocks) + struct.pack("<II", zlib.crc32(body), len(body) & 0xFFFFFFFF)


def splice_template(template: bytes, mark: bytes, insert_len: int, level: int = 1) -> SplicedGzip | None:
    """``template``'s pieces around ``mark`` compressed once for inserts of ``insert_len`` bytes; None when
    the template is not ASCII (the argument above needs it) or the insert does not fit a stored block."""
    if not template.isascii() or not 0 < insert_len <= MAX_INSERT or not mark:
        return None
    pieces = template.split(mark)
    filler = bytes([_FILLER]) * insert_len
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    blocks: list[bytes] = []
    for piece in pieces[:-1]:
        blocks.append(c.compress(piece) + c.flush(zlib.Z_SYNC_FLUSH))
        c.compress(filler)
        c.flush(zlib.Z_SYNC_FLUSH)  # the filler's block: dropped, the query's stored block goes there
    blocks.append(c.compress(pieces[-1]) + c.flush(zlib.Z_FINISH))
    return SplicedGzip(blocks, insert_len)
