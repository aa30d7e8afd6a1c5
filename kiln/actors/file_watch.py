"""Following a directory of channel files while Kiln runs, as OME does for ScheduleFilesDir (``.sch``) and
MuxFilesDir (``.mux``): a file written there adds or updates its channel, a file deleted removes it. OME looks
every 500 ms and deletes a channel only after three looks in a row without its file, because an editor such as
vi saves by deleting the file and writing it anew.

The looking runs on a thread of its own, so a directory on a slow or hung mount stalls this thread, never the
app's actor (its stream commands) or the event loop. The watcher reads and parses every file whose ``stat``
changed (Kiln's own API writes included) and reports what it found; the app's actor decides what a report means
(nothing, when the file says what the channel already is). Each report carries when its look began: one that
began before the actor last wrote or deleted that channel's file is stale (a channel deleted through the API
would otherwise come back from the file as it was read a moment before), and the actor drops it.
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
from typing import Generic, TypeVar

from kiln.actors.channel_files import ChannelFileKind
from kiln.domain.errors import Invalid
from kiln.regular_files import read_regular

log = logging.getLogger(__name__)

LOOK_EVERY_S = 0.5
GONE_AFTER_LOOKS = 3
T = TypeVar("T")


@dataclass(frozen=True)
class Seen:
    """What ``stat`` said of a file: a change in any of these is a change of the file."""

    mtime_ns: int
    size: int
    inode: int


def look(directory: Path, extension: str) -> dict[str, Seen] | None:
    """The regular ``{stem}.{extension}`` files in ``directory`` by stem ({} when it does not exist yet); None
    when it cannot be listed (a listing that failed says nothing about which files are gone)."""
    suffix = f".{extension}"
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


class FilesDirWatcher(Generic[T]):
    """Looks at ``directory`` every ``every_s`` on its own thread; the first look reports every file. Reports:
    ``on_changed(channel, looked)`` for a file new or changed that reads, ``on_gone(name, looked)`` for the
    channel a deleted file defined; ``looked`` is ``time.monotonic()`` when that look began."""

    def __init__(self, where: str, directory: Path, kind: ChannelFileKind[T], on_changed: Callable[[T, float], None],
                 on_gone: Callable[[str, float], None], every_s: float = LOOK_EVERY_S) -> None:
        self.where = where
        self.directory = directory
        self.kind = kind
        self._on_changed = on_changed
        self._on_gone = on_gone
        self.every_s = every_s
        self._names: dict[str, str] = {}  # stem -> the channel its file defined when last read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{kind.extension}-watch:{where}", daemon=True)

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
                looked = time.monotonic()
                now = look(self.directory, self.kind.extension)
                if now is None:
                    if not unlisted:
                        log.warning("%s files dir not listed where=%s dir=%s", self.kind.label, self.where,
                                    self.directory)
                    unlisted = True
                else:
                    unlisted = False
                    changed, gone = state.update(now)
                    for stem in changed:
                        channel = self._read(stem)
                        if channel is not None:
                            self._names[stem] = self.kind.name_of(channel)
                            self._on_changed(channel, looked)
                    for stem in gone:
                        name = self._names.pop(stem, None)
                        if name is not None:
                            self._on_gone(name, looked)
            except Exception:  # a bug: logged, and the next look tries again
                log.exception("%s files dir look failed where=%s dir=%s", self.kind.label, self.where,
                              self.directory)
            if self._stop.wait(self.every_s):
                return

    def _read(self, stem: str) -> T | None:
        path = self.directory / f"{stem}.{self.kind.extension}"
        try:
            return self.kind.read(read_regular(path), stem)
        except OSError as exc:
            log.warning("%s file unreadable where=%s path=%s error=%s", self.kind.label, self.where, path, exc)
        except Invalid as exc:
            log.warning("%s file refused where=%s path=%s error=%s", self.kind.label, self.where, path, exc.text)
        return None
