"""``GET /v1/events``: where a stream starts, what its events look like, keep-alives and filters."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kiln.errors import ApiError
from kiln.http.events import record_filter, sse_stream, start_seq
from kiln.journal import Journal, NewRecord
from kiln.journal.feed import JournalFeed
from tests.unit.http.conftest import Api


def test_start_seq_prefers_last_event_id_then_from_then_the_next_record() -> None:
    assert start_seq({"from": "5"}, "41", 100) == 42
    assert start_seq({"from": "5"}, None, 100) == 5
    assert start_seq({"from": "0"}, None, 100) == 1
    assert start_seq({}, None, 100) == 101
    for bad in ("-1", "x", "1.5", " 3", "²", "9" * 5000):
        with pytest.raises(ApiError) as caught:
            start_seq({"from": bad}, None, 100)
        assert caught.value.status == 400 and "from must be a journal sequence number" in caught.value.message
    with pytest.raises(ApiError):
        start_seq({}, "abc", 100)


def parse(chunks: list[bytes]) -> list[dict[str, str]]:
    events = []
    for block in b"".join(chunks).decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
                      and ": " in line)
        if "id" in fields:
            events.append(fields)
    return events


def test_stream_shows_records_filtered_with_keepalives_and_secrets_masked(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, fsync=False)
    feed = JournalFeed(journal)
    journal.append([NewRecord("push:default/app/yt", "PushCreated", 1, {"id": "yt", "stream_key": "k3y"}),
                    NewRecord("app:default/app", "AppCreated", 1, {"name": "app"}),
                    NewRecord("push:default/app/yt", "PushStateChanged", 1,
                              {"id": "yt", "reason": "rtmp://h/app/k3y refused"})]).result(5)

    async def run() -> list[bytes]:
        """Until a keep-alive follows the record: on a loaded machine one may come before it as well."""
        stream = sse_stream(feed, 1, record_filter({"entity": "push:", "type": "PushStateChanged"}), 0.05)
        chunks = [await stream.__anext__()]
        while len(chunks) < 50 and not (b"id: " in b"".join(chunks) and chunks[-1] == b": keep-alive\n\n"):
            chunks.append(await stream.__anext__())
        await stream.aclose()
        return chunks

    chunks = asyncio.run(run())
    assert chunks[0].startswith(b"retry: 1000\n")
    assert chunks[-1] == b": keep-alive\n\n"  # nothing more: a keep-alive comment
    assert all(c == b": keep-alive\n\n" for c in chunks[1:] if b"id: " not in c)
    events = parse(chunks)
    assert [(e["id"], e["event"]) for e in events] == [("3", "PushStateChanged")]
    data = json.loads(events[0]["data"])
    assert data["seq"] == 3 and data["entity"] == "push:default/app/yt"
    assert data["payload"]["reason"] == "rtmp://h/app/*** refused"  # the key learned from a filtered record
    assert feed.open_tails == 0
    journal.close()


def test_bad_resume_point_is_a_400_in_omes_envelope(api: Api) -> None:
    answer = api.get("/v1/events?from=abc")
    assert answer.status_code == 400
    assert answer.json()["statusCode"] == 400 and "from must be" in answer.json()["message"]
    answer = api.get("/v1/events?type=PushCreated,PushStarted")
    assert answer.status_code == 400 and answer.json()["message"] == "[HTTP] Unknown event type: PushStarted (400)"
    answer = api.get("/v1/events", headers={"Last-Event-ID": "x1"})
    assert answer.status_code == 400 and "Last-Event-ID" in answer.json()["message"]
    answer = api.get("/v1/events?from=" + "9" * 5000)  # more digits than int() reads: was a 500
    assert answer.status_code == 400 and "from must be" in answer.json()["message"]
    answer = api.get("/v1/events", headers={"Last-Event-ID": "9" * 5000})
    assert answer.status_code == 400 and "Last-Event-ID" in answer.json()["message"]


def test_events_need_the_api_token(anon: object) -> None:
    answer = anon.get("/v1/events")  # type: ignore[attr-defined]
    assert answer.status_code == 401


def test_a_stream_started_mid_journal_masks_secrets_held_now(tmp_path: Path) -> None:
    """The PushCreated that declared the key is before the stream's start: the key is known anyway."""
    journal = Journal.open(tmp_path, fsync=False)
    feed = JournalFeed(journal)
    journal.append([NewRecord("push:default/app/yt", "PushStateChanged", 1,
                              {"id": "yt", "reason": "rtmp://h/app/k3y refused"})]).result(5)

    async def run(secrets: list[dict[str, object]]) -> str:
        stream = sse_stream(feed, 1, record_filter({}), 5.0, None, lambda: secrets)
        chunks = [await stream.__anext__(), await stream.__anext__()]
        await stream.aclose()
        return json.loads(parse(chunks)[0]["data"])["payload"]["reason"]  # type: ignore[no-any-return]

    assert asyncio.run(run([{"stream_key": "k3y"}])) == "rtmp://h/app/*** refused"
    assert asyncio.run(run([])) == "rtmp://h/app/k3y refused"  # what the seed is for
    journal.close()
