"""An app's MuxFilesDir: the ``.mux`` files OME keeps its multiplex channels in (``kiln/actors/channel_files.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiln.actors.channel_files import ChannelDir, ChannelFileKind
from kiln.config.write_roots import WriteRoots
from kiln.domain import multiplex as dm
from kiln.events.multiplex import Multiplex

# OME names a multiplex channel after the file's OutputStream, not after the file
MUX_FILES: ChannelFileKind[Multiplex] = ChannelFileKind(
    "multiplex", "muxFilesDir", dm.FILE_EXTENSION, lambda data, _stem: dm.multiplex_from_xml(data),
    dm.multiplex_to_xml, lambda mux: mux.name)


def _files_dir(config: dict[str, Any]) -> str:
    providers = config.get("providers")
    found = providers.get("multiplex") if isinstance(providers, dict) else None
    return str(found.get("muxFilesDir") or "") if isinstance(found, dict) else ""


class MuxFiles(ChannelDir[Multiplex]):
    def __init__(self, where: str, app_config: dict[str, Any], config_dir: Path | None,
                 roots: WriteRoots | None = None) -> None:
        super().__init__(where, MUX_FILES, _files_dir(app_config), config_dir, roots)
