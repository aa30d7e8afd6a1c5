"""CPU per start/stop pair in one process (``bench/api.py --cost``): a steadier figure than a served Kiln's.

On a machine other jobs load, a Kiln subprocess's CPU per pair moves 10-20 % from turn to turn (GIL
hand-offs and wake-ups cost more when the cores are busy), more than a change to the API path saves. Here
one process holds a KilnService (its actors and journal, on a temporary data dir), the API port's real
protocol and ASGI app (``service.api_listener``'s uvicorn settings, uvloop) on a loopback TCP listener, and
``--clients`` minimal keep-alive clients on the same loop; it runs start/stop pairs for ``--seconds`` and prints
the process's CPU per pair (``time.process_time``: every thread; the clients' small share is the same for any
tree). Run with ``PYTHONPATH=<tree>`` to measure that tree's Kiln (bench/api.py ``--cost`` takes turns).

Output: one JSON line ``{"pairs": n, "seconds": s, "cpu_us_per_pair": x, "loop_us_per_pair": y}`` (``loop``: the
event loop thread's own CPU, ``time.thread_time``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import socket
import sys
import tempfile
import time
from pathlib import Path

import uvicorn
import uvloop
from _control import api_server_xml
from uvicorn.server import ServerState

from kiln.config import load_server_xml_text
from kiln.service import KilnService, api_listener

TOKEN = "cost-token"
SERVER_XML = api_server_xml(TOKEN, "bench", "live")
APP = "/v1/vhosts/bench/apps/live"
PUSH = {"stream": {"name": "cam"}, "protocol": "rtmp", "url": "rtmp://127.0.0.1:1/live", "streamKey": "k"}
AUTH = "Basic " + base64.b64encode(TOKEN.encode()).decode()


async def request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: object) -> int:
    data = json.dumps(body).encode()
    writer.write(f"POST {path} HTTP/1.1\r\nHost: kiln\r\nAuthorization: {AUTH}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def run(service: KilnService, clients: int, seconds: float, warmup: float) -> dict[str, float]:
    api = service.build_api()
    cfg = uvicorn.Config(api.starlette, log_config=None, access_log=False, lifespan="off", server_header=False,
                         timeout_keep_alive=30, ws="none", **api_listener(service.api_limits, "api"))
    cfg.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Thu, 01 Jan 2026 00:00:00 GMT"), *cfg.encoded_headers]
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = await loop.create_server(
        lambda: cfg.http_protocol_class(config=cfg, server_state=state, app_state={}), sock=sock)
    port = sock.getsockname()[1]
    phase = {"measure": False, "stop": False}
    done = [0, 0]  # pairs, errors

    async def client(index: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        while not phase["stop"]:
            n += 1
            task = f"c{index}-{n}"
            ok = await request(reader, writer, APP + ":startPush", {**PUSH, "id": task}) == 200
            ok = await request(reader, writer, APP + ":stopPush", {"id": task}) == 200 and ok
            if phase["measure"] and not phase["stop"]:
                done[0 if ok else 1] += 1
        writer.close()

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    await asyncio.sleep(warmup)
    phase["measure"] = True
    cpu0, loop0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    phase["stop"] = True
    cpu1, loop1, t1 = time.process_time(), time.thread_time(), time.perf_counter()
    await asyncio.gather(*tasks)
    server.close()
    pairs = max(1, done[0])
    return {"pairs": done[0], "errors": done[1], "seconds": t1 - t0, "cpu_us_per_pair": (cpu1 - cpu0) / pairs * 1e6,
            "loop_us_per_pair": (loop1 - loop0) / pairs * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--no-fsync", action="store_true", help="the journal without fsync (CPU only)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="kiln-api-cost-") as tmp:
        data = Path(tmp) / "data"
        service = KilnService(load_server_xml_text(SERVER_XML, data), data, fsync=not args.no_fsync)
        service.open()
        try:
            result = uvloop.run(run(service, args.clients, args.seconds, args.warmup))
        finally:
            service.close()
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
