"""The request body's deadline (``ApiApp._read_body``, one timer that cancels the request) when the last chunk
comes in the same loop turn as the deadline: either the body made it and the request goes on with no cancel
left on it, or it is a 408 in OME's envelope; never a request cancelled later in its handler."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

from kiln.service import KilnService
from tests.unit.http.conftest import AUTH

DEADLINE = 0.05
PATH = "/v1/vhosts/default/apps/app:startPush"
PUSH = {"id": "p1", "stream": {"name": "cam"}, "protocol": "rtmp", "url": "rtmp://127.0.0.1:1/live/k"}


def scope() -> dict[str, Any]:
    headers = [(k.lower().encode(), v.encode()) for k, v in AUTH.items()]
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": PATH, "raw_path": PATH.encode(), "query_string": b"", "root_path": "",
            "headers": [*headers, (b"content-type", b"application/json"), (b"host", b"kiln.test")],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8081)}


class Sent:
    def __init__(self) -> None:
        self.status = 0
        self.body = b""

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        await asyncio.sleep(0)  # a real send may wait for the socket: where a pending cancel would land
        if message["type"] == "http.response.start":
            self.status = message["status"]
        else:
            self.body += message.get("body", b"")


async def serve(service: KilnService, receive: Any) -> tuple[asyncio.Task[None], Sent]:
    app = service.build_api()
    app.body_timeout = DEADLINE
    sent = Sent()
    task = asyncio.ensure_future(app.starlette(scope(), receive, sent))
    await asyncio.wait_for(asyncio.shield(task), 10)
    return task, sent


def test_a_last_chunk_handed_over_at_the_deadline_is_served_with_no_cancel_left(service: KilnService) -> None:
    """A server's ``receive`` that hands over the message it already read off the socket even when the request
    is being cancelled (the deadline's timer and the chunk in one loop turn) delivers the body: the push is
    created, answered 200, and the request is no longer counted as cancelling (a later ``asyncio.timeout`` or
    task group in the handler would take a stray count for a cancel from outside)."""
    async def main() -> tuple[asyncio.Task[None], Sent]:
        loop = asyncio.get_running_loop()

        async def receive() -> dict[str, Any]:
            arrived: asyncio.Future[dict[str, Any]] = loop.create_future()
            message = {"type": "http.request", "body": json.dumps(PUSH).encode(), "more_body": False}
            loop.call_later(DEADLINE, arrived.set_result, message)  # due with the deadline, queued after it
            try:
                return await asyncio.shield(arrived)
            except asyncio.CancelledError:
                if arrived.done():
                    return arrived.result()  # read off the wire already: not lost
                await arrived  # the chunk is due in this very turn
                return arrived.result()

        return await serve(service, receive)

    task, sent = asyncio.run(main())
    assert sent.status == 200, sent.body
    assert json.loads(sent.body)["response"]["id"] == "p1"
    assert task.cancelling() == 0
    assert [t.id for t in service.tasks.push_list("default", "app")] == ["p1"]


def test_a_body_still_missing_at_the_deadline_is_a_408_in_the_envelope(service: KilnService) -> None:
    async def main() -> tuple[asyncio.Task[None], Sent]:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()  # as uvicorn's receive: wait for the protocol to have something

        async def receive() -> dict[str, Any]:
            loop.call_later(DEADLINE, event.set)
            await event.wait()
            return {"type": "http.request", "body": json.dumps(PUSH).encode(), "more_body": False}

        return await serve(service, receive)

    task, sent = asyncio.run(main())
    assert sent.status == 408
    assert json.loads(sent.body) == {"message": f"[HTTP] Request body was not received within {DEADLINE:g} s (408)",
                                     "statusCode": 408}
    assert not task.cancelled()
    assert service.tasks.push_list("default", "app") == []
