"""An app's ScheduleFilesDir and MediaRootDir: the ``.sch`` files OME keeps its channels in.

The journal decides which channels exist; the files are written (a fresh temporary name renamed over the
target, ``kiln/regular_files.py``) and deleted as OME writes and deletes them, so a tool that reads the
directory sees OME's files. Relative paths are under the configuration file's directory, as in OME.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kiln.actors.file_watch import ChannelFileKind
from kiln.config.write_roots import WriteRoots
from kiln.domain import schedule as ds
from kiln.domain.errors import Failed, Invalid
from kiln.events.schedules import Schedule
from kiln.regular_files import read_regular, write_replacing

log = logging.getLogger(__name__)

SCHEDULE_FILES: ChannelFileKind[Schedule] = ChannelFileKind("schedule", ds.FILE_EXTENSION, ds.schedule_from_xml,
                                                            lambda schedule: schedule.name)


def _section(config: dict[str, Any]) -> dict[str, Any]:
    providers = config.get("providers")
    found = providers.get("schedule") if isinstance(providers, dict) else None
    return found if isinstance(found, dict) else {}


class ChannelFiles:
    def __init__(self, where: str, app_config: dict[str, Any], config_dir: Path | None,
                 roots: WriteRoots | None = None) -> None:
        self.where = where
        self.config_dir = config_dir
        self.roots = roots
        section = _section(app_config)
        self._media_root = str(section.get("mediaRootDir") or "")
        self._files_dir = str(section.get("scheduleFilesDir") or "")

    def _resolve(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() or self.config_dir is None else self.config_dir / path

    def media_root(self) -> Path:
        return self._resolve(self._media_root)

    def files_dir(self) -> Path:
        return self._resolve(self._files_dir)

    def path(self, name: str) -> Path:
        return self.files_dir() / f"{name}.{ds.FILE_EXTENSION}"

    def source_url(self, name: str) -> str:
        return f"file://{self.path(name)}"

    def _confined(self, path: Path) -> None:
        """An app made through the API may name any ScheduleFilesDir: its files are written and deleted only
        inside the writable roots (Managers/API/WritableRoots), as record and dump paths are."""
        if self.roots is not None and not self.roots.allows(path):
            raise Invalid(f"scheduleFilesDir is outside the writable roots (Managers/API/WritableRoots): "
                          f"[{path.parent}]")

    def write(self, schedule: Schedule) -> None:
        """OME's 500 when the file cannot be written (the command then journals nothing); 400 outside the roots."""
        path = self.path(schedule.name)
        self._confined(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_replacing(path, ds.schedule_to_xml(schedule))
        except OSError as exc:
            log.warning("schedule file not written where=%s path=%s error=%s", self.where, path, exc)
            raise Failed(f"Could not save the schedule file {path}") from exc

    def remove(self, name: str) -> None:
        path = self.path(name)
        self._confined(path)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("schedule file not deleted where=%s path=%s error=%s", self.where, path, exc)
            raise Failed(f"Could not delete the schedule file {path}") from exc

    def restore(self, schedule: Schedule) -> None:
        """At start the file says what the journal says: written again when it went missing, or when it differs
        (a PATCH whose new file was written but whose event was lost to a kill -9 answered no one)."""
        try:
            same = read_regular(self.path(schedule.name)) == ds.schedule_to_xml(schedule)
        except OSError:
            same = False
        if not same:
            try:
                self.write(schedule)
            except Failed:
                pass  # logged; the channel plays from the journal either way
            except Invalid as exc:
                log.warning("schedule file not written where=%s error=%s", self.where, exc.text)

    def found(self, known: set[str]) -> list[Schedule]:
        """The ``{name}.sch`` files no journaled channel names, read as OME reads them; a bad one is logged."""
        root = self.files_dir()
        try:
            paths = sorted(p for p in root.iterdir() if p.suffix == f".{ds.FILE_EXTENSION}" and p.stem not in known)
        except FileNotFoundError:
            log.info("schedule files dir absent where=%s dir=%s (made with the first channel)", self.where, root)
            return []
        except OSError as exc:
            log.warning("schedule files not listed where=%s dir=%s error=%s", self.where, root, exc)
            return []
        out = []
        for path in paths:
            try:
                out.append(ds.schedule_from_xml(read_regular(path), path.stem))
            except OSError as exc:
                log.warning("schedule file unreadable where=%s path=%s error=%s", self.where, path, exc)
            except ds.ScheduleError as exc:
                log.warning("schedule file refused where=%s path=%s error=%s", self.where, path, exc.text)
        return out
