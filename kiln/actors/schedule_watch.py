"""Following an app's ScheduleFilesDir while Kiln runs, as OME does: a ``.sch`` file written there adds or
updates its channel, a file deleted removes it. OME looks every 500 ms and deletes a channel only after three
looks in a row without its file, because an editor such as vi saves by deleting the file and writing it anew.

The looking runs on a thread of its own, so a directory on a slow or hung mount stalls this thread, never the
app's actor (its stream commands) or the event loop. The watcher reports every file whose ``stat`` changed,
Kiln's own API writes included; the actor's ``AppSchedules`` decides what a report means (nothing, when the file
says what the channel already is). A report from a look that began before the actor last wrote or deleted that
channel's file is stale (a channel deleted through the API would otherwise come back from the file as it was
read a moment before), and the actor drops it.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiln.domain import schedule as ds
from kiln.events.schedules import Schedule
from kiln.regular_files import read_regular

log = logging.getLogger(__name__)

LOOK_EVERY_S = 0.5
GONE_AFTER_LOOKS = 3


@dataclass(frozen=True)
class Seen:
    """What ``stat`` said of a file: a change in any of these is a change of the file."""

    mtime_ns: int
    size: int
    inode: int


def look(directory: Path) -> dict[str, Seen] | None:
    """The regular ``{stem}.sch`` files in ``directory`` by stem ({} when it does not exist yet); None when it
    cannot be listed (a listing that failed says nothing about which files are gone)."""
    suffix = f".{ds.FILE_EXTENSION}"
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return {}
    except OSError:
        return None
    found: dict[str, Seen] = {}
    for entry in entries:
        stem = entry.name[:-len(suffix)]
        if not entry.name.endswith(suffix) or not stem or stem.startswith("."):
            continue
        try:
            st = entry.stat()
        except OSError:  # gone between the listing and the stat, or a dangling link
            continue
        if stat.S_ISREG(st.st_mode):
            found[stem] = Seen(st.st_mtime_ns, st.st_size, st.st_ino)
    return found


class DirectoryState:
    """The files seen so far; ``update`` turns the next look into (stems new or changed, stems gone)."""

    def __init__(self) -> None:
        self.seen: dict[str, Seen] = {}
        self.missing: dict[str, int] = {}  # stem -> looks in a row without the file

    def update(self, now: dict[str, Seen]) -> tuple[list[str], list[str]]:
        changed = sorted(stem for stem, seen in now.items() if self.seen.get(stem) != seen)
        gone = []
        for stem in sorted(self.seen.keys() - now.keys()):
            looks = self.missing.get(stem, 0) + 1
            if looks < GONE_AFTER_LOOKS:
                self.missing[stem] = looks
                continue
            gone.append(stem)
            del self.seen[stem]
            self.missing.pop(stem, None)
        for stem in changed:
            self.seen[stem] = now[stem]
            self.missing.pop(stem, None)
        return changed, gone


class ScheduleDirWatcher:
    """Looks at ``directory`` every ``every_s`` on its own thread; the first look reports every file. Each report
    carries when its look began (``time.monotonic()``)."""

    def __init__(self, where: str, directory: Path, on_changed: Callable[[Schedule, float], None],
                 on_gone: Callable[[str, float], None], every_s: float = LOOK_EVERY_S) -> None:
        self.where = where
        self.directory = directory
        self._on_changed = on_changed
        self._on_gone = on_gone
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sch-watch:{where}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Never waits (the thread may be stuck on a hung mount): it ends at its next wake-up."""
        self._stop.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        state = DirectoryState()
        unlisted = False
        while True:
            try:
                looked = time.monotonic()  # passed on: the actor ignores what its own later writes made stale
                now = look(self.directory)
                if now is None:
                    if not unlisted:
                        log.warning("schedule files dir not listed where=%s dir=%s", self.where, self.directory)
                    unlisted = True
                else:
                    unlisted = False
                    changed, gone = state.update(now)
                    for stem in changed:
                        schedule = self._read(stem)
                        if schedule is not None:
                            self._on_changed(schedule, looked)
                    for stem in gone:
                        self._on_gone(stem, looked)
            except Exception:  # a bug: logged, and the next look tries again
                log.exception("schedule files dir look failed where=%s dir=%s", self.where, self.directory)
            if self._stop.wait(self.every_s):
                return

    def _read(self, stem: str) -> Schedule | None:
        path = self.directory / f"{stem}.{ds.FILE_EXTENSION}"
        try:
            return ds.schedule_from_xml(read_regular(path), stem)
        except OSError as exc:
            log.warning("schedule file unreadable where=%s path=%s error=%s", self.where, path, exc)
        except ds.ScheduleError as exc:
            log.warning("schedule file refused where=%s path=%s error=%s", self.where, path, exc.text)
        return None
