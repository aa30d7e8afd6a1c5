"""IceCandidates as OME's Server.xml writes them, read into the ports Kiln binds."""

from __future__ import annotations

import pytest

from kiln.media.rtc.ice_ports import IceConfigError, ice_plan, parse_ice_candidate


def test_ome_sample() -> None:
    plan = ice_plan("*:10000-10004/udp")
    assert plan.ports == (10000, 10001, 10002, 10003, 10004)
    assert plan.advertise == () and plan.warnings == ()


def test_explicit_address_is_advertised_and_lists_join() -> None:
    plan = ice_plan("203.0.113.7:10000-10001/udp,*:10005/udp")
    assert plan.ports == (10000, 10001, 10005)
    assert plan.advertise == ("203.0.113.7",)


def test_port_list_inside_one_candidate() -> None:
    assert parse_ice_candidate("*:10000,10002/udp").ports == (10000, 10002)
    assert ice_plan("*:10000,10002/udp").ports == (10000, 10002)


def test_tcp_and_public_ip_are_warned_not_served() -> None:
    plan = ice_plan("*:10000/tcp,${PublicIP}:10001/udp")
    assert plan.ports == (10001,)
    assert any("ICE over TCP is not implemented" in w for w in plan.warnings)
    assert any("public address discovery" in w for w in plan.warnings)


def test_nothing_configured_says_ephemeral() -> None:
    assert ice_plan(None).ports == ()
    assert "ephemeral" in ice_plan(None).warnings[0]


@pytest.mark.parametrize("text", ["10000", "*:abc/udp", "*:10005-10000/udp", "*:10000/sctp", "*:70000/udp"])
def test_bad_candidates_name_themselves(text: str) -> None:
    with pytest.raises(IceConfigError, match="IceCandidate"):
        parse_ice_candidate(text)
