"""Which publisher a file name on the LL-HLS port belongs to, and why it is not served there (media-spec §2.2).

OME shares one HTTP port among publishers that each claim file names: LL-HLS claims its playlists and
``*_llhls.m4s``; HLS v3 claims ``ts:*.m3u8``, ``*.m3u8?format=ts``, ``*_hls.m3u8`` and its ``.ts``
segments; the Thumbnail publisher ``thumb.jpg|png|webp`` (on its own port in Kiln). Classifying first
lets a request for another publisher, or for no publisher at all, get a 404 that says so instead of
LL-HLS's ``401 session is required`` (issue 20 item 7).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from kiln.media.publish.thumbnail.server import FILES as THUMBNAIL_FILES
from kiln.media.publish.thumbnail.server import thumbnail_config

_TRACK = r"(video|audio|subtitle)_[A-Za-z0-9]+_llhls"
LLHLS_FILES = (
    re.compile(r"^[A-Za-z0-9_\-.]+\.m3u8$"),   # master playlists (<FileName>.m3u8) and chunklists
    re.compile(rf"^init_\d+_{_TRACK}\.m4s$"),
    re.compile(rf"^seg_\d+_\d+_{_TRACK}\.(m4s|vtt)$"),
    re.compile(rf"^part_\d+_\d+_\d+_{_TRACK}\.m4s$"),
)


class Claim(Enum):
    LLHLS = "llhls"
    HLS_V3 = "hls"
    THUMBNAIL = "thumbnail"
    NONE = "none"


def claim_of(file_name: str, query: Mapping[str, list[str]]) -> Claim:
    """The publisher whose file-name pattern ``file_name`` (with its query) matches."""
    if file_name in THUMBNAIL_FILES:
        return Claim.THUMBNAIL
    ts_query = any(v.lower() == "ts" for v in query.get("format", []))
    if (file_name.startswith("ts:") or file_name.endswith(("_hls.m3u8", ".ts"))
            or (file_name.endswith(".m3u8") and ts_query)):
        return Claim.HLS_V3
    if any(p.match(file_name) for p in LLHLS_FILES):
        return Claim.LLHLS
    return Claim.NONE


def not_here_reason(claim: Claim, file_name: str, app: str, stream: str, vhost: str | None,
                    app_config: dict[str, Any] | None, thumbnail_port: int | None) -> str:
    """The body of the 404 for a file the LL-HLS port does not serve: what it is and where to get it instead."""
    label = f"[{vhost}/{app}]" if vhost is not None else f"[{app}]"
    if claim is Claim.THUMBNAIL:
        if thumbnail_port is None:
            where = "thumbnails are not served: Server.xml binds no Thumbnail port (Bind/Publishers/Thumbnail/Port)"
        elif thumbnail_port == 0:
            where = "thumbnails are served on the Thumbnail port, not on the LL-HLS port"
        else:
            where = f"thumbnails are served on port {thumbnail_port}, not on the LL-HLS port"
        if app_config is not None and thumbnail_config(app_config) is None:
            where += f"; the Thumbnail publisher is not enabled for this application {label}"
        return where
    play = f"play LL-HLS instead: /{app}/{stream}/llhls.m3u8"
    if claim is Claim.HLS_V3:
        publishers = app_config.get("publishers") if app_config is not None else None
        if isinstance(publishers, dict) and isinstance(publishers.get("hls"), dict):
            return f"HLS v3 (ts:) is not implemented by Kiln; {play}"
        return f"HLS v3 (ts:) is not enabled for this application {label}; {play}"
    return (f"{file_name!r} is not an LL-HLS file: this port serves <playlist>.m3u8, chunklist_*_llhls.m3u8 and "
            "init_/seg_/part_*_llhls.m4s")
