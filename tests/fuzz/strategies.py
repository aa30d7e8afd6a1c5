"""Input generators shared by the fuzz targets: random bytes, and valid inputs taken apart.

Purely random bytes rarely get past a parser's first check, so most targets also mutate a valid
input: flip bytes, cut, splice, duplicate, and overwrite length-sized fields with extreme values
(0, 1, 0x7F…, 0xFF…), which is where a parser that believes a length field gets hurt.
"""

from __future__ import annotations

from hypothesis import strategies as st

EXTREMES = (b"\x00", b"\x01", b"\x7f", b"\x80", b"\xff")
WIDE_EXTREMES = (b"\x00\x00\x00\x00", b"\x00\x00\x00\x01", b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff",
                 b"\x00\xff\xff\xff", b"\x80\x00\x00\x00", b"\xff\xff", b"\x00\x00",
                 b"\x00\x00\x00\x00\x00\x00\x00\x00", b"\xff\xff\xff\xff\xff\xff\xff\xff")


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], max_mutations: int = 6) -> bytes:
    """One of ``seeds`` with a few mutations applied (possibly none: the valid input is a case too)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, max_mutations))):
        op = draw(st.sampled_from(("flip", "set", "wide", "cut", "drop", "insert", "dup")))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at:at + 1] = draw(st.sampled_from(EXTREMES))
        elif op == "wide":
            value = draw(st.sampled_from(WIDE_EXTREMES))
            data[at:at + len(value)] = value
        elif op == "cut":
            del data[at:]
        elif op == "drop":
            del data[at:at + draw(st.integers(1, 16))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "dup":
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
    return bytes(data)


def inputs(seeds: list[bytes], max_random: int = 512) -> st.SearchStrategy[bytes]:
    """Random bytes or a mutated seed, about evenly."""
    return st.one_of(st.binary(max_size=max_random), mutated(seeds))


def splits(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """``data`` cut into pieces as TCP reads would deliver it."""
    return st.lists(st.integers(0, len(data)), max_size=8).map(
        lambda cuts: [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)])
