"""An app's ScheduleFilesDir and MediaRootDir: the ``.sch`` files OME keeps its scheduled channels in
(``kiln/actors/channel_files.py``), and where their ``file://`` items are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiln.actors.channel_files import ChannelDir, ChannelFileKind
from kiln.config.write_roots import WriteRoots
from kiln.domain import schedule as ds
from kiln.events.schedules import Schedule

SCHEDULE_FILES: ChannelFileKind[Schedule] = ChannelFileKind(
    "schedule", "scheduleFilesDir", ds.FILE_EXTENSION, ds.schedule_from_xml, ds.schedule_to_xml,
    lambda schedule: schedule.name)  # OME names the channel after the file: the reader does


def _section(config: dict[str, Any]) -> dict[str, Any]:
    providers = config.get("providers")
    found = providers.get("schedule") if isinstance(providers, dict) else None
    return found if isinstance(found, dict) else {}


class ChannelFiles(ChannelDir[Schedule]):
    def __init__(self, where: str, app_config: dict[str, Any], config_dir: Path | None,
                 roots: WriteRoots | None = None) -> None:
        section = _section(app_config)
        super().__init__(where, SCHEDULE_FILES, str(section.get("scheduleFilesDir") or ""), config_dir, roots)
        self._media_root = str(section.get("mediaRootDir") or "")

    def media_root(self) -> Path:
        return self.resolve(self._media_root)

    def source_url(self, name: str) -> str:
        return f"file://{self.path(name)}"
