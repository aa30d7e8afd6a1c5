"""OME's SRT ``streamid`` grammar (media-spec §1.2), resolved to vhost/app/stream.

The order follows OME's resolver:
1. An empty streamid is looked up by the listener's local port in ``StreamMap``; no entry, no stream.
2. ``#!::k=v,…`` (Haivision access-control syntax): the first ``u=`` value is the stream path. Other
   keys, ``r=`` (resource) and ``m=`` (mode) included, are ignored, because OME ignores them. Without
   ``u=`` OME would use the text after ``#!::`` as the path; ``#!::r=app/stream,m=publish`` therefore
   never names a stream in OME, and Kiln says so (``r=`` is not read) rather than failing obscurely.
3. The value is percent-decoded (``%XX`` only; ``+`` stays ``+`` and a stray ``%`` stays, as in OME).
4. ``{vhost-or-domain}/{app}/{stream}[/{playlist}][?query]``: exactly 3 or 4 path components.
   OME prefixes ``srt://`` and parses a URL, so ``{host}:{port}`` is read too (``SrtTarget.port``).
5. Deprecated: the full URL ``srt://host[:port]/app/stream[/playlist][?query]``.

One deliberate difference: OME counts components over the whole text, query included, so a ``/``
inside a decoded query changes the count; Kiln counts the path only. Empty components are refused
(OME would fail later, looking up an empty app or stream name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

ACCESS_CONTROL_PREFIX = "#!::"
USER_KEY = "u="
DEPRECATED_PREFIX = "srt://"
_KEY_VALUE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*=")
_AUTHORITY = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^:@\[\]]+))(?::(?P<port>[0-9]{1,5}))?")


class StreamIdError(ValueError):
    """A streamid that names no stream, with the reason."""


@dataclass(frozen=True)
class SrtTarget:
    host: str  # a vhost name or a domain matched against vhost Host/Names
    app: str
    stream: str
    playlist: str | None
    query: str  # without the leading "?"; "" when absent
    port: int | None = None  # when the host part says host:port

    @property
    def url(self) -> str:
        """OME's internal URL for this target (``srt://host[:port]/app/stream[/playlist][?query]``)."""
        authority = self.host if self.port is None else f"{self.host}:{self.port}"
        path = f"/{self.app}/{self.stream}" + (f"/{self.playlist}" if self.playlist else "")
        return f"srt://{authority}{path}" + (f"?{self.query}" if self.query else "")


def resolve_streamid(streamid: str, *, local_port: int, stream_map: Mapping[int, str]) -> SrtTarget:
    """Resolve a caller's streamid, or an empty one through ``stream_map`` (local port -> path)."""
    if streamid == "":
        path = stream_map.get(local_port)
        if not path:
            raise StreamIdError(f"empty streamid and no StreamMap entry for port {local_port}")
        return _parse_path(path)
    value = streamid
    if value.startswith(ACCESS_CONTROL_PREFIX):
        value = _user_name(streamid)
    if value == "":
        raise StreamIdError("empty streamid")
    try:
        decoded = unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise StreamIdError("streamid is not valid UTF-8 once percent-decoded") from None
    return _parse_path(decoded)


def _user_name(streamid: str) -> str:
    body = streamid[len(ACCESS_CONTROL_PREFIX):]
    for item in body.split(","):
        if item.startswith(USER_KEY):
            value = item[len(USER_KEY):]
            if value == "":
                raise StreamIdError("empty u= value in the streamid")
            return value
    first = body.split(",", 1)[0]
    if _KEY_VALUE.match(first):
        raise StreamIdError(
            "access-control streamid has no u= key; Kiln, like OME, takes the stream path from "
            "u={vhost}/{app}/{stream} and does not read r=")
    return body


def _parse_path(path: str) -> SrtTarget:
    deprecated = path.startswith(DEPRECATED_PREFIX)
    base, _, query = path.partition("?")
    components = base[len(DEPRECATED_PREFIX):].split("/") if deprecated else base.split("/")
    if len(components) not in (3, 4):
        form = "srt://{host}[:{port}]/{app}/{stream}[/{playlist}]" if deprecated else \
            "{vhost}/{app}/{stream}[/{playlist}]"
        raise StreamIdError(f"streamid must be {form}, got {len(components)} components: {path!r}")
    if any(c == "" for c in components):
        raise StreamIdError(f"empty component in the streamid {path!r}")
    host, port = _authority(components[0], path)
    return SrtTarget(host=host, app=components[1], stream=components[2],
                     playlist=components[3] if len(components) == 4 else None, query=query, port=port)


def _authority(text: str, path: str) -> tuple[str, int | None]:
    """``host``, ``host:port`` or ``[v6]:port``, read as OME's URL parser does (case kept)."""
    match = _AUTHORITY.fullmatch(text)
    if match is None:
        raise StreamIdError(f"bad host {text!r} in the streamid {path!r}")
    host = match.group("v6") or match.group("name")
    port = int(match.group("port")) if match.group("port") else None
    if port is not None and not 0 < port <= 65535:
        raise StreamIdError(f"port out of range in the streamid {path!r}")
    return host, port
