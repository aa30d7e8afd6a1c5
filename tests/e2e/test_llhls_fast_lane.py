"""The player port's HTTP/1.1 (kiln/http/media_protocol.py) on the wire: a blocked reload and the requests a
client pipelines behind it are answered in order; HEAD and ``Connection: close`` behave; oversized request
headers get 431 and a closed connection; a busy keep-alive connection outlives the request-header deadline."""

from __future__ import annotations

import gzip
import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import publish_rtmp

pytestmark = pytest.mark.e2e

MEDIA_TIMEOUT = 10  # the LL-HLS port's request-header deadline (MEDIA_DEFAULTS)


def read_answer(sock: socket.socket, buf: bytearray, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer from ``sock`` (Content-Length bodies, none for HEAD; ``buf`` keeps what follows)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer's headers: {bytes(buf[:200])!r}")
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    need = end + 4 + (0 if head else int(headers.get("content-length", "0")))
    while len(buf) < need:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        buf += chunk
    body = bytes(buf[end + 4:need])
    del buf[:need]
    return int(lines[0].split()[1]), headers, body


def video_chunklist(kiln: KilnProcess, http: httpx.Client, path: str) -> str:
    """The video chunklist's URL (path and query) the stream's master lists, once the stream plays."""
    url = f"http://127.0.0.1:{kiln.ports.llhls}/{path}/llhls.m3u8"
    master: str = kiln.wait_for(lambda: (r := http.get(url)).status_code == 200 and "#EXT-X-STREAM-INF" in r.text
                           and r.text, timeout=30, what="master")
    return next(ln for ln in master.splitlines() if ln and not ln.startswith("#") and "_video_" in ln)


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except (ConnectionResetError, TimeoutError):
        return True


def test_player_port_http_on_the_wire(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/wire", test_flv, loop=True, log_dir=peer_dir)
    port = kiln.ports.llhls
    try:
        with httpx.Client(timeout=15) as http:
            video = video_chunklist(kiln, http, "app/wire")
            text = http.get(f"http://127.0.0.1:{port}{video}").text
        hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part_\d+_(\d+)_(\d+)_', text)
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
        assert hint is not None and init is not None, text
        base = video.split("?")[0].rsplit("/", 1)[0]
        blocked = f"{video}&_HLS_msn={hint.group(1)}&_HLS_part={hint.group(2)}"

        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            # a blocked reload, then two requests pipelined behind it, in one write: answered in that order
            s.sendall(f"GET {blocked} HTTP/1.1\r\nHost: kiln\r\nAccept-Encoding: gzip\r\n\r\n"
                      f"HEAD {base}/{init.group(1)} HTTP/1.1\r\nHost: kiln\r\n\r\n"
                      f"GET {base}/{init.group(1)} HTTP/1.1\r\nHost: kiln\r\n\r\n".encode())
            buf = bytearray()
            status, headers, body = read_answer(s, buf)
            assert (status, headers["content-type"], headers["content-encoding"]) == (
                200, "application/vnd.apple.mpegurl", "gzip")
            assert headers["cache-control"] == "max-age=60" and headers["access-control-allow-origin"] == "*"
            listed = gzip.decompress(body).decode()
            assert f"_{hint.group(1)}_{hint.group(2)}_video_" in listed, "the part it waited for is listed"
            # HEAD: the length of the body a GET gets, and no body (the GET's answer follows at once)
            status, headers, _ = read_answer(s, buf, head=True)
            assert (status, headers["content-type"]) == (200, "video/mp4")
            length = int(headers["content-length"])
            status, headers, body = read_answer(s, buf)
            assert status == 200 and len(body) == length > 0 and body[4:8] == b"ftyp"

            # a busy keep-alive connection is not cut by the request-header deadline (it delivers requests)
            started = time.monotonic()
            while time.monotonic() - started < MEDIA_TIMEOUT + 2:
                s.sendall(f"GET {base}/{init.group(1)} HTTP/1.1\r\nHost: kiln\r\n\r\n".encode())
                assert read_answer(s, buf)[0] == 200
                time.sleep(1.0)

            # Connection: close is honoured after the answer
            s.sendall(f"GET {base}/{init.group(1)} HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n".encode())
            status, headers, body = read_answer(s, buf)
            assert status == 200 and headers.get("connection") == "close" and body[4:8] == b"ftyp"
            assert closed(s)

        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(f"GET {base}/{init.group(1)} HTTP/1.1\r\nHost: kiln\r\nX-Big: {'y' * 40000}\r\n\r\n".encode())
            status, headers, body = read_answer(s, bytearray())
            assert (status, body) == (431, b"request headers are too large")
            assert closed(s)
        with httpx.Client(timeout=15) as http:  # the port still serves everyone else
            assert http.get(f"http://127.0.0.1:{port}{video}").status_code == 200
    finally:
        pub.stop()


def test_large_parts_and_segments_behind_a_slow_reader_are_the_bytes_starlette_serves(kiln: KilnProcess,
                                                                                       test_flv: Path,
                                                                                       peer_dir: Path) -> None:
    """The fast lane hands a large body to the transport as is (no copy into its head); a slow reader makes the
    socket take only some of the answers, the rest waits in the transport, and answers pipelined behind keep
    their order and bytes. The reference is the same file asked with a percent-encoded name, which the
    Starlette path answers."""
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/files", test_flv, loop=True, log_dir=peer_dir)
    port = kiln.ports.llhls
    try:
        with httpx.Client(timeout=15) as http:
            video = video_chunklist(kiln, http, "app/files")
            query = video.split("?", 1)[1]
            base = video.split("?")[0].rsplit("/", 1)[0]
            text = kiln.wait_for(lambda: (t := http.get(f"http://127.0.0.1:{port}{video}").text).count("#EXTINF") >= 2
                                 and t, timeout=30, what="two segments")
            seg = [ln for ln in text.splitlines() if ln.startswith("seg_")][-1].split("?")[0]
            parts = re.findall(r'#EXT-X-PART:[^\n]*URI="(part_[^"?]+)', text)[-3:]
            names = [seg, *parts]
            reference = {name: http.get(f"http://127.0.0.1:{port}{base}/{name.replace('_', '%5F', 1)}?{query}")
                         for name in names}
        assert all(r.status_code == 200 for r in reference.values()), {n: r.status_code for n, r in reference.items()}
        assert len(reference[seg].content) > 16384, "a segment large enough to be written apart from its head"

        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow reader: the server's socket fills
            s.settimeout(20)
            s.connect(("127.0.0.1", port))
            asked = [seg] * 80 + names  # more than the socket's buffer takes: the transport holds the rest
            s.sendall(b"".join(f"GET {base}/{name}?{query} HTTP/1.1\r\nHost: kiln\r\n\r\n".encode()
                               for name in asked))
            time.sleep(0.5)  # let the first answers fill the socket before anything is read
            buf = bytearray()
            for name in asked:
                status, headers, body = read_answer(s, buf)
                assert status == 200 and headers["content-type"] == "video/mp4", name
                assert body == reference[name].content, f"{name}: {len(body)} bytes, not the Starlette path's"
    finally:
        pub.stop()
