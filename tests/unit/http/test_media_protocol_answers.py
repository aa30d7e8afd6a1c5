"""What the player port's fast lane writes (kiln/http/media_protocol.py): header blocks built once per second and
form of answer are shared by answers alike, yet every answer carries the current Date, its own length and the
connection's keep-alive; the request target reaches the lane split into path and query however it was sent."""

from __future__ import annotations

from typing import Any

from tests.unit.http.test_media_protocol_keepalive import Answer, FakeLoop, connection


class Recording:
    """A lane answering every request with ``body``, recording what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, bytes, bytes, str]] = []
        self.body = b"part bytes"

    def fast(self, method: str, raw_path: bytes, query: bytes, host: str, origin: str | None, acrh: str | None,
             accept_encoding: str) -> Any:
        self.asked.append((method, raw_path, query, host))
        return Answer(body=self.body)


def answers(written: bytes) -> list[tuple[bytes, bytes]]:
    """(header block, body) of each answer written, split by Content-Length."""
    out = []
    while written:
        head, _, rest = written.partition(b"\r\n\r\n")
        length = int(next(line for line in head.split(b"\r\n") if line.startswith(b"content-length: "))[16:])
        out.append((head, rest[:length]))
        written = rest[length:]
    return out


def test_every_answer_carries_the_date_of_its_second_and_its_own_length() -> None:
    loop, lane = FakeLoop(), Recording()
    protocol, transport = connection(loop, lane)
    state = protocol.server_state
    state.default_headers = [(b"date", b"Sun, 06 Dec 2026 23:00:00 GMT"), (b"server", b"kiln")]
    for _ in range(3):
        protocol.data_received(b"GET /app/s/part_1_0_0_video_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\n\r\n")
    lane.body = b"a longer part, another length"
    protocol.data_received(b"GET /app/s/part_1_0_1_video_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\n\r\n")
    # uvicorn renews its default headers each second with a new list
    state.default_headers = [(b"date", b"Sun, 06 Dec 2026 23:00:01 GMT"), (b"server", b"kiln")]
    protocol.data_received(b"GET /app/s/part_1_0_1_video_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\n\r\n")
    got = answers(bytes(transport.written))
    assert [body for _head, body in got] == [b"part bytes"] * 3 + [b"a longer part, another length"] * 2
    dates = [next(line for line in head.split(b"\r\n") if line.startswith(b"date: ")) for head, _b in got]
    assert dates == [b"date: Sun, 06 Dec 2026 23:00:00 GMT"] * 4 + [b"date: Sun, 06 Dec 2026 23:00:01 GMT"]
    for head, body in got:
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"content-type: video/mp4" in head and b"connection: close" not in head
        assert head.count(b"content-length: ") == 1 and f"content-length: {len(body)}".encode() in head
    assert not transport.closing
    protocol.connection_lost(None)


def test_a_head_request_gets_the_length_without_the_body_and_connection_close_is_honoured() -> None:
    loop, lane = FakeLoop(), Recording()
    protocol, transport = connection(loop, lane)
    protocol.data_received(b"HEAD /app/s/part_1_0_0_video_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\n\r\n")
    assert bytes(transport.written).endswith(b"content-length: 10\r\n\r\n"), "HEAD: no body after the headers"
    assert lane.asked[-1][0] == "HEAD"
    transport.writes.clear()
    protocol.data_received(b"GET /app/s/part_1_0_0_video_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\n"
                           b"Connection: close\r\n\r\n")
    assert bytes(transport.written).endswith(b"content-length: 10\r\nconnection: close\r\n\r\npart bytes")
    assert transport.closing
    protocol.connection_lost(None)


def test_the_lane_gets_path_and_query_apart_in_origin_and_absolute_form() -> None:
    loop, lane = FakeLoop(), Recording()
    protocol, transport = connection(loop, lane)
    for target in (b"/app/s/seg_1_4_audio_k_llhls.m4s?session=3_abc&x=1", b"/app/s/seg_1_4_audio_k_llhls.m4s",
                   b"http://kiln:3333/app/s/seg_1_4_audio_k_llhls.m4s?session=3_abc&x=1",
                   b"/app/s/seg_1_4_audio_k_llhls.m4s?session=3_abc&x=1#fragment"):
        protocol.data_received(b"GET " + target + b" HTTP/1.1\r\nHost: kiln:3333\r\n\r\n")
    assert lane.asked == [("GET", b"/app/s/seg_1_4_audio_k_llhls.m4s", b"session=3_abc&x=1", "kiln:3333"),
                          ("GET", b"/app/s/seg_1_4_audio_k_llhls.m4s", b"", "kiln:3333"),
                          ("GET", b"/app/s/seg_1_4_audio_k_llhls.m4s", b"session=3_abc&x=1", "kiln:3333"),
                          ("GET", b"/app/s/seg_1_4_audio_k_llhls.m4s", b"session=3_abc&x=1", "kiln:3333")]
    assert len(answers(bytes(transport.written))) == 4
    protocol.connection_lost(None)
