"""ICE restart on an aioice connection (no sockets: the connection's protocol records what it would send).
The end-to-end proof, over real sockets with an aiortc publisher, is tests/e2e/webrtc/test_ingest_ice_restart.py."""

from __future__ import annotations

import asyncio
from typing import Any

import aioice
import pytest
from aioice import stun
from aioice.candidate import Candidate
from aioice.ice import CandidatePair

from kiln.media.rtc.ice_restart import PRIVATE_STATE, IceRestartRefused, RestartableConnection, check_aioice
from kiln.media.rtc.stun_route import binding_request_ufrag
from kiln.media.rtc.udp_mux import SharedUdpPort

CLIENT = ("192.0.2.10", 50000)
MOVED = ("192.0.2.10", 50002)


class Recorder:
    """What a StunProtocol is to the connection, keeping what it sends."""

    def __init__(self) -> None:
        self.local_candidate = Candidate(foundation="1", component=1, transport="udp", priority=1, host="198.51.100.1",
                                         port=10000, type="host")
        self.sent: list[tuple[stun.Message, tuple[str, int]]] = []

    def send_stun(self, message: stun.Message, addr: tuple[str, int]) -> None:
        self.sent.append((message, addr))


class Routed(RestartableConnection):
    def __init__(self) -> None:
        super().__init__(ice_controlling=False, local_username="srv1", local_password="serverpasswordserverpw")
        self.routed: list[str] = []
        self.unrouted: list[str] = []
        self.forgotten: list[tuple[str, int]] = []

    def _route_ufrag(self, ufrag: str) -> None:
        self.routed.append(ufrag)

    def _unroute_ufrag(self, ufrag: str) -> None:
        self.unrouted.append(ufrag)

    def _forget_address(self, addr: tuple[str, int]) -> None:
        self.forgotten.append(addr)


def _pair(protocol: Any, addr: tuple[str, int]) -> CandidatePair:
    remote = Candidate(foundation="2", component=1, transport="udp", priority=1, host=addr[0], port=addr[1],
                       type="host")
    remote._network_host = addr[0]
    pair = CandidatePair(protocol, remote)
    pair.state = CandidatePair.State.SUCCEEDED
    return pair


def _connected() -> tuple[Routed, Recorder, CandidatePair]:
    conn, protocol = Routed(), Recorder()
    conn.remote_username, conn.remote_password = "cli1", "clientpasswordclientpw"
    old = _pair(protocol, CLIENT)
    old.nominated = True
    conn._nominated[1] = old
    conn._early_checks_done = True
    return conn, protocol, old


def _check(username: str, key: str) -> stun.Message:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = username
    request.attributes["PRIORITY"] = 1
    request.attributes["ICE-CONTROLLING"] = 1
    request.add_message_integrity(key.encode())
    return stun.parse_message(bytes(request))


def test_this_aioice_has_every_private_name_the_restart_rewrites() -> None:
    assert check_aioice(aioice.__version__, aioice.Connection(ice_controlling=False)) == []
    assert "_nominated" in PRIVATE_STATE


def test_an_aioice_that_renamed_its_internals_or_moved_on_is_named_loudly() -> None:
    class Renamed:
        pass
    problems = check_aioice("0.14.0", Renamed())
    assert problems[0] == "aioice 0.14.0 (restart proven on 0.13.x)"
    assert "Connection._check_list" in problems and "Connection.check_complete()" in problems


def test_a_restart_before_ice_connected_or_with_bad_credentials_is_refused_and_changes_nothing() -> None:
    conn = Routed()
    conn.remote_username, conn.remote_password = "cli1", "clientpasswordclientpw"
    with pytest.raises(IceRestartRefused, match="not connected"):
        conn.restart("cli2", "clientpasswordclientp2")
    conn, _, _ = _connected()
    for ufrag, pwd in (("c", "clientpasswordclientp2"), ("cli2", "short"), ("cli 2", "clientpasswordclientp2")):
        with pytest.raises(IceRestartRefused):
            conn.restart(ufrag, pwd)
    assert (conn.local_username, conn.remote_username, conn.restarts, conn.routed) == ("srv1", "cli1", 0, [])


