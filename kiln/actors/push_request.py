"""Validation of ``:startPush`` / ``:stopPush`` bodies, in OME's check order (rest-spec §9.1–9.2).

Parsing is lenient like OME's: a field of the wrong type counts as absent. The one deliberate
difference is the duplicate id, answered 409 as the seed pages say (OME's code answers 400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from kiln.errors import ApiError

PROTOCOLS = ("rtmp", "mpegts", "srt")
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^/:?#\[\]@\s]+)"
                  r"(?::(?P<port>[0-9]{1,5}))?(?P<rest>[/?#][^\s]*)?$")


@dataclass(frozen=True)
class PushSpec:
    id: str
    stream_name: str
    variant_names: list[str]
    track_ids: list[int]
    protocol: str
    url: str
    stream_key: str

    @property
    def destination(self) -> str:
        return f"{self.url}/{self.stream_key}" if self.stream_key else self.url


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_url(url: str) -> dict[str, str] | None:
    m = _URL.match(url)
    if m is None:
        return None
    port = m.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return None
    return {k: v or "" for k, v in m.groupdict().items()}


def parse_start_push(body: Any, vhost: str, app: str, push_enabled: bool, existing_ids: set[str]) -> PushSpec:
    where = f"[{vhost}/{app}]"
    obj = body if isinstance(body, dict) else {}
    protocol = (_str(obj.get("protocol")) or "").strip().lower()
    if protocol not in PROTOCOLS:
        raise ApiError(400, f"Could not find protocol '{protocol}': {where}")
    if not push_enabled:
        raise ApiError(404, f"Could not find application: {where}")
    task_id = _str(obj.get("id"))
    stream = obj.get("stream") if isinstance(obj.get("stream"), dict) else {}
    stream_name = _str(stream.get("name"))
    url = _str(obj.get("url"))
    missing = [name for name, value in (("id", task_id), ("stream.name", stream_name), ("url", url))
               if not value]  # OME checks IsEmpty(): "" is as missing as absent
    if missing:
        raise ApiError(400, "There is no required parameter [" + "".join(" " + m for m in missing) + "]")
    assert task_id is not None and stream_name is not None and url is not None
    url = url.strip().rstrip("/")
    parts = parse_url(url)
    if parts is None:
        raise ApiError(400, "Could not parse url")
    scheme = parts["scheme"].lower()
    if protocol == "rtmp" and scheme not in ("rtmp", "rtmps"):
        raise ApiError(400, "Unsupported protocol")
    if protocol == "srt":
        if scheme != "srt":
            raise ApiError(400, "Unsupported protocol")
        query = parts["rest"].partition("?")[2]
        mode = parse_qs(query).get("mode", ["caller"])[-1]
        if mode != "caller":
            raise ApiError(400, "Unsupported connection mode")
    if protocol == "mpegts":
        if scheme not in ("udp", "tcp"):
            raise ApiError(400, "Unsupported protocol")
        if scheme == "tcp" and url.endswith("listen"):
            raise ApiError(400, "Unsupported tcp listen")
    if task_id in existing_ids:
        raise ApiError(409, "Duplicate ID")
    track_ids = stream.get("trackIds") if "trackIds" in stream else stream.get("tracks")
    variants = stream.get("variantNames")
    return PushSpec(
        id=task_id,
        stream_name=stream_name,
        variant_names=[v for v in variants if isinstance(v, str)] if isinstance(variants, list) else [],
        track_ids=[t for t in track_ids if isinstance(t, int) and not isinstance(t, bool)]
        if isinstance(track_ids, list) else [],
        protocol=protocol,
        url=url,
        stream_key=(_str(obj.get("streamKey")) or "").strip(),
    )


def parse_stop_push(body: Any, vhost: str, app: str, push_enabled: bool, existing_ids: set[str]) -> str:
    where = f"[{vhost}/{app}]"
    task_id = _str(body.get("id")) if isinstance(body, dict) else None
    if not push_enabled:
        raise ApiError(404, f"Could not find id '{task_id or ''}': {where}")
    if not task_id:
        raise ApiError(400, "There is no required parameter [ id]")
    if task_id not in existing_ids:
        raise ApiError(404, f"Could not find id '{task_id}': {where}")
    return task_id


def list_filter_id(body: Any) -> str | None:
    """The optional exact-id filter of ``:pushes`` / ``:records``."""
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        return body["id"]
    return None
