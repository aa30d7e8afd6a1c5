"""OME-style routing: anchored regexes on the raw (undecoded) path, tried in registration order.

A route matches when its regex matches and it allows the method; GET routes also answer HEAD.
Nothing matched (unknown path or known path with another method) is OME's 404
"Controller not found" — never a 405.

Matching stays on the raw path, so an encoded ``%2F`` or ``%3A`` never splits a segment or starts
an action; each captured name is then percent-decoded once (UTF-8, ``+`` stays ``+``), so
``streams/cam%C3%A9ra`` names the stream ``caméra`` that RTMP and SRT ingest created (issue 20).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

# OME's segment patterns (rest-spec §1.2)
VHOST = r"(?P<vhost>[^/]*)"
APP = r"(?P<app>[^/:]*)"
STREAM = r"(?P<stream>[^/]*)"
PROFILE = r"(?P<profile>[^/]*)"

Handler = Callable[["Call"], Awaitable[Response]]


@dataclass
class Call:
    """One routed request: the Starlette request, the path groups and the parsed body."""

    request: Request
    params: dict[str, str]
    body: Any = None


@dataclass(frozen=True)
class Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    takes_body: bool


CACHED_PATHS = 1024


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        # (method, path) -> what match found: a dashboard polls the same few paths, and trying ~100 regexes
        # in order cost more than the read itself; bounded (emptied when full), since paths come from clients
        self._found: dict[tuple[str, str], tuple[Route, dict[str, str]] | None] = {}

    def add(self, methods: str, path: str, handler: Handler) -> None:
        names = frozenset(m.strip().upper() for m in methods.split(","))
        if "GET" in names:
            names |= {"HEAD"}
        takes_body = bool(names & {"POST", "PATCH"})
        self.routes.append(Route(names, re.compile("^" + path + "$"), handler, takes_body))
        self._found.clear()

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        key = (method, path)
        try:
            found = self._found[key]
        except KeyError:
            if len(self._found) >= CACHED_PATHS:
                self._found.clear()
            found = self._found[key] = self._match(method, path)
        return (found[0], dict(found[1])) if found is not None else None  # a handler may keep its own params

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if method not in route.methods:
                continue
            m = route.pattern.match(path)
            if m is not None:
                return route, decode_params(m.groupdict())
        return None


def decode_params(raw: dict[str, str]) -> dict[str, str]:
    """Each captured path parameter percent-decoded exactly once; bytes that are not UTF-8 become U+FFFD,
    a character no name made through the API or ingest is expected to carry."""
    return {name: unquote(value, encoding="utf-8", errors="replace") for name, value in raw.items()}
