"""Fuzz target for WebRTC signalling text from outside: the ICE fragment of a WHIP PATCH (RFC 8840 sdpfrag)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kiln.media.rtc.sdpfrag import SdpFragError, parse_fragment
from tests.fuzz.budget import fuzz, only
from tests.fuzz.strategies import mutated
from tests.unit.rtc.test_sdpfrag import RESTART

_FRAG_PARTS = st.sampled_from(["a=ice-ufrag:", "a=ice-pwd:", "a=candidate:", "a=mid:", "m=audio 9 RTP/AVP 0",
                               "a=end-of-candidates", "\r\n", "\n", " ", "abcd", "vw5LmwG4y/e6dPP/zAP9Gp5k", "1",
                               "udp", "2130706431", "127.0.0.1", "65536", "typ", "host", "é", "\x00", ":", "x=",
                               "²", "9" * 5000])  # digits str.isdigit takes and int() refuses


@fuzz(2.0)
@given(st.one_of(st.text(max_size=256), st.lists(_FRAG_PARTS, max_size=40).map("".join),
                 mutated([RESTART.encode()]).map(lambda b: b.decode("utf-8", "replace"))))
def test_whip_ice_fragment(text: str) -> None:
    fragment = only(SdpFragError, parse_fragment, text)
    if fragment is not None:
        assert len(fragment.candidates) <= 32
        only(SdpFragError, fragment.restarts, "EsAw")
