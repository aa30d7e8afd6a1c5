"""The spliced gzip of a chunklist (gzsplice.py) decompresses to exactly the body a viewer gets, whatever the
template and the query, and is refused where its argument does not hold."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.media.publish.llhls.gzsplice import splice_template

MARK = b"\x00kiln-query\x00"
ascii_text = st.binary(max_size=300).map(lambda b: bytes(x & 0x7F for x in b).replace(MARK, b""))


@settings(max_examples=300, deadline=None)
@given(st.lists(ascii_text, min_size=1, max_size=40), st.binary(min_size=1, max_size=80), st.integers(1, 9))
def test_a_spliced_gzip_is_the_gzip_of_the_body_with_the_query_in(pieces: list[bytes], query: bytes,
                                                                   level: int) -> None:
    template = MARK.join(pieces)
    spliced = splice_template(template, MARK, len(query), level)
    assert spliced is not None
    body = template.replace(MARK, query)
    member = spliced.gzip(query, body)
    assert gzip.decompress(member) == body  # checks the CRC and the length too
    assert zlib.decompress(member, 31) == body


def test_a_playlist_like_template_compresses_and_any_query_of_its_length_fits() -> None:
    line = b'#EXT-X-PART:DURATION=0.500000,URI="part_1_%d_%d_video_AbCdEfGh_llhls.m4s?' + MARK + b'"\n'
    template = b"#EXTM3U\n" + b"".join(line.replace(b"%d_%d", f"{s}_{p}".encode()) for s in range(30, 33)
                                      for p in range(4))
    spliced = splice_template(template, MARK, 21)
    assert spliced is not None
    for query in (b"session=1234_abcdefgh", bytes(range(200, 221)), b"\x80" * 21, MARK[:21].ljust(21, b"x")):
        body = template.replace(MARK, query)
        member = spliced.gzip(query, body)
        assert gzip.decompress(member) == body
        assert len(member) < len(body)


def test_what_cannot_be_spliced() -> None:
    assert splice_template("é".encode() + MARK, MARK, 5) is None, "the filler argument needs an ASCII template"
    assert splice_template(b"a" + MARK, MARK, 0) is None
    assert splice_template(b"a" + MARK, MARK, 70000) is None, "a stored block holds at most 65,535 bytes"
    spliced = splice_template(b"a" + MARK + b"b", MARK, 3)
    assert spliced is not None
    try:
        spliced.gzip(b"four", b"afourb")
    except ValueError:
        pass
    else:
        raise AssertionError("an insert of another length must be refused")
