"""The ICE part of WHIP PATCH bodies (RFC 8840 fragments, RFC 9725 §4.3) and Kiln's restart answer."""

from __future__ import annotations

import pytest

from kiln.media.rtc.sdpfrag import (
    MAX_CANDIDATES,
    FragmentCandidate,
    SdpFragError,
    first_media,
    parse_fragment,
    restart_answer,
)

# RFC 9725 §4.3.2's restart request, as a browser's WHIP client sends it
RESTART = (
    "a=ice-options:trickle ice2\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "a=mid:0\r\n"
    "a=ice-ufrag:ysXw\r\n"
    "a=ice-pwd:vw5LmwG4y/e6dPP/zAP9Gp5k\r\n"
    "a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n"
    "a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n"
    "a=end-of-candidates\r\n"
)


def test_a_restart_fragment_gives_new_credentials_and_candidates_with_their_mid() -> None:
    fragment = parse_fragment(RESTART)
    assert (fragment.ufrag, fragment.pwd, fragment.end_of_candidates) == ("ysXw", "vw5LmwG4y/e6dPP/zAP9Gp5k", True)
    assert fragment.candidates[0] == FragmentCandidate(
        "1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1", "0", 0)
    assert [c.mid for c in fragment.candidates] == ["0", "0"]
    assert fragment.restarts("EsAw") and not fragment.restarts("ysXw")


def test_a_trickle_fragment_is_not_a_restart() -> None:
    trickle = parse_fragment("a=ice-ufrag:EsAw\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\nm=audio 9 RTP/AVP 0\na=mid:0\n"
                             "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\n")
    assert not trickle.restarts("EsAw") and len(trickle.candidates) == 1
    bare = parse_fragment("a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n")
    assert bare.ufrag is None and not bare.restarts("EsAw") and bare.candidates[0].mline_index == 0
    assert parse_fragment("a=end-of-candidates").end_of_candidates


def test_candidates_keep_the_index_of_their_m_section() -> None:
    two = parse_fragment("m=audio 9 RTP/AVP 0\na=candidate:1 1 udp 1 10.0.0.1 9 typ host\n"
                         "m=video 9 RTP/AVP 96\na=mid:v\na=candidate:2 1 udp 1 10.0.0.2 9 typ host\n")
    assert [(c.mid, c.mline_index) for c in two.candidates] == [(None, 0), ("v", 1)]


@pytest.mark.parametrize("body, reason", [
    ("", "empty"),
    ("\r\n \r\n", "empty"),
    ("this is not sdp", "not an SDP line"),
    ("A=ice-ufrag:abcd", "not an SDP line"),
    ("a=ice-ufrag:ab", "ice-ufrag must be 4 to 256"),
    ("a=ice-ufrag:ab cd", "ice-ufrag must be"),
    ("a=ice-pwd:tooshort", "ice-pwd must be 22 to 256"),
    ("a=ice-pwd:" + "é" * 30, "ice-pwd must be"),
    ("a=ice-ufrag:abcd\na=ice-ufrag:efgh", "two different ice-ufrag"),
    ("a=candidate:1 1 udp", "not an ICE candidate"),
    ("a=candidate:1 x udp 1 10.0.0.1 9 typ host", "not an ICE candidate"),
    ("a=candidate:1 1 udp 1 10.0.0.1 99999 typ host", "not an ICE candidate"),
    ("a=candidate:1 \u00b2 udp 1 10.0.0.1 9 typ host", "not an ICE candidate"),  # isdigit, but int refuses it
    ("a=candidate:1 1 udp 1 10.0.0.1 \u00b2 typ host", "not an ICE candidate"),
    ("a=candidate:1 1 udp \u00b2 10.0.0.1 9 typ host", "not an ICE candidate"),
    ("a=candidate:1 1 udp 1 10.0.0.1 " + "9" * 5000 + " typ host", "not an ICE candidate"),  # more than int reads
    ("a=candidate:1 1 udp 1 10.0.0.1 9 type host", "not an ICE candidate"),
    ("a=candidate:1 1 udp 1 10.0.0.1 9 typ host\n" * (MAX_CANDIDATES + 1), "more than"),
])
def test_what_is_not_a_usable_fragment_says_why(body: str, reason: str) -> None:
    with pytest.raises(SdpFragError, match=reason):
        parse_fragment(body)


def test_a_new_ufrag_without_its_password_is_an_error_not_a_restart() -> None:
    with pytest.raises(SdpFragError, match="needs a=ice-pwd"):
        parse_fragment("a=ice-ufrag:zz99").restarts("abcd")
    assert not parse_fragment("a=ice-ufrag:abcd").restarts("abcd")  # the current ufrag alone: a trickle


ANSWER_SDP = ("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=msid-semantic:WMS *\r\n"
              "m=video 45123 UDP/TLS/RTP/SAVPF 99 100\r\nc=IN IP4 127.0.0.1\r\na=recvonly\r\na=mid:0\r\n"
              "a=ice-ufrag:old1\r\nm=audio 45123 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n")


def test_the_restart_answer_names_the_bundle_s_first_section_and_ends_its_candidates() -> None:
    media, mid, bundle = first_media(ANSWER_SDP)
    assert (media, mid, bundle) == ("m=video 9 UDP/TLS/RTP/SAVPF 99 100", "0", "a=group:BUNDLE 0 1")
    answer = restart_answer("n3wUfrag", "n3wPasswordN3wPassword00", ["1 1 udp 2130706431 203.0.113.7 10000 typ host"],
                            media, mid, bundle)
    assert answer.split("\r\n") == [
        "a=group:BUNDLE 0 1", "m=video 9 UDP/TLS/RTP/SAVPF 99 100", "a=mid:0", "a=ice-ufrag:n3wUfrag",
        "a=ice-pwd:n3wPasswordN3wPassword00", "a=candidate:1 1 udp 2130706431 203.0.113.7 10000 typ host",
        "a=end-of-candidates", ""]
    # what a client reads back from it is what was answered
    back = parse_fragment(answer)
    assert (back.ufrag, back.pwd, back.end_of_candidates) == ("n3wUfrag", "n3wPasswordN3wPassword00", True)
    assert [c.text for c in back.candidates] == ["1 1 udp 2130706431 203.0.113.7 10000 typ host"]


def test_a_description_without_media_has_nothing_to_answer_in() -> None:
    with pytest.raises(SdpFragError):
        first_media("v=0\r\ns=-\r\n")
