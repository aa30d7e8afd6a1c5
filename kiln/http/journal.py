"""``GET /v1/journal``: Kiln's event journal, filtered, for the console's timeline and scripts.

Query parameters: ``entity`` (prefix, e.g. ``push:default/app``), ``type`` (repeatable), ``since``
(ISO time), ``after`` (a sequence number: the records after it, for polling) and ``limit``
(1..1000, default 100). Records are ``kiln journal show --json``'s shape, secrets masked.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from kiln.errors import ApiError
from kiln.http.envelope import ok
from kiln.http.router import Call, Router
from kiln.timefmt import parse_time


class JournalReads(Protocol):
    """The service's journal query (``kiln/journal/query.py``); may read files, so called off the loop."""

    def query_json(self, *, entity: str = "", types: Any = (), since: float | None = None,
                   after: int | None = None, limit: int = 100) -> dict[str, Any]: ...


def _int(name: str, text: str | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer: {text!r}") from None


def _since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise ApiError(400, f"since must be an ISO time such as 2026-11-29T10:00:00+00:00: {text!r}") from None


def register(router: Router, api: Any) -> None:
    async def journal(call: Call) -> Response:
        reads: JournalReads | None = getattr(api.ctx, "journal", None)
        if reads is None:
            raise ApiError(404, "Controller not found")
        q = call.request.query_params
        limit = _int("limit", q.get("limit"))
        try:
            found = await run_in_threadpool(
                reads.query_json, entity=q.get("entity") or "", types=[t for t in q.getlist("type") if t],
                since=_since(q.get("since")), after=_int("after", q.get("after")),
                limit=100 if limit is None else limit)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return ok(found)

    router.add("GET", r"/v1/journal", journal)
