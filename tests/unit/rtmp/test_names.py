"""App/stream/query/host from the two RTMP URL forms (OME media spec §1.2)."""

from __future__ import annotations

import pytest

from kiln.media.ingest.rtmp.names import PublishName, resolve_publish_name, tc_url_host


@pytest.mark.parametrize(("app", "tc_url", "name", "expected"), [
    # form A: server URL + stream key (ffmpeg rtmp://h/app/stream, OBS server + key)
    ("app", "rtmp://h.example:1935/app", "stream", PublishName("app", "stream", "", "h.example")),
    ("app", "rtmp://127.0.0.1:1935/app", "stream?token=abc&x=1",
     PublishName("app", "stream", "token=abc&x=1", "127.0.0.1")),
    # form B: the stream rides in the app path and the key is empty
    ("app/stream", "rtmp://h/app/stream", "", PublishName("app", "stream", "", "h")),
    ("app/stream?k=1", "rtmp://h/app/stream?k=1", "", PublishName("app", "stream", "k=1", "h")),
    ("app/stream", "rtmp://h/app/stream", "stream", PublishName("app", "stream", "", "h")),
    # the query only on the tcUrl
    ("app", "rtmp://h/app?policy=p&signature=s", "stream", PublishName("app", "stream", "policy=p&signature=s", "h")),
    # no tcUrl at all: no host, and an empty stream is left for the handler to refuse
    ("app", "", "", PublishName("app", "", "", "")),
    ("/app/", "rtmp://[::1]:1935/app/", "s", PublishName("app", "s", "", "::1")),
])
def test_resolve_publish_name(app: str, tc_url: str, name: str, expected: PublishName) -> None:
    assert resolve_publish_name(app, tc_url, name) == expected


def test_unparsable_tc_url_has_no_host() -> None:
    assert tc_url_host("rtmp://[bad/app") == ""
