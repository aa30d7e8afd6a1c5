"""The player port's express path (kiln/http/media_protocol.py ``_express``): a lone GET/HEAD that arrives whole in
one read is read without httptools, and is answered exactly as the parser path answers it (the same bytes, the
same questions to the lane, the same keep-alive); anything it does not read (a body, an upgrade, HTTP/1.0,
pipelined or malformed requests, bytes that are the rest of another message's body) goes to httptools."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette

from kiln.config.limits import ConnectionLimits
from kiln.http.media_protocol import media_protocol
from tests.unit.http.fake_transport import connect
from tests.unit.http.test_media_protocol_answers import Recording
from tests.unit.http.test_media_protocol_keepalive import FakeLoop, connection


class CountingParser:
    """httptools' parser, with the reads it was fed counted."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.fed = 0

    def feed_data(self, data: bytes) -> None:
        self.fed += 1
        self.parser.feed_data(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parser, name)


def deliver(request: bytes, whole: bool) -> tuple[bytes, list[Any], bool, int]:
    """(what was written, what the lane was asked, closing, reads httptools was fed) for ``request`` sent in one
    read or byte by byte (which only httptools reads)."""
    loop, lane = FakeLoop(), Recording()
    protocol, transport = connection(loop, lane)
    protocol.server_state.default_headers = [(b"date", b"Mon, 07 Dec 2026 01:00:00 GMT"), (b"server", b"kiln")]
    parser = protocol.parser = CountingParser(protocol.parser)
    if whole:
        protocol.data_received(request)
    else:
        for i in range(len(request)):
            if transport.closing:  # a real transport reads nothing more once it closes
                break
            protocol.data_received(request[i:i + 1])
    closing = transport.closing
    protocol.connection_lost(None)
    return transport.written, lane.asked, closing, parser.fed


PLAYER_GETS = [
    b"GET /app/s/seg_1_4_audio_k_llhls.m4s?session=2_abc HTTP/1.1\r\nHost: 127.0.0.1:3333\r\n"
    b"user-agent: h2load nghttp2/1.52.0\r\naccept-encoding: gzip\r\n\r\n",
    b"HEAD /app/s/part_1_4_0_video_k_llhls.m4s?session=2_abc&_HLS_skip=YES HTTP/1.1\r\nHost: kiln\r\n\r\n",
    b"GET /app/s/chunklist_0_video_k_llhls.m3u8 HTTP/1.1\r\nHOST:kiln:3333 \r\nOrigin: https://Player.example\r\n"
    b"Access-Control-Request-Headers: X-A, x-b\r\nAccept-Encoding: \t*\r\nAccept: */*\r\n\r\n",
    b"GET /app/s/init_1_audio_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n",
    b"GET /app/s/init_1_audio_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\nConnection: Keep-Alive\r\n\r\n",
    b"GET /app/s/init_1_audio_k_llhls.m4s HTTP/1.1\r\nHost: first\r\nHost: second\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", PLAYER_GETS)
def test_a_lone_player_request_skips_the_parser_and_gets_the_parser_paths_answer(request_bytes: bytes) -> None:
    written, asked, closing, fed = deliver(request_bytes, whole=True)
    assert fed == 0, "read without httptools"
    assert written.startswith(b"HTTP/1.1 200 OK\r\n")
    assert (written, asked, closing) == deliver(request_bytes, whole=False)[:3]


NOT_EXPRESS = [
    b"GET /app/s/seg_1_4_audio_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\nContent-Length: 0\r\n\r\n",
    b"GET /app/s/seg_1_4_audio_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\nX-Name: caf\xe9\r\n\r\n",  # obs-text
    b"GET /app/s/seg_1_4_audio_k_llhls.m4s HTTP/1.0\r\nHost: kiln\r\n\r\n",
    b"GET /app/s/seg_1_4_audio_k_llhls.m4s#frag HTTP/1.1\r\nHost: kiln\r\n\r\n",
    b"GET http://kiln/app/s/seg_1_4_audio_k_llhls.m4s?session=1_a HTTP/1.1\r\nHost: kiln\r\n\r\n",
    b"GET /app/s/seg_1_4_audio_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\nConnection: keep-alive, x\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: kiln\r\n\r\nGET /b HTTP/1.1\r\nHost: kiln\r\n\r\n",  # pipelined
    b"GET /a HTTP/1.1\r\nHost : kiln\r\n\r\n",  # not a header name: httptools refuses it
    b"GET /a HTTP/1.1\r\nHost: kiln\r\n  folded\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", NOT_EXPRESS)
def test_what_the_express_path_does_not_read_goes_to_httptools_as_before(request_bytes: bytes) -> None:
    written, asked, closing, fed = deliver(request_bytes, whole=True)
    assert fed == 1, "httptools read it"
    assert (written, asked, closing) == deliver(request_bytes, whole=False)[:3]


def test_a_request_the_lane_leaves_is_fed_to_httptools_after_the_express_read() -> None:
    loop, lane = FakeLoop(), Recording()
    protocol, transport = connection(loop, lane)
    parser = protocol.parser = CountingParser(protocol.parser)
    lane.fast = lambda *args: lane.asked.append(args)  # type: ignore[method-assign]  # answers nothing: None
    protocol.data_received(b"GET /app/s/llhls.m3u8 HTTP/1.1\r\nHost: kiln\r\n\r\n")
    assert parser.fed == 1 and len(lane.asked) == 2, "asked by the express read, then again by the parser path"
    protocol.connection_lost(None)


def test_the_rest_of_a_body_that_looks_like_a_request_is_body_not_a_request() -> None:
    """A POST answered (404) before its body came: the body's bytes, though shaped as a player GET, are the end
    of that message for httptools, never a request for the lane."""
    smuggled = b"GET /app/s/seg_1_4_audio_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\n\r\n"

    async def run() -> tuple[bytes, list[Any]]:
        lane = Recording()
        protocol_class = media_protocol(ConnectionLimits(), "llhls", lane)
        protocol, transport = connect(protocol_class, Starlette())
        protocol.data_received(b"POST /app/s/x HTTP/1.1\r\nHost: kiln\r\nContent-Length: %d\r\n\r\n" % len(smuggled))
        for _ in range(1000):  # up to ~10 s: a loaded machine
            if b"404" in transport.written:
                break
            await asyncio.sleep(0.01)
        assert protocol.cycle is not None and protocol.cycle.response_complete
        protocol.data_received(smuggled)
        await asyncio.sleep(0.05)
        protocol.connection_lost(None)
        return transport.written, lane.asked

    written, asked = asyncio.run(run())
    assert written.startswith(b"HTTP/1.1 404 ") and written.count(b"HTTP/1.1") == 1
    assert asked == [], "the body was not taken for a request"
