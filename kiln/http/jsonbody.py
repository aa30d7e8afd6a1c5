"""Request-body JSON parsing as lenient as OME's jsoncpp reader (rest-spec §1.5).

jsoncpp accepts ``//`` and ``/* */`` comments, trailing commas, a BOM and trailing garbage after
the first value, and lets a later duplicate key win. An empty body is ``null``. Errors are
reported in jsoncpp's "* Line L, Column C" style.

Nesting is capped at ``MAX_DEPTH`` levels with jsoncpp's own stack-limit message: Python's parser
goes deeper than the code behind it (copies, msgpack journaling) can, and a body nested 500 deep
turned into a 500; no OME body needs more than a dozen levels.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kiln.errors import ApiError

MAX_DEPTH = 128
STACK_LIMIT = "[JSON] * Line 1, Column 1\n  Exceeded stackLimit in readValue().\n"
_TRAILING_COMMA = re.compile(r",[ \t\r\n]*[\]}]")
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1  # jsoncpp's LargestInt .. LargestUInt
_INF = float("inf")
# a \u escape of a surrogate: a high one followed by a low one is a pair (one character), any other is alone
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
                               r"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class BodyError(ApiError):
    pass


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests containers more than MAX_DEPTH levels (iterative: no recursion limit)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def _strip_comments_and_trailing_commas(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
            continue
        if c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in "]}":
            j = len(out) - 1
            while j >= 0 and out[j] in " \t\r\n":
                j -= 1
            if j >= 0 and out[j] == ",":
                del out[j]
            out.append(c)
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _where(text: str, at: int) -> str:
    """jsoncpp's place of an error: ``* Line L, Column C`` (both from 1)."""
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    return f"* Line {line}, Column {column}"


def _message(text: str, exc: json.JSONDecodeError) -> str:
    if exc.msg.startswith("Expecting value"):
        what = "Syntax error: value, object or array expected."
    elif "delimiter" in exc.msg or "Expecting" in exc.msg:
        what = f"Missing ',' or closing bracket ({exc.msg})"
    else:
        what = exc.msg
    return f"{_where(text, exc.pos)}\n  {what}\n"


class _Refused(ValueError):
    """A literal jsoncpp does not take: a number no double holds, or ``NaN``/``Infinity`` (``constant``)."""

    def __init__(self, token: str, constant: bool = False) -> None:
        super().__init__(token)
        self.token, self.constant = token, constant


def _integer(token: str) -> int | float:
    """An integer literal as jsoncpp reads it: an Int64/UInt64 when it fits, else a double, and one no double holds
    is not a number. Python's own reading kept any size: the journal (msgpack, 64 bits) then refused the command's
    events after the actor had applied them (a 500, the name taken), and past 4,300 digits int() raised."""
    if len(token) < 19:  # the common case: fits whatever its sign
        return int(token)
    if len(token) <= 20:
        value = int(token)
        if _INT_MIN <= value <= _INT_MAX:
            return value
    found = float(token)
    if found in (_INF, -_INF):
        raise _Refused(token)
    return found


def _real(token: str) -> float:
    """A number with a fraction or exponent; one no double holds ('1e400', inf to Python) is not a number."""
    found = float(token)
    if found in (_INF, -_INF):
        raise _Refused(token)
    return found


def _constant(token: str) -> float:
    """``NaN``, ``Infinity``, ``-Infinity``: Python's json takes them, jsoncpp does not (a syntax error). Taken, they
    went into an app's or profile's JSON, which no answer could then render ('Out of range float values are not
    JSON compliant'): every later GET of the app was a 500, after restarts too (the journal kept them)."""
    raise _Refused(token, constant=True)


_DECODER = json.JSONDecoder(parse_int=_integer, parse_float=_real, parse_constant=_constant)


def _refused(text: str, exc: _Refused) -> str:
    """jsoncpp's error for a refused literal, at the first place it appears."""
    where = _where(text, max(text.find(exc.token), 0))
    if exc.constant:
        return f"{where}\n  Syntax error: value, object or array expected.\n"
    token = exc.token
    shown = f"'{token[:20]}...' ({len(token.lstrip('-'))} digits)" if len(token) > 24 else f"'{token}'"
    return f"{where}\n  {shown} is not a number.\n"


def _decode(text: str) -> Any:
    """The first JSON value of ``text``, read as jsoncpp would. A body that parses as it is needs no stripping:
    a comment or a trailing comma inside its value would have failed the parse, and what follows the value is
    ignored either way (the character loop cost more than the rest of parsing a push's body, whose URL has a
    '/'). Otherwise, nothing to strip without a '/' or a comma before a closing bracket; where one is found,
    even inside a string, the loop decides (and the error is about the text it left)."""
    try:
        return _DECODER.raw_decode(text.lstrip())[0]
    except json.JSONDecodeError as exc:
        if "/" not in text and _TRAILING_COMMA.search(text) is None:
            raise BodyError(400, "[JSON] " + _message(text.lstrip(), exc)) from exc
    cleaned = _strip_comments_and_trailing_commas(text).lstrip()
    try:
        return _DECODER.raw_decode(cleaned)[0]
    except json.JSONDecodeError as exc:
        raise BodyError(400, "[JSON] " + _message(cleaned, exc)) from exc


def parse_body(raw: bytes) -> Any:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"[JSON] * Line 1, Column {exc.start + 1}\n  Invalid UTF-8 in request body\n") from exc
    if not text.strip():
        return None
    try:
        value = _decode(text)
    except RecursionError as exc:
        raise BodyError(400, STACK_LIMIT) from exc
    except _Refused as exc:
        raise BodyError(400, "[JSON] " + _refused(text, exc)) from exc
    if _too_deep(value):
        raise BodyError(400, STACK_LIMIT)
    if "\\u" in text and _lone_surrogate(value):
        raise BodyError(400, "[JSON] " + _surrogate_error(text))
    return value


def _lone_surrogate(value: Any) -> bool:
    """A string (or key) holding a surrogate that is not half of a pair (``"\\ud800"``): no UTF-8 encodes it, so
    no answer can show it and the journal cannot store it. jsoncpp refuses a lone high one; Kiln refuses both, as it
    refuses a body that is not UTF-8. Taken, they reached the commands' events: a 500 for the command (before
    5049568: after its actor had applied it)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _surrogate_error(text: str) -> str:
    """jsoncpp's words for a lone high surrogate, at the first lone one in ``text``."""
    for found in _SURROGATE_ESCAPE.finditer(text):
        if len(found.group()) == 6:
            return (f"{_where(text, found.start())}\n  expecting another \\u token to begin the second half of a "
                    f"unicode surrogate pair\n")
    return "* Line 1, Column 1\n  expecting another \\u token to begin the second half of a unicode surrogate pair\n"
