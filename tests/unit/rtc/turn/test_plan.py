"""``TcpRelay``/``TcpForce`` read from Server.xml, and what offers and WHIP/WHEP answers say about TURN."""

from __future__ import annotations

import pytest

from kiln.config.loader import load_server_xml_text
from kiln.media.rtc.signalling import IceServer
from kiln.media.rtc.turn.plan import TcpRelay, TcpRelayError, TurnOffer
from kiln.media.rtc.turn.targets import RelayTargets


@pytest.mark.parametrize("text,address,port", [("*:3478", "*", 3478), ("203.0.113.7:3478", "203.0.113.7", 3478),
                                               ("[::]:3478", "::", 3478), ("${PublicIP}:3478", "${PublicIP}", 3478),
                                               ("turn.example.org:443/tcp", "turn.example.org", 443)])
def test_tcp_relay_forms(text: str, address: str, port: int) -> None:
    relay = TcpRelay.parse(text)
    assert (relay.address, relay.port) == (address, port)


@pytest.mark.parametrize("text", ["3478", "*:", "*:70000", "*:3478/udp", "a b:1"])
def test_tcp_relay_refused(text: str) -> None:
    with pytest.raises(TcpRelayError):
        TcpRelay.parse(text)


def test_urls_one_per_local_address_or_the_configured_one() -> None:
    assert TcpRelay.parse("*:3478").urls(["10.0.0.5", "192.168.1.2"]) == (
        "turn:10.0.0.5:3478?transport=tcp", "turn:192.168.1.2:3478?transport=tcp")
    assert TcpRelay.parse("203.0.113.7:3478").urls(["10.0.0.5"], 3478) == ("turn:203.0.113.7:3478?transport=tcp",)
    assert TcpRelay.parse("[2001:db8::1]:3478").urls([]) == ("turn:[2001:db8::1]:3478?transport=tcp",)
    assert TcpRelay.parse("${PublicIP}:3478").warnings


def test_offers_carry_the_server_only_when_asked_or_forced() -> None:
    offer = TurnOffer.of(("turn:10.0.0.5:3478?transport=tcp",), force=False)
    server = IceServer(("turn:10.0.0.5:3478?transport=tcp",), "ome", "airen")
    assert offer.for_offer(None) == () and offer.for_offer("udp") == ()
    assert offer.for_offer("tcp") == (server,) and offer.for_offer("TCP") == (server,)
    assert TurnOffer.of(server.urls, force=True).for_offer(None) == (server,)
    assert TurnOffer((), False).for_offer("tcp") == () and TurnOffer((), True).link_headers() == []
    assert offer.link_headers() == ['<turn:10.0.0.5:3478?transport=tcp>; rel="ice-server"; username="ome"; '
                                    'credential="airen"; credential-type="password"']


def test_relay_targets_are_kilns_ice_ports_only() -> None:
    targets = RelayTargets.of("0.0.0.0", [10000, 10001], ["203.0.113.7"])
    assert targets.local_host == "127.0.0.1"
    assert targets.destination(("203.0.113.7", 10001)) == ("127.0.0.1", 10001)
    assert targets.destination(("127.0.0.1", 10000)) == ("127.0.0.1", 10000)
    assert targets.destination(("203.0.113.7", 22)) is None and targets.destination(("8.8.8.8", 10000)) is None
    assert targets.from_ice_port(("127.0.0.1", 10000)) and not targets.from_ice_port(("10.1.1.1", 10000))
    with pytest.raises(ValueError):
        RelayTargets.of("::", [10000], [])


def test_server_xml_tcp_relay_and_force_are_read() -> None:
    xml = """<?xml version="1.0"?><Server version="8"><Name>x</Name><Type>origin</Type><IP>*</IP><Bind><Publishers>
    <WebRTC><Signalling><Port>3333</Port></Signalling><IceCandidates><IceCandidate>*:10000-10004/udp</IceCandidate>
    <TcpRelay>*:3478</TcpRelay><TcpForce>true</TcpForce></IceCandidates></WebRTC></Publishers></Bind>
    <VirtualHosts/></Server>"""
    config = load_server_xml_text(xml, ".")
    assert config.bind.webrtc_tcp_relay == "*:3478" and config.bind.webrtc_tcp_force
    plain = load_server_xml_text(xml.replace("<TcpRelay>*:3478</TcpRelay><TcpForce>true</TcpForce>", ""), ".")
    assert plain.bind.webrtc_tcp_relay is None and not plain.bind.webrtc_tcp_force
