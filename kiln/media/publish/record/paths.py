"""Recording path templates and OME's macros (rest-spec §10.4).

``${Stream}`` is matched by substring like OME does, so ``${SourceStream}`` also becomes the
output stream name. Times are local time; ``${EndTime:…}`` is the epoch until a file has ended.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

_MACRO = re.compile(r"\$\{([^}:]*)(?::([^}]*))?\}")

DEFAULT_FILE = "${TransactionId}_${VirtualHost}_${Application}_${Stream}_${StartTime:YYYYMMDDhhmmss}_" \
               "${EndTime:YYYYMMDDhhmmss}.ts"
DEFAULT_INFO = "${TransactionId}_${VirtualHost}_${Application}_${Stream}.xml"


@dataclass(frozen=True)
class MacroValues:
    transaction_id: str
    id: str
    vhost: str
    app: str
    stream: str
    sequence: int
    start_time: float
    end_time: float = 0.0


def _format_time(ts: float, fmt: str) -> str:
    lt = time.localtime(ts)  # local time, as OME; not datetime (freezegun's ignores the zone)
    out = fmt or "YYYYMMDDhhmmss"
    for token, value in (("YYYY", f"{lt.tm_year:04d}"), ("MM", f"{lt.tm_mon:02d}"), ("DD", f"{lt.tm_mday:02d}"),
                         ("hh", f"{lt.tm_hour:02d}"), ("mm", f"{lt.tm_min:02d}"), ("ss", f"{lt.tm_sec:02d}")):
        out = out.replace(token, value)
    return out


def expand(template: str, v: MacroValues) -> str:
    def repl(m: re.Match[str]) -> str:
        name, arg = m.group(1), m.group(2) or ""
        if name == "TransactionId":
            return v.transaction_id
        if name == "Id":
            return v.id
        if name == "VirtualHost":
            return v.vhost
        if name == "Application":
            return v.app
        if name == "Sequence":
            return str(v.sequence)
        if name == "StartTime":
            return _format_time(v.start_time, arg)
        if name == "EndTime":
            return _format_time(v.end_time, arg)
        if "Stream" in name:
            return v.stream
        return m.group(0)
    return _MACRO.sub(repl, template)


def real_path(root: str, expanded: str, data_dir: Path) -> Path:
    """Where the file goes: ``rootPath`` + template (OME joins with '/'); with no rootPath, a relative
    template is placed under Kiln's data dir (OME would put it under '/')."""
    if root:
        return Path(root) / expanded.lstrip("/")
    path = Path(expanded)
    return path if path.is_absolute() else data_dir / "records" / path


def container_for(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return {".mp4": "mp4", ".ts": "mpegts", ".webm": "webm"}.get(suffix, "mpegts")
