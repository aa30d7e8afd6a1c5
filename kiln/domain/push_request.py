"""Validation of ``:startPush`` / ``:stopPush`` bodies, in OME's check order (rest-spec §9.1–9.2).

Parsing is lenient like OME's: a field of the wrong type counts as absent. The one deliberate
difference is the duplicate id, answered 409 as the seed pages say (OME's code answers 400).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any
from urllib.parse import parse_qs

from kiln.domain.errors import Conflict, Invalid, NotFound
from kiln.events.codec import storable_int
from kiln.events.tasks import PushSpec

PROTOCOLS = ("rtmp", "mpegts", "srt")
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^/:?#\[\]@\s]+)"
                  r"(?::(?P<port>[0-9]{1,5}))?(?P<rest>[/?#][^\s]*)?$")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_url(url: str) -> dict[str, str] | None:
    m = _URL.match(url)
    if m is None:
        return None
    port = m.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return None
    return {k: v or "" for k, v in m.groupdict().items()}


def missing_parameters(*named: tuple[str, str | None]) -> Invalid | None:
    """OME checks IsEmpty(): "" is as missing as absent; all missing names in one message."""
    missing = [name for name, value in named if not value]
    if not missing:
        return None
    return Invalid("There is no required parameter [" + "".join(" " + m for m in missing) + "]")


def _check_destination(protocol: str, url: str) -> None:
    parts = parse_url(url)
    if parts is None:
        raise Invalid("Could not parse url")
    scheme = parts["scheme"].lower()
    if protocol == "rtmp" and scheme not in ("rtmp", "rtmps"):
        raise Invalid("Unsupported protocol")
    if protocol == "srt":
        if scheme != "srt":
            raise Invalid("Unsupported protocol")
        query = parts["rest"].partition("?")[2]
        if parse_qs(query).get("mode", ["caller"])[-1] != "caller":
            raise Invalid("Unsupported connection mode")
    if protocol == "mpegts":
        if scheme not in ("udp", "tcp"):
            raise Invalid("Unsupported protocol")
        if scheme == "tcp" and url.endswith("listen"):
            raise Invalid("Unsupported tcp listen")


def track_selection(stream: dict[str, Any]) -> tuple[list[str], list[int]]:
    """``variantNames`` and ``trackIds`` (or the legacy ``tracks``), wrong-typed items dropped."""
    track_ids = stream.get("trackIds") if "trackIds" in stream else stream.get("tracks")
    variants = stream.get("variantNames")
    return ([v for v in variants if isinstance(v, str)] if isinstance(variants, list) else [],
            [t for t in track_ids if storable_int(t)]  # beyond 64 bits: no track's id, and no journal keeps it
            if isinstance(track_ids, list) else [])


def parse_start_push(body: Any, vhost: str, app: str, push_enabled: bool, existing_ids: Collection[str]) -> PushSpec:
    where = f"[{vhost}/{app}]"
    obj = _dict(body)
    protocol = (_str(obj.get("protocol")) or "").strip().lower()
    if protocol not in PROTOCOLS:
        raise Invalid(f"Could not find protocol '{protocol}': {where}")
    if not push_enabled:
        raise NotFound(f"Could not find application: {where}")
    task_id = _str(obj.get("id"))
    stream = _dict(obj.get("stream"))
    stream_name = _str(stream.get("name"))
    url = _str(obj.get("url"))
    missing = missing_parameters(("id", task_id), ("stream.name", stream_name), ("url", url))
    if missing is not None:
        raise missing
    assert task_id and stream_name and url
    url = url.strip().rstrip("/")
    _check_destination(protocol, url)
    if task_id in existing_ids:
        raise Conflict("Duplicate ID")
    variant_names, track_ids = track_selection(stream)
    return PushSpec(vhost=vhost, app=app, id=task_id, stream_name=stream_name, variant_names=variant_names,
                    track_ids=track_ids, protocol=protocol, url=url,
                    stream_key=(_str(obj.get("streamKey")) or "").strip())


def parse_stop_push(body: Any, vhost: str, app: str, push_enabled: bool, existing_ids: Collection[str]) -> str:
    where = f"[{vhost}/{app}]"
    task_id = _str(_dict(body).get("id"))
    if not push_enabled:
        raise NotFound(f"Could not find id '{task_id or ''}': {where}")
    if not task_id:
        raise Invalid("There is no required parameter [ id]")
    if task_id not in existing_ids:
        raise NotFound(f"Could not find id '{task_id}': {where}")
    return task_id


def list_filter_id(body: Any) -> str | None:
    """The optional exact-id filter of ``:pushes`` / ``:records``."""
    value = _dict(body).get("id")
    return value if isinstance(value, str) else None
