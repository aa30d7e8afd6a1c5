"""Bit-level reading for parameter sets (SPS, AudioSpecificConfig, ...).

Parameter sets are tens of bytes, so the reader turns the whole buffer into one Python int and
reads fields with shifts: no per-bit loops over bytes, and every read is bounds-checked so a
truncated header raises :class:`CodecConfigError` instead of IndexError.
"""

from __future__ import annotations

from kiln.media.formats.codecs.errors import CodecConfigError

MAX_EXP_GOLOMB_BITS = 32  # ue(v) values in H.264/H.265 headers fit in 32 bits


class BitReader:
    __slots__ = ("_value", "_size", "_pos", "_what")

    def __init__(self, data: bytes, what: str = "bitstream") -> None:
        self._value = int.from_bytes(data, "big")
        self._size = len(data) * 8
        self._pos = 0
        self._what = what

    @property
    def position(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return self._size - self._pos

    def u(self, n: int) -> int:
        """Read an n-bit unsigned big-endian field."""
        if n == 0:
            return 0
        end = self._pos + n
        if end > self._size:
            raise CodecConfigError(f"{self._what} truncated at bit {self._pos} (wanted {n} more bits)")
        self._pos = end
        return (self._value >> (self._size - end)) & ((1 << n) - 1)

    def flag(self) -> bool:
        return self.u(1) == 1

    def skip(self, n: int) -> None:
        if self._pos + n > self._size:
            raise CodecConfigError(f"{self._what} truncated at bit {self._pos} (skipping {n} bits)")
        self._pos += n

    def peek(self, n: int) -> int:
        if self._pos + n > self._size:
            raise CodecConfigError(f"{self._what} truncated at bit {self._pos} (peeking {n} bits)")
        return (self._value >> (self._size - self._pos - n)) & ((1 << n) - 1)

    def ue(self) -> int:
        """Unsigned Exp-Golomb code (ue(v) in the H.264/H.265 specs)."""
        rest = self._size - self._pos
        if rest <= 0:
            raise CodecConfigError(f"{self._what} truncated at bit {self._pos} (Exp-Golomb)")
        window = min(rest, MAX_EXP_GOLOMB_BITS + 1)
        head = (self._value >> (rest - window)) & ((1 << window) - 1)
        if head == 0:
            raise CodecConfigError(f"{self._what}: Exp-Golomb code longer than {MAX_EXP_GOLOMB_BITS} bits")
        zeros = window - head.bit_length()
        self._pos += zeros + 1
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Signed Exp-Golomb code (se(v))."""
        k = self.ue()
        return (k + 1) >> 1 if k & 1 else -(k >> 1)
