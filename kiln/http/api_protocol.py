"""The API ports' HTTP/1.1 protocol: httptools (as the player ports) with the slowloris guard and a header
bound that answers in OME's envelope.

Why not h11 (uvicorn's pure-Python parser, which the API ran on before): it cost about as much CPU per
request as everything Kiln does to answer a read (bench/api.py). httptools has no header bound of its own,
so media_protocol.py's is used: beyond ``max_header_bytes`` (whole or trickled in pieces) the answer is the
431 api.py would give, ``{"message":"[HTTP] Request headers are larger than N bytes (431)","statusCode":431}``,
and the connection closes.
"""

from __future__ import annotations

from typing import Any

from kiln.config.limits import ConnectionLimits
from kiln.errors import ApiError
from kiln.http.envelope import BASE_HEADERS, JSON_TYPE, dumps
from kiln.http.media_protocol import media_protocol


def headers_too_large(limit: int) -> ApiError:
    return ApiError(431, f"Request headers are larger than {limit} bytes")


def api_protocol(limits: ConnectionLimits, listener: str) -> type[Any]:
    """The protocol class for one API listener (plain or TLS; its per-client counts are its own)."""
    exc = headers_too_large(limits.max_header_bytes)
    headers = {**BASE_HEADERS, "Content-Type": JSON_TYPE}
    head = "".join(f"{name.lower()}: {value}\r\n" for name, value in headers.items())
    body = dumps({"message": exc.message, "statusCode": exc.status})
    return media_protocol(limits, listener, None, too_big=(head.encode("latin-1"), body))
