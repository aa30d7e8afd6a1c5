"""CPU per answer of the player port's fast lane, in one process, for bench/llhls.py (``--cost``).

Why in-process: on a shared 2-core machine the viewer load of (e) measures mostly what the other jobs leave
the server; this measures the work itself. Real code from the parser on: uvicorn's httptools protocol with
Kiln's fast lane (kiln/http/media_protocol.py) over a transport that only counts bytes, an LlhlsServer and
an LlhlsStream fed audio frames by hand (tests/unit/publish/test_llhls_fast_lane.py's harness), on uvloop.
Figures: a direct chunklist (gzip, the viewer's own session), a part, an audio segment, and a blocked reload from
its arrival to its answer written when the part it waits for appears (``--cost-viewers`` connections, one wake).
Run for another checkout with ``--kiln-tree`` (bench/llhls.py runs this file there, as a child).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any


class CountingTransport:
    """What the protocol writes to: counted, not sent (the kernel's share is (e)'s business)."""

    def __init__(self) -> None:
        self.out = 0
        self.closing = False
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        self.out += len(data)

    def writelines(self, chunks: Any) -> None:
        self.out += sum(len(c) for c in chunks)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 3333), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_protocol(self) -> Any:
        return self.protocol


def _request(path: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: kiln.test:3333\r\nUser-Agent: bench\r\nAccept: */*\r\n"
            f"Accept-Encoding: gzip, deflate\r\n\r\n").encode()


async def measure(viewers: int, rounds: int) -> dict[str, float]:
    import uvicorn
    from uvicorn.server import ServerState

    from kiln.config.limits import ConnectionLimits
    from kiln.http.media_protocol import media_protocol
    from tests.unit.publish.test_llhls_fast_lane import FRAME, RATE, Live

    live = Live()
    live.feed(4.5)
    sessions = [await live.session() for _ in range(viewers)]
    key = live.stream.key
    pkg = live.audio
    config = uvicorn.Config(live.server.starlette, log_config=None, access_log=False, lifespan="off", ws="none",
                            http=media_protocol(ConnectionLimits(), "llhls", live.server))
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Sun, 06 Dec 2026 14:00:00 GMT"), (b"server", b"kiln")]
    conns = []
    for session in sessions:
        protocol = config.http_protocol_class(config=config, server_state=state, app_state={})
        transport = CountingTransport()
        transport.protocol = protocol
        protocol.connection_made(transport)
        conns.append((protocol, session, transport))
    figures: dict[str, float] = {}
    last = pkg.last_part()
    assert last is not None
    done = pkg.completed_segments()[-1].number
    direct = {"chunklist": f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?session=%s",
              "part": f"/app/cam/part_1_{last[0]}_{last[1]}_audio_{key}_llhls.m4s?session=%s",
              "segment": f"/app/cam/seg_1_{done}_audio_{key}_llhls.m4s?session=%s"}
    for kind, path in direct.items():
        data = [(p, _request(path % s)) for p, s, _t in conns]
        start = time.process_time()
        for _ in range(rounds):
            live.stream.changes += 1  # a new playlist version each round: every viewer's answer made again
            for protocol, raw in data:
                protocol.data_received(raw)
        figures[kind] = 1e6 * (time.process_time() - start) / (rounds * len(data))
    spent, answered = 0.0, 0
    for _ in range(rounds):
        msn, part = live.stream.next_part_of(pkg)
        path = f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?session=%s&_HLS_msn={msn}&_HLS_part={part}"
        data = [(p, _request(path % s)) for p, s, _t in conns]
        before = [t.out for _p, _s, t in conns]
        start = time.process_time()
        for protocol, raw in data:
            protocol.data_received(raw)
        spent += time.process_time() - start
        while not pkg.has_part(msn, part):
            live.feed(FRAME / RATE)
        start = time.process_time()
        for _ in range(3):  # the part's one loop callback, then the answers
            await asyncio.sleep(0)
        spent += time.process_time() - start
        answered += sum(1 for (_p, _s, t), b in zip(conns, before, strict=True) if t.out > b)
    figures["blocked reload"] = 1e6 * spent / max(1, answered)
    figures["blocked answered"] = answered
    for protocol, _s, _t in conns:
        protocol.connection_lost(None)
    await live.client.aclose()
    return figures


def main() -> None:
    viewers, rounds = int(sys.argv[1]), int(sys.argv[2])
    sys.path.insert(0, str(Path.cwd()))  # the checkout this runs in (bench/llhls.py sets the cwd)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    sys.stdout.write(json.dumps(asyncio.run(measure(viewers, rounds))) + "\n")


if __name__ == "__main__":
    main()