def test_a_restart_keeps_the_pair_in_use_answering_old_checks_until_a_new_pair_is_nominated() -> None:
    async def main() -> None:
        conn, protocol, old = _connected()
        ufrag, pwd = conn.restart("cli2", "clientpasswordclientp2")
        assert conn.routed == [ufrag] and (conn.local_username, conn.local_password) == (ufrag, pwd)
        assert len(ufrag) >= 4 and len(pwd) >= 22 and ufrag != "srv1"
        assert (conn.remote_username, conn.remote_password) == ("cli2", "clientpasswordclientp2")
        assert conn._nominated[1] is old and conn.restarting  # media still goes to the old pair
        # the old generation's checks are still answered, signed with the old password
        conn.request_received(_check("srv1:cli1", "serverpasswordserverpw"), CLIENT, protocol)  # type: ignore[arg-type]
        answer, to = protocol.sent[-1]
        assert to == CLIENT and answer.message_class == stun.Class.RESPONSE
        signed = stun.parse_message(bytes(answer))
        assert signed.check_message_integrity(b"serverpasswordserverpw")
        assert not signed.check_message_integrity(pwd.encode())
        conn.request_received(_check("srv1:cli1", "notthepassword00000000"), CLIENT, protocol)  # type: ignore[arg-type]
        assert protocol.sent[-1][0].attributes["ERROR-CODE"][0] == 401
        # consent to the old pair uses the old credentials
        request, key = conn.consent_request(old)
        assert request.attributes["USERNAME"] == "cli1:srv1" and key == b"clientpasswordclientpw"
        # a pair of the new generation is nominated: the connection moves to it and lets the old one go
        new = _pair(protocol, MOVED)
        new.nominated = True
        conn._check_list.append(new)
        conn.check_complete(new)
        assert conn._nominated[1] is new and not conn.restarting
        assert conn.unrouted == ["srv1"] and conn.forgotten == [CLIENT]
        request, key = conn.consent_request(new)
        assert request.attributes["USERNAME"] == f"cli2:{ufrag}" and key == b"clientpasswordclientp2"
        # the old credentials are no longer answered
        conn.request_received(_check("srv1:cli1", "serverpasswordserverpw"), CLIENT, protocol)  # type: ignore[arg-type]
        assert protocol.sent[-1][0].attributes["ERROR-CODE"][0] == 401

    asyncio.run(main())


def test_a_restart_of_an_unfinished_restart_drops_the_middle_generation() -> None:
    async def main() -> None:
        conn, _, old = _connected()
        first, _ = conn.restart("cli2", "clientpasswordclientp2")
        second, _ = conn.restart("cli3", "clientpasswordclientp3")
        assert conn.routed == [first, second] and conn.unrouted == [first] and conn.restarts == 2
        assert conn._nominated[1] is old and conn.consent_request(old)[0].attributes["USERNAME"] == "cli1:srv1"

    asyncio.run(main())


def _binding(ufrag: str) -> bytes:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = f"{ufrag}:peer"
    return bytes(request)


def test_the_shared_port_routes_a_restart_s_ufrag_to_the_same_session_and_forgets_what_it_left() -> None:
    port = SharedUdpPort("127.0.0.1", 0)
    got: list[tuple[bytes, tuple[str, int]]] = []

    class Sink:
        def connection_made(self, transport: Any) -> None:
            pass

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            got.append((data, addr))

    sink: Any = Sink()
    port.attach("old1", lambda: sink)
    port.route("new1", sink)
    assert port.sessions == 1  # one session, two ufrags
    assert binding_request_ufrag(_binding("new1")) == "new1"
    port.datagram_received(_binding("new1"), MOVED)
    assert got[-1][1] == MOVED
    port.datagram_received(b"\x80media", MOVED)  # media from the new address reaches the session
    assert len(got) == 2
    with pytest.raises(ValueError):
        port.route("new1", object())  # type: ignore[arg-type]
    port.unroute("old1", sink)
    port.datagram_received(_binding("old1"), ("192.0.2.99", 1))
    assert len(got) == 2 and port.unrouted == 1
    port.forget(MOVED, sink)
    port.datagram_received(b"\x80media", MOVED)
    assert len(got) == 2 and port.unrouted == 2
    port.detach(sink)
    assert port.sessions == 0
