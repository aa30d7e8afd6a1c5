"""WHIP PATCH answers (RFC 9725 §4.3) for requests that cannot be served: the status a client sees, and a session
left as it was. The restart that works is proven end to end (tests/e2e/webrtc/test_ingest_ice_restart.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from kiln.media.ingest.webrtc.ingest import TRICKLE, WebRtcIngest
from kiln.media.ingest.webrtc.session import PublishSession

NEW = "a=ice-ufrag:zz99\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"


class Apps:
    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None:
        return "default", {"providers": {"webrtc": {}}}


def _request(method: str, path: str, body: str, headers: dict[str, str]) -> Request:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"direction=whip",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 3333), "scheme": "http"}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body.encode(), "more_body": False}

    return Request(scope, receive)


async def _patch(ingest: WebRtcIngest, ident: str, body: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    response = await ingest.whip(_request("PATCH", f"/app/cam/{ident}", body, {"Content-Type": TRICKLE, **headers}))
    return response.status_code, bytes(response.body).decode(), dict(response.headers)


def test_bad_patches_get_the_statuses_of_rfc_9725_and_change_nothing() -> None:
    async def main() -> None:
        ingest = WebRtcIngest(opener=None, apps=Apps(), port=3333)  # type: ignore[arg-type]
        session = PublishSession("s1", "default/app/cam", None, timeout_s=5, on_gone=lambda s, r: None)
        ingest.sessions["s1"], ingest._etags["s1"] = session, '"e1"'
        try:
            assert (await _patch(ingest, "nope", NEW, **{"If-Match": "*"}))[0] == 404  # unknown session
            cases = [
                ({"If-Match": '"not-it"'}, NEW, 412, "ETag"),
                ({"If-Match": '"not-it"'}, "garbage", 412, "ETag"),  # the precondition is checked first
                ({"If-Match": "*"}, "garbage", 400, "not an SDP line"),
                ({}, "", 400, "empty"),
                ({"If-Match": "*"}, "a=ice-ufrag:zz99\r\n", 400, "needs a=ice-pwd"),
                ({"If-Match": "*"}, "a=candidate:1 1 udp\r\n", 400, "not an ICE candidate"),
                ({}, NEW, 428, "If-Match: *"),
                ({"If-Match": '"e1"'}, NEW, 422, "If-Match: *"),
                # a session whose ICE is not on Kiln's shared ports (none here) cannot restart: it goes on as it was
                ({"If-Match": "*"}, NEW, 409, "ICE restart refused"),
            ]
            for headers, body, status, text in cases:
                got, said, answered = await _patch(ingest, "s1", body, **headers)
                assert (got, text in said) == (status, True), (headers, body, got, said)
                assert "etag" not in answered
            wrong_type = await ingest.whip(_request("PATCH", "/app/cam/s1", NEW, {"Content-Type": "application/sdp"}))
            assert wrong_type.status_code == 415
            assert (await _patch(ingest, "s1", "a=end-of-candidates\r\n", **{"If-Match": '"e1"'}))[0] == 204
            assert ingest._etags["s1"] == '"e1"' and session.closed_reason is None
        finally:
            session.close("test over")
            await session.closed()

    asyncio.run(main())
