"""Where paths given through the API may make Kiln write (records, HLS dumps).

OME writes wherever a ``:startRecord`` ``filePath``/``infoPath`` or a ``:startHlsDump``
``outputPath``/``infoFile`` points, ``../`` included. Kiln confines them to roots: the ones listed in
``Managers/API/WritableRoots/Root`` or, when none is, the data dir, ``/tmp`` (where OME's own API
examples put dumps, ``/tmp/d1/``, and its DVR keeps segments, ``/tmp/ll_hls_dvr``) and every
``FILE/RootPath`` the Server.xml's applications name (the operator chose those). A path is checked
as the file system will see it: macros stand for one plain name, ``..`` and symlinks are resolved.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MACRO = re.compile(r"\$\{([A-Za-z]*)[^}]*\}")
OME_SAMPLE_ROOTS = ("/tmp",)


def _real(path: str | Path, names: Mapping[str, str] | None = None) -> str:
    """The path with its macros expanded as far as known (``Stream``, ``VirtualHost``, ``Application``:
    a stream may be named ``../x``), the rest standing for one plain name, then resolved."""
    def value(m: re.Match[str]) -> str:
        macro = m.group(1)
        key = "Stream" if "Stream" in macro else macro  # OME matches any macro containing "Stream"
        return (names or {}).get(key) or "m"
    return os.path.realpath(_MACRO.sub(value, str(path)))


@dataclass(frozen=True)
class WriteRoots:
    roots: tuple[str, ...]
    data_dir: str

    @classmethod
    def build(cls, configured: Iterable[str], data_dir: Path, app_roots: Iterable[str],
              resolve: Callable[[str], Path]) -> WriteRoots:
        chosen = [str(resolve(r)) for r in configured]
        if not chosen:
            chosen = [str(data_dir), *OME_SAMPLE_ROOTS, *(str(resolve(r)) for r in app_roots)]
        return cls(tuple(sorted({_real(r) for r in chosen})), str(data_dir))

    def allows(self, path: str | Path, names: Mapping[str, str] | None = None) -> bool:
        real = _real(path, names)
        return any(real == root or real.startswith(root.rstrip("/") + "/") for root in self.roots)

    def record_path(self, root_path: str, template: str) -> str:
        """Where a record template lands, as the recorder places it (media/publish/record/paths.py)."""
        if root_path:
            return str(Path(root_path) / template.lstrip("/"))
        return template if os.path.isabs(template) else str(Path(self.data_dir) / "records" / template)


def config_file_roots(vhosts: list[dict[str, Any]]) -> list[str]:
    """Every ``Publishers/FILE/RootPath``, ``Providers/Schedule/ScheduleFilesDir`` and
    ``Providers/Multiplex/MuxFilesDir`` of the Server.xml's applications (scheduled and multiplex channels'
    ``.sch`` and ``.mux`` files are written there)."""
    found = []
    for vhost in vhosts:
        apps = (vhost.get("applications") or {}).get("application") or []
        for app in apps if isinstance(apps, list) else [apps]:
            root = ((app.get("publishers") or {}).get("file") or {}).get("rootPath")
            if isinstance(root, str) and root.strip():
                found.append(root.strip())
            for provider, key in (("schedule", "scheduleFilesDir"), ("multiplex", "muxFilesDir")):
                section = (app.get("providers") or {}).get(provider)
                files = section.get(key) if isinstance(section, dict) else None
                if isinstance(files, str) and files.strip():
                    found.append(files.strip())
    return found
