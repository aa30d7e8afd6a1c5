"""The admission request of an HTTP player (LL-HLS, thumbnails): the URL as OME signs it.

OME signs ``scheme://host:port/path?query`` with an explicit port, the local one when the client's
Host header carries none; the query is the raw one, byte for byte. ``real_ip`` is X-Real-IP, else
the first X-Forwarded-For item (what SignedPolicy's ``real_ip`` and webhooks see).
"""

from __future__ import annotations

from starlette.requests import Request

from kiln.admission.contract import AdmissionRequest, Direction


def signed_url(request: Request) -> str:
    host = request.headers.get("host", "") or "127.0.0.1"
    bare = host[1:].partition("]")[2] if host.startswith("[") else host
    if ":" not in bare:
        server = request.scope.get("server")
        port = server[1] if server else (443 if request.url.scheme == "https" else 80)
        host = f"{host}:{port}"
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("utf-8", "replace").partition("?")[0]
    query = request.scope.get("query_string", b"").decode("utf-8", "replace")
    return f"{request.url.scheme}://{host}{path}" + (f"?{query}" if query else "")


def http_admission_request(request: Request, protocol: str, vhost: str, app: str, stream: str) -> AdmissionRequest:
    client = (request.client.host, request.client.port) if request.client else ("", 0)
    real_ip = request.headers.get("x-real-ip") or \
        (request.headers.get("x-forwarded-for", "").split(",")[0].strip() or None)
    return AdmissionRequest(protocol, Direction.OUTGOING, signed_url(request), client, vhost, app, stream,
                            real_ip=real_ip, user_agent=request.headers.get("user-agent"))
