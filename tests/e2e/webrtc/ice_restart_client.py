"""The client side of a WHIP ICE restart for an aiortc publisher (tests only: aiortc 1.16 cannot restart).

It does what a browser does when its network changes (RFC 9725 §4.3.2): the old path goes dead, a new
socket is bound, new ``ice-ufrag``/``ice-pwd`` and the new candidate are PATCHed with ``If-Match: *``, and
the server's new credentials and candidates from the 200 answer start a fresh round of checks; aioice, as
the controlling agent, nominates the first pair that succeeds and sends on it. DTLS and SRTP are not
touched. The server's answer is read here with a few lines of its own (not Kiln's parser).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

import httpx
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import Connection, StunProtocol
from aiortc import RTCPeerConnection

TRICKLE = "application/trickle-ice-sdpfrag"


@dataclass
class Restarted:
    status: int
    content_type: str
    etag: str
    answer: str
    server_ufrag: str
    local_port: int           # the client's socket the new pair uses
    switched_after_s: float   # from the PATCH to the new pair carrying media


def ice_connection(pc: RTCPeerConnection) -> Connection:
    transport = pc.getTransceivers()[0].sender.transport.transport
    connection: Connection = transport._connection
    return connection


async def restart_ice(pc: RTCPeerConnection, resource: str, *, move: bool, timeout: float = 20.0) -> Restarted:
    """Restart the publisher's ICE through ``resource`` (the WHIP session URL). ``move``: the old socket goes
    dead first and a new one is used (a network change); else the same socket, new credentials only."""
    conn = ice_connection(pc)
    old_pair = conn._nominated[1]
    old = old_pair.protocol
    loop = asyncio.get_running_loop()
    if move:
        old.transport.sendto = lambda *args, **kwargs: None  # type: ignore[method-assign]  # the path is gone
        old.datagram_received = lambda data, addr: None  # type: ignore[method-assign]
        _, protocol = await loop.create_datagram_endpoint(lambda: StunProtocol(conn), local_addr=("127.0.0.1", 0))
        port = protocol.transport.get_extra_info("sockname")[1]
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", "127.0.0.1"), component=1, transport="udp",
            priority=candidate_priority(1, "host"), host="127.0.0.1", port=port, type="host")
        conn._protocols = [protocol]
    else:
        protocol = old
    ufrag, pwd = secrets.token_hex(3), secrets.token_hex(12)
    media = next(line for line in pc.localDescription.sdp.splitlines() if line.startswith("m="))
    mid = pc.getTransceivers()[0].mid
    fragment = "\r\n".join([
        f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}", " ".join([media.split()[0], "9", *media.split()[2:]]),
        f"a=mid:{mid}", f"a=candidate:{protocol.local_candidate.to_sdp()}", "a=end-of-candidates"]) + "\r\n"
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.patch(resource, content=fragment, headers={"Content-Type": TRICKLE, "If-Match": "*"})
    result = Restarted(response.status_code, response.headers.get("content-type", ""),
                       response.headers.get("etag", ""), response.text, "", protocol.local_candidate.port, 0.0)
    if response.status_code != 200:
        return result
    lines = [line.strip() for line in response.text.splitlines()]
    result.server_ufrag = next(line.split(":", 1)[1] for line in lines if line.startswith("a=ice-ufrag:"))
    server_pwd = next(line.split(":", 1)[1] for line in lines if line.startswith("a=ice-pwd:"))
    # a new ICE generation on the client: new credentials, candidates and check list
    conn._local_username, conn._local_password = ufrag, pwd
    conn.remote_username, conn.remote_password = result.server_ufrag, server_pwd
    conn._remote_candidates, conn._remote_candidates_end = [], False
    conn._check_list, conn._check_list_done, conn._check_list_state = [], False, asyncio.Queue()
    for line in lines:
        if line.startswith("a=candidate:"):
            await conn.add_remote_candidate(Candidate.from_sdp(line[len("a=candidate:"):]))
    # no end-of-candidates here: with the old pair still nominated, aioice would take the list as complete
    deadline = time.monotonic() + timeout
    while conn._nominated[1] is old_pair:  # aggressive nomination: the first pair that succeeds is used
        if time.monotonic() > deadline:
            raise AssertionError("the restarted ICE generation found no pair")
        conn._check_periodic()
        await asyncio.sleep(0.02)
    result.switched_after_s = time.monotonic() - started
    if move:
        old.transport.close()
    return result
