"""Per-client limits of Kiln's HTTP listeners (``Managers/API/Limits``, Kiln's own element): the values
and their defaults. kiln/http/connection_limits.py enforces them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConnectionLimits:
    max_per_client: int = 0  # 0: no limit (players behind one NAT address share it)
    request_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 1 << 20

    @classmethod
    def parse(cls, section: Mapping[str, str], defaults: ConnectionLimits) -> tuple[ConnectionLimits, list[str]]:
        """``Managers/API/Limits`` as written; a value that is not a positive number keeps its default
        and is reported."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for tag, name, kind in (("MaxConnectionsPerClient", "max_per_client", int),
                                ("RequestTimeout", "request_timeout", float),
                                ("MaxHeaderBytes", "max_header_bytes", int),
                                ("MaxBodyBytes", "max_body_bytes", int)):
            key = tag[:1].lower() + tag[1:]
            raw = section.get(key)
            if raw is None:
                continue
            try:
                value = kind(str(raw).strip())
                if value <= 0:
                    raise ValueError("not positive")
            except ValueError:
                problems.append(f"Managers.API.Limits.{tag}={raw!r} is not a positive number; "
                                f"using {getattr(defaults, name)}")
                continue
            values[name] = value
        return ConnectionLimits(**{**defaults.__dict__, **values}), problems


API_DEFAULTS = ConnectionLimits(max_per_client=64)
MEDIA_DEFAULTS = ConnectionLimits()
