"""Validation of ``:startRecord`` / ``:stopRecord`` bodies, in OME's check order (rest-spec §10.1–10.2).

As for push, a duplicate id is answered 409 as the seed pages say (OME's code answers 400).
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from kiln.errors import ApiError

_SEC_MIN = r"(\*|[0-5]?[0-9]|\*/[0-5]?[0-9])"
_HOUR = r"(\*|[01]?[0-9]|2[0-3]|\*/([01]?[0-9]|2[0-3]))"
SCHEDULE = re.compile(rf"^{_SEC_MIN} {_SEC_MIN} {_HOUR}$")
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class RecordSpec:
    id: str
    transaction_id: str
    stream_name: str
    variant_names: list[str]
    track_ids: list[int]
    file_path: str
    info_path: str
    interval: int
    schedule: str
    segmentation_rule: str
    metadata: str


def new_transaction_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_start_record(body: Any, existing_ids: set[str]) -> RecordSpec:
    obj = body if isinstance(body, dict) else {}
    task_id = _str(obj.get("id"))
    stream = obj.get("stream") if isinstance(obj.get("stream"), dict) else {}
    stream_name = _str(stream.get("name"))
    missing = [n for n, v in (("id", task_id), ("stream.name", stream_name)) if not v]  # OME: IsEmpty()
    if missing:
        raise ApiError(400, "There is no required parameter [" + "".join(" " + m for m in missing) + "]")
    assert task_id is not None and stream_name is not None
    interval = obj.get("interval")
    interval = interval if isinstance(interval, int) and not isinstance(interval, bool) else 0
    schedule = _str(obj.get("schedule")) or ""
    if schedule and interval > 0:
        raise ApiError(400, "[Interval] and [Schedule] cannot be used at the same time")
    if schedule and SCHEDULE.match(schedule) is None:
        raise ApiError(400, "Invalid [schedule] parameter")
    if task_id in existing_ids:
        raise ApiError(409, "Duplicate ID already exists")
    rule = obj.get("segmentationRule")
    track_ids = stream.get("trackIds") if "trackIds" in stream else stream.get("tracks")
    variants = stream.get("variantNames")
    return RecordSpec(
        id=task_id,
        transaction_id=new_transaction_id(),
        stream_name=stream_name,
        variant_names=[v for v in variants if isinstance(v, str)] if isinstance(variants, list) else [],
        track_ids=[t for t in track_ids if isinstance(t, int) and not isinstance(t, bool)]
        if isinstance(track_ids, list) else [],
        file_path=_str(obj.get("filePath")) or "",
        info_path=_str(obj.get("infoPath")) or "",
        interval=max(0, interval),
        schedule=schedule,
        segmentation_rule="continuity" if rule == "continuity" else "discontinuity",
        metadata=_str(obj.get("metadata")) or "",
    )


def parse_stop_record(body: Any, existing_ids: set[str]) -> str:
    task_id = _str(body.get("id")) if isinstance(body, dict) else None
    if not task_id:
        raise ApiError(400, "There is no required parameter [ id]")
    if task_id not in existing_ids:
        raise ApiError(404, f"There is no record information related to the ID [{task_id}]")
    return task_id
