"""One allocation's state (RFC 8656 §2.2, §9, §12): its lifetime, permissions and channel bindings.

Pure: time is passed in, so expiry is tested without a clock. A permission is per peer IP and lasts
``PERMISSION_S``; a channel binding ties a number to a peer transport address for ``CHANNEL_S`` and also
refreshes that peer's permission. Nothing here touches a socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kiln.media.rtc.turn.framing import CHANNEL_MAX, CHANNEL_MIN

Address = tuple[str, int]

DEFAULT_LIFETIME_S = 600
MAX_LIFETIME_S = 3600
PERMISSION_S = 300.0
CHANNEL_S = 600.0


class BindRefused(ValueError):
    """A ChannelBind the RFC forbids (400): bad number, number or peer already bound to another."""


def granted_lifetime(requested: int | None) -> int:
    """LIFETIME the server grants: the default when none is asked, never more than the maximum."""
    if requested is None:
        return DEFAULT_LIFETIME_S
    return min(max(requested, 0), MAX_LIFETIME_S)


@dataclass
class Allocation:
    relayed: Address
    expires_at: float
    permissions: dict[str, float] = field(default_factory=dict)            # peer IP -> expiry
    channels: dict[int, tuple[Address, float]] = field(default_factory=dict)  # number -> (peer, expiry)
    by_peer: dict[Address, int] = field(default_factory=dict)

    def alive(self, now: float) -> bool:
        return now < self.expires_at

    def refresh(self, lifetime: int, now: float) -> None:
        self.expires_at = now + lifetime

    def permit(self, ip: str, now: float) -> None:
        self.permissions[ip] = now + PERMISSION_S

    def permitted(self, ip: str, now: float) -> bool:
        expiry = self.permissions.get(ip)
        return expiry is not None and now < expiry

    def bind(self, number: int, peer: Address, now: float) -> None:
        if not CHANNEL_MIN <= number <= CHANNEL_MAX:
            raise BindRefused(f"channel number 0x{number:04x} outside 0x4000-0x4FFF")
        bound = self.channels.get(number)
        if bound is not None and bound[0] != peer:
            raise BindRefused(f"channel 0x{number:04x} is bound to another peer")
        other = self.by_peer.get(peer)
        if other is not None and other != number:
            raise BindRefused(f"peer {peer[0]}:{peer[1]} is bound to channel 0x{other:04x}")
        self.channels[number] = (peer, now + CHANNEL_S)
        self.by_peer[peer] = number
        self.permit(peer[0], now)

    def peer_of(self, number: int, now: float) -> Address | None:
        bound = self.channels.get(number)
        return bound[0] if bound is not None and now < bound[1] else None

    def channel_of(self, peer: Address, now: float) -> int | None:
        number = self.by_peer.get(peer)
        if number is None:
            return None
        return number if now < self.channels[number][1] else None

    def sweep(self, now: float) -> None:
        """Forget expired permissions and bindings (their numbers may be bound again)."""
        for ip in [ip for ip, expiry in self.permissions.items() if expiry <= now]:
            del self.permissions[ip]
        for number in [n for n, (_, expiry) in self.channels.items() if expiry <= now]:
            peer, _ = self.channels.pop(number)
            self.by_peer.pop(peer, None)
