"""Validation of ``:startRecord`` / ``:stopRecord`` bodies, in OME's check order (rest-spec §10.1–10.2).

As for push, a duplicate id is answered 409 as the seed pages say (OME's code answers 400).
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Collection
from typing import Any

from kiln.domain.errors import Conflict, Invalid, NotFound
from kiln.domain.push_request import missing_parameters, track_selection
from kiln.events.codec import storable_int
from kiln.events.tasks import RecordSpec

_SEC_MIN = r"(\*|[0-5]?[0-9]|\*/[0-5]?[0-9])"
_HOUR = r"(\*|[01]?[0-9]|2[0-3]|\*/([01]?[0-9]|2[0-3]))"
SCHEDULE = re.compile(rf"^{_SEC_MIN} {_SEC_MIN} {_HOUR}$")
_ALPHABET = string.ascii_letters + string.digits


def new_transaction_id() -> str:
    """OME's 16-character transaction id (random: chosen by the actor, handed to the decision)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def file_app_missing(vhost: str, app: str) -> NotFound:
    """What every record call answers when the app has no file publisher."""
    return NotFound(f"Could not find application: [{vhost}/{app}]")


def parse_start_record(body: Any, vhost: str, app: str, transaction_id: str,
                       existing_ids: Collection[str]) -> RecordSpec:
    obj = _dict(body)
    task_id = _str(obj.get("id"))
    stream = _dict(obj.get("stream"))
    stream_name = _str(stream.get("name"))
    missing = missing_parameters(("id", task_id), ("stream.name", stream_name))
    if missing is not None:
        raise missing
    assert task_id and stream_name
    raw_interval = obj.get("interval")
    interval = raw_interval if storable_int(raw_interval) else 0  # (2**64 ms: never split, as 0 says)
    schedule = _str(obj.get("schedule")) or ""
    if schedule and interval > 0:
        raise Invalid("[Interval] and [Schedule] cannot be used at the same time")
    if schedule and SCHEDULE.match(schedule) is None:
        raise Invalid("Invalid [schedule] parameter")
    if task_id in existing_ids:
        raise Conflict("Duplicate ID already exists")
    variant_names, track_ids = track_selection(stream)
    return RecordSpec(
        vhost=vhost,
        app=app,
        id=task_id,
        transaction_id=transaction_id,
        stream_name=stream_name,
        variant_names=variant_names,
        track_ids=track_ids,
        file_path=_str(obj.get("filePath")) or "",
        info_path=_str(obj.get("infoPath")) or "",
        interval=max(0, interval),
        schedule=schedule,
        segmentation_rule="continuity" if obj.get("segmentationRule") == "continuity" else "discontinuity",
        metadata=_str(obj.get("metadata")) or "",
    )


def parse_stop_record(body: Any, existing_ids: Collection[str]) -> str:
    task_id = _str(_dict(body).get("id"))
    if not task_id:
        raise Invalid("There is no required parameter [ id]")
    if task_id not in existing_ids:
        raise NotFound(f"There is no record information related to the ID [{task_id}]")
    return task_id
