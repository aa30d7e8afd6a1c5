"""CrossDomains handling shared by the API and the LL-HLS and Thumbnail publishers (rest-spec §1.4).

It is configuration (Server.xml CrossDomains, an app's publisher CrossDomains), so HTTP and media both
read it from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CorsPolicy:
    urls: tuple[str, ...] = ()
    custom_headers: dict[str, str] = field(default_factory=dict)
    allow_methods: str = "OPTIONS, HEAD, GET, POST, PUT, PATCH, DELETE"

    def _allowed_origin(self, origin: str | None) -> str | None:
        if "*" in self.urls:
            return "*"
        if self.urls == ("null",):
            return "null"
        if origin is None:
            return None
        for url in self.urls:
            if url == "null":
                continue
            pattern = re.escape(url).replace(r"\*", ".*")
            if "://" not in url:
                pattern = r"(https?://)?" + pattern
            if re.fullmatch(pattern, origin):
                return origin
        return None

    def headers(self, origin: str | None, request_headers: str | None) -> dict[str, str]:
        """Response headers for a request with this Origin (the methods header always comes first)."""
        out = {"Access-Control-Allow-Methods": self.allow_methods}
        if not self.urls:
            return out
        allowed = self._allowed_origin(origin)
        if allowed is None:
            return {}
        out["Access-Control-Allow-Origin"] = allowed
        out["Access-Control-Allow-Credentials"] = "true"
        if request_headers:
            out["Access-Control-Allow-Headers"] = request_headers
        out.update(self.custom_headers)
        return out
