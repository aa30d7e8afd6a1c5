"""Where app, stream, query and host come from in an RTMP publish (OME media spec §1.2).

Encoders split the same URL differently: ffmpeg and OBS with "server + key" send ``connect`` with
app ``app`` and ``publish`` with ``stream?query``; a client given the full URL as its server and an
empty key sends app ``app/stream`` and an empty publish name. Both must land on the same stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class PublishName:
    app: str
    stream: str
    query: str   # raw, without "?"
    host: str


def _split_query(text: str) -> tuple[str, str]:
    path, _, query = text.partition("?")
    return path, query


def tc_url_host(tc_url: str) -> str:
    """The host of a tcUrl ("" when absent or unparsable); vhost resolution matches on it."""
    try:
        return urlsplit(tc_url).hostname or ""
    except ValueError:
        return ""


def resolve_publish_name(connect_app: str, tc_url: str, publish_name: str) -> PublishName:
    """App = first segment of the connect app; stream = the publish name, or the rest of the app path
    when the publish name is empty; the query from the publish name, else the app, else the tcUrl."""
    app_path, app_query = _split_query(connect_app.strip())
    name, name_query = _split_query(publish_name.strip())
    segments = [s for s in app_path.split("/") if s]
    app = segments[0] if segments else ""
    rest = "/".join(segments[1:])
    stream = name.strip("/") or rest
    tc_query = ""
    if "?" in tc_url:
        tc_query = tc_url.split("?", 1)[1]
    query = name_query or app_query or tc_query
    return PublishName(app, stream, query, tc_url_host(tc_url))
