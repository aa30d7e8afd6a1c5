"""The API port's HTTP/1.1 on the wire (httptools, kiln/http/api_protocol.py): pipelined requests answered in
order on one keep-alive connection, HEAD, HTTP/1.0, oversized headers (OME's 431 envelope, then closed) and a
request httptools cannot parse."""

from __future__ import annotations

import json
import socket

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.test_llhls_fast_lane import closed, read_answer

pytestmark = pytest.mark.e2e

TOO_BIG = b'{"message":"[HTTP] Request headers are larger than 16384 bytes (431)","statusCode":431}'


def test_api_port_http_on_the_wire(kiln: KilnProcess) -> None:
    auth = kiln.api.headers["Authorization"].encode()
    port = kiln.ports.api
    body = b'{"id": "nope"}'
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(b"GET /v1/vhosts HTTP/1.1\r\nHost: kiln\r\nAuthorization: " + auth + b"\r\n\r\n"
                  b"POST /v1/vhosts/default/apps/app:pushes HTTP/1.1\r\nHost: kiln\r\nAuthorization: " + auth +
                  b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body +
                  b"HEAD /v1/vhosts HTTP/1.1\r\nHost: kiln\r\nAuthorization: " + auth + b"\r\n\r\n"
                  b"GET /v1/nothing HTTP/1.1\r\nHost: kiln\r\n\r\n")
        buf = bytearray()
        status, headers, got = read_answer(s, buf)
        assert (status, got) == (200, b'{"message":"OK","response":["default"],"statusCode":200}')
        assert headers["content-type"] == "application/json;charset=UTF-8"
        status, _, got = read_answer(s, buf)
        assert (status, json.loads(got)) == (200, {"message": "OK", "response": [], "statusCode": 200})
        status, headers, got = read_answer(s, buf, head=True)
        assert (status, got, headers["content-length"]) == (200, b"", "56")
        status, headers, got = read_answer(s, buf)
        assert status == 401 and headers["www-authenticate"] == 'Basic realm="OvenMediaEngine"'
        # still open: the next request on the same connection is answered
        s.sendall(b"GET /v1/vhosts/default/apps HTTP/1.1\r\nHost: kiln\r\nAuthorization: " + auth + b"\r\n\r\n")
        status, _, got = read_answer(s, buf)
        assert (status, got) == (200, b'{"message":"OK","response":["app"],"statusCode":200}')

    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:  # HTTP/1.0: answered, then closed
        s.sendall(b"GET /v1/vhosts HTTP/1.0\r\nAuthorization: " + auth + b"\r\n\r\n")
        buf = bytearray()
        status, _, got = read_answer(s, buf)
        assert status == 200 and json.loads(got)["response"] == ["default"]
        assert closed(s)

    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:  # headers beyond MaxHeaderBytes (16 kB)
        s.sendall(b"GET /v1/vhosts HTTP/1.1\r\nHost: kiln\r\nAuthorization: " + auth + b"\r\nX-Big: " + b"y" * 20000
                  + b"\r\n\r\n")
        buf = bytearray()
        status, headers, got = read_answer(s, buf)
        assert (status, got) == (431, TOO_BIG)
        assert headers["content-type"] == "application/json;charset=UTF-8" and headers["connection"] == "close"
        assert closed(s)

    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:  # not HTTP at all
        s.sendall(b"\x16\x03\x01 hello\r\n\r\n")
        buf = bytearray()
        status, _, _ = read_answer(s, buf)
        assert status == 400
        assert closed(s)
    assert kiln.api.get("/v1/vhosts").json()["response"] == ["default"]


def test_api_answers_carry_one_server_header_as_ome(kiln: KilnProcess) -> None:
    """OME answers ``Server: OvenMediaEngine``; uvicorn's own ``server: uvicorn`` is not added beside it."""
    for r in (kiln.api.get("/v1/vhosts"), kiln.api.get("/v1/nothing"), kiln.api.options("/v1/vhosts")):
        assert r.headers.get_list("server") == ["OvenMediaEngine"], (r.status_code, r.headers)
