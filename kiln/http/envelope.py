"""OME's response envelope: compact JSON, sorted keys, ASCII escapes, status echoed in the body."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from kiln.domain.batch import ItemResult
from kiln.errors import REASONS, ApiError
from kiln.http.errors import item_text, status_of

JSON_TYPE = "application/json;charset=UTF-8"
BASE_HEADERS = {"Server": "OvenMediaEngine"}


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")  # JSONEncoder.default's


# ``json.dumps`` with these options builds a JSONEncoder and its C encoder on every call, a third of the cost
# of encoding a push task's answer: one C encoder, made once, gives the same bytes (no circular-reference
# check: the answers are trees Kiln builds; a cycle would be a RecursionError instead of a ValueError)
_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_encode: Any = _C_ENCODER(None, _not_serializable, json.encoder.encode_basestring_ascii, None, ":", ",", True,
                          False, False) if _C_ENCODER is not None else None


def dumps(value: Any) -> bytes:
    """Compact JSON, sorted keys, ASCII escapes, no NaN: ``json.dumps(value, sort_keys=True, separators=(",", ":"),
    ensure_ascii=True, allow_nan=False)``, byte for byte."""
    if _encode is None:  # a Python without the _json accelerator
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False).encode("ascii")
    return "".join(_encode(value, 0)).encode("ascii")


_BASE_RAW = [(b"server", BASE_HEADERS["Server"].encode("latin-1")), (b"content-type", JSON_TYPE.encode("latin-1"))]


def json_answer(encoded: bytes, status: int, headers: dict[str, str] | None = None) -> Response:
    """``Response(encoded, status, headers={**BASE_HEADERS, "Content-Type": JSON_TYPE, **headers})``: without extra
    headers its header list (the same pairs in the same order: server, content-type, content-length) is made
    here, a tenth of what Starlette's header handling costs, for the answers every command gets."""
    if headers or status < 200 or status in (204, 304) or not encoded:
        return Response(encoded, status_code=status, media_type=None,
                        headers={**BASE_HEADERS, "Content-Type": JSON_TYPE, **(headers or {})})
    response = Response.__new__(Response)
    response.body = encoded
    response.status_code = status
    response.background = None
    response.raw_headers = [*_BASE_RAW, (b"content-length", str(len(encoded)).encode("latin-1"))]
    return response


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return json_answer(dumps(body), status, headers)


OK_EMPTY = b'{"message":"OK","statusCode":200}'  # ``ok()``: every stop, delete and PATCH answers it


def ok(response: Any = None, status: int = 200) -> Response:
    if response is None and status == 200:
        return json_answer(OK_EMPTY, 200)
    body: dict[str, Any] = {"message": REASONS.get(status, "OK"), "statusCode": status}
    if response is not None:
        body["response"] = response
    return json_response(status, body)


def ok_encoded(response: bytes) -> Response:
    """``ok(value)`` for a value already encoded by ``dumps``: the envelope's keys sort as message, response,
    statusCode, so its bytes are the same."""
    return json_answer(b'{"message":"OK","response":' + response + b',"statusCode":200}', 200)


def error(exc: ApiError, headers: dict[str, str] | None = None) -> Response:
    return json_response(exc.status, {"message": exc.message, "statusCode": exc.status}, headers)


def multi_status(results: list[ItemResult], render: Any = None) -> Response:
    """A bare array, one entry per request element; 207 unless every element shares one code."""
    items = []
    codes = set()
    for r in results:
        if r.error is not None:
            status = status_of(r.error)
            entry: dict[str, Any] = {"message": item_text(r.error), "statusCode": status}
        else:
            status = 200
            entry = {"message": "OK", "statusCode": status}
            if r.response is not None:
                entry["response"] = render(r.response) if render else r.response
        codes.add(status)
        items.append(entry)
    status = codes.pop() if len(codes) == 1 else (200 if not codes else 207)
    return json_response(status, items)
