"""Long-term credentials (RFC 8489 §9.2) with OME's fixed user: ``ome`` / ``airen``.

Nonces are minted without state: the time they were made and an HMAC of it under a secret drawn at
start, so a nonce from another server or from before a restart is refused (438, the client retries
with the new one), and one older than ``NONCE_LIFETIME_S`` is stale (438) however well formed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

USERNAME = "ome"
PASSWORD = "airen"
REALM = "kiln"
NONCE_LIFETIME_S = 600.0


def integrity_key(username: str, realm: str, password: str) -> bytes:
    """MD5(username ":" realm ":" password), the long-term key (RFC 8489 §9.2.2)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()  # noqa: S324 - the RFC's algorithm


@dataclass
class Credentials:
    username: str = USERNAME
    password: str = PASSWORD
    realm: str = REALM
    nonce_lifetime_s: float = NONCE_LIFETIME_S
    _secret: bytes = field(default_factory=lambda: secrets.token_bytes(16), repr=False)

    @property
    def key(self) -> bytes:
        return integrity_key(self.username, self.realm, self.password)

    def nonce(self, now: float) -> bytes:
        stamp = f"{int(now * 1000):x}".encode()
        return stamp + b"-" + self._sign(stamp)

    def nonce_fresh(self, nonce: bytes, now: float) -> bool:
        stamp, _, mac = nonce.partition(b"-")
        if not stamp or not hmac.compare_digest(mac, self._sign(stamp)):
            return False
        try:
            made = int(stamp, 16) / 1000
        except ValueError:
            return False
        return 0 <= now - made < self.nonce_lifetime_s

    def _sign(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, stamp, hashlib.sha256).hexdigest()[:24].encode()
