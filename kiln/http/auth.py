"""HTTP Basic authentication against the AccessToken, with OME's five 401 messages (rest-spec §1.3)."""

from __future__ import annotations

import base64
import binascii
import hmac

from kiln.errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Basic realm="OvenMediaEngine"'}


def check_authorization(header: str | None, token: str) -> ApiError | None:
    """None when the request may proceed, else the 401 to answer."""
    if header is None:
        return ApiError(401, "Authorization header is required to call API")
    parts = header.split(" ")
    if len(parts) != 2:
        return ApiError(401, "Invalid authorization header")
    scheme, payload = parts
    if scheme.lower() != "basic":
        return ApiError(401, f"Not supported credential type: {scheme}")
    try:
        decoded = base64.b64decode(payload.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return ApiError(401, "Invalid credential format")
    if not hmac.compare_digest(decoded, token.encode("utf-8")):
        return ApiError(401, "Invalid credential")
    return None


class TokenCheck:
    """``check_authorization`` for one token. The header every client builds from it (``Basic`` and the token
    in base64) is compared first, in constant time: a read then costs no split, decode or error object."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.expected = b"Basic " + base64.b64encode(token.encode("utf-8"))

    def __call__(self, header: str | None) -> ApiError | None:
        if header is not None and hmac.compare_digest(header.encode("latin-1", "replace"), self.expected):
            return None
        return check_authorization(header, self.token)
