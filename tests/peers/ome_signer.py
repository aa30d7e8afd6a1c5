"""An independent implementation of OME's SignedPolicy signing (media spec §5), for tests only.

Written from the spec, not from kiln.admission: the tests sign with this and Kiln verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().replace("=", "")


def ome_sign(url: str, key: str, policy: dict[str, Any], policy_name: str = "policy",
             signature_name: str = "signature") -> str:
    encoded = _b64(json.dumps(policy).encode())
    unsigned = url + ("&" if "?" in url else "?") + f"{policy_name}={encoded}"
    mac = hmac.new(key.encode(), unsigned.encode(), hashlib.sha1).digest()
    return f"{unsigned}&{signature_name}={_b64(mac)}"


def flip_signature_byte(url: str, signature_name: str = "signature") -> str:
    head, _, sig = url.rpartition(f"{signature_name}=")
    first = "A" if sig[0] != "A" else "B"
    return f"{head}{signature_name}={first}{sig[1:]}"


def ome_signature_ok(url: str, key: str, signature_name: str = "signature") -> bool:
    """Whether a URL ending in ``&<signature_name>=...`` carries OME's signature of what precedes it."""
    unsigned, _, sig = url.rpartition(f"&{signature_name}=")
    mac = hmac.new(key.encode(), unsigned.encode(), hashlib.sha1).digest()
    return bool(unsigned) and sig == _b64(mac)


def ome_policy(url: str, policy_name: str = "policy") -> dict[str, Any]:
    value = url.split(f"{policy_name}=", 1)[1].split("&", 1)[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    return decoded


def ome_sign_raw(unsigned: str, key: str, signature_name: str = "signature") -> str:
    """Sign an already-built URL as-is (for policies that are not JSON)."""
    mac = hmac.new(key.encode(), unsigned.encode(), hashlib.sha1).digest()
    return f"{unsigned}&{signature_name}={_b64(mac)}"
