"""Allocation state and long-term credentials, with time passed in."""

from __future__ import annotations

import pytest

from kiln.media.rtc.turn.allocation import (
    CHANNEL_S,
    MAX_LIFETIME_S,
    PERMISSION_S,
    Allocation,
    BindRefused,
    granted_lifetime,
)
from kiln.media.rtc.turn.auth import Credentials


def test_lifetimes_are_capped_and_defaulted() -> None:
    assert granted_lifetime(None) == 600
    assert granted_lifetime(30) == 30
    assert granted_lifetime(10**9) == MAX_LIFETIME_S
    assert granted_lifetime(0) == 0


def test_permissions_expire_and_a_channel_refreshes_its_peer_permission() -> None:
    a = Allocation(("127.0.0.1", 5000), expires_at=600)
    a.permit("10.0.0.1", now=0)
    assert a.permitted("10.0.0.1", PERMISSION_S - 1) and not a.permitted("10.0.0.1", PERMISSION_S)
    a.bind(0x4000, ("10.0.0.2", 10000), now=100)
    assert a.permitted("10.0.0.2", 100 + PERMISSION_S - 1)
    assert a.peer_of(0x4000, 101) == ("10.0.0.2", 10000) and a.channel_of(("10.0.0.2", 10000), 101) == 0x4000
    assert a.peer_of(0x4000, 100 + CHANNEL_S) is None
    a.sweep(100 + CHANNEL_S)
    assert a.channels == {} and a.by_peer == {} and a.permissions == {}
    a.bind(0x4000, ("10.0.0.3", 1), now=1000)   # an expired number may be bound again
    assert not a.alive(600) and a.alive(599)


@pytest.mark.parametrize("number,peer", [(0x3FFF, ("10.0.0.9", 1)), (0x5000, ("10.0.0.9", 1)),
                                         (0x4000, ("10.0.0.9", 1)),     # number taken by another peer
                                         (0x4001, ("10.0.0.2", 10000))])  # peer already on another number
def test_channel_binds_the_rfc_forbids(number: int, peer: tuple[str, int]) -> None:
    a = Allocation(("127.0.0.1", 5000), expires_at=600)
    a.bind(0x4000, ("10.0.0.2", 10000), now=0)
    with pytest.raises(BindRefused):
        a.bind(number, peer, now=1)
    a.bind(0x4000, ("10.0.0.2", 10000), now=2)   # rebinding the same pair refreshes it


def test_nonces_are_fresh_for_their_lifetime_and_only_from_this_server() -> None:
    creds = Credentials()
    nonce = creds.nonce(1000.0)
    assert creds.nonce_fresh(nonce, 1000.0)
    assert creds.nonce_fresh(nonce, 1000.0 + creds.nonce_lifetime_s - 1)
    assert not creds.nonce_fresh(nonce, 1000.0 + creds.nonce_lifetime_s)
    assert not Credentials().nonce_fresh(nonce, 1000.0)          # another secret: a restart's old nonce
    stamp, _, mac = nonce.partition(b"-")
    assert not creds.nonce_fresh(b"%x-" % (int(stamp, 16) + 1) + mac, 1000.0)   # a forged time
    assert not creds.nonce_fresh(b"garbage", 1000.0) and not creds.nonce_fresh(b"zz-" + mac, 1000.0)
