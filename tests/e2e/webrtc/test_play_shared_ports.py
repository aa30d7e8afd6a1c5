"""Many WebRTC sessions on few UDP ports: aiortc peers (a real ICE/DTLS/SCTP stack) reach Kiln's pooled
sessions through the shared ports, and closing them leaves no route behind."""

from __future__ import annotations

import asyncio

import aioice.ice
import pytest
from aiortc import RTCPeerConnection

from kiln.media.rtc.connection import new_peer_connection, pool_context
from kiln.media.rtc.udp_mux import PortPool
from tests.peers.ports import free_udp_port

pytestmark = pytest.mark.e2e


async def _session(pool: PortPool, n: int) -> tuple[RTCPeerConnection, RTCPeerConnection, str]:
    server = new_peer_connection()
    with pool_context(pool):
        channel = server.createDataChannel("probe")
    client = RTCPeerConnection()
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @client.on("datachannel")
    def on_channel(remote: object) -> None:
        @remote.on("message")  # type: ignore[attr-defined]
        def on_message(message: str) -> None:
            if not got.done():
                got.set_result(message)

    @channel.on("open")
    def on_open() -> None:
        channel.send(f"hello {n}")

    await server.setLocalDescription(await server.createOffer())
    offer = server.localDescription
    assert f" {pool.ports[n % len(pool.ports)].port} typ host" in offer.sdp
    await client.setRemoteDescription(offer)
    await client.setLocalDescription(await client.createAnswer())
    await server.setRemoteDescription(client.localDescription)
    return server, client, await asyncio.wait_for(got, 20)


def test_sessions_share_the_configured_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])

    async def main() -> None:
        pool = PortPool("127.0.0.1", (free_udp_port(), free_udp_port()))
        await pool.open()
        try:
            pairs = [await _session(pool, n) for n in range(3)]
            assert [text for _, _, text in pairs] == ["hello 0", "hello 1", "hello 2"]
            assert pool.sessions == 3
            for server, client, _ in pairs:
                await client.close()
                await server.close()
            assert pool.sessions == 0
            assert all(not port._by_addr for port in pool.ports)
        finally:
            pool.close()

    asyncio.run(main())
