"""An app's directory of channel files, as OME keeps them: ScheduleFilesDir (``.sch``) and MuxFilesDir (``.mux``).

The journal decides which channels exist; the files are written (a fresh temporary name renamed over the target,
``kiln/regular_files.py``) and deleted as OME writes and deletes them, so a tool that reads the directory sees
OME's files, and only inside the writable roots (an app made through the API may name any directory). A relative
directory is under the configuration file's directory, as in OME. While Kiln runs the directory is followed by
``kiln/actors/file_watch.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from kiln.config.write_roots import WriteRoots
from kiln.domain.errors import Failed, Invalid
from kiln.regular_files import read_regular, write_replacing

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ChannelFileKind(Generic[T]):
    """What the files of one kind are: their extension, how one is read (``read(data, stem)``, ``Invalid`` for a
    file OME would not load) and written, and the name of the channel a file defines."""

    label: str       # in log lines and errors: "schedule", "multiplex"
    setting: str     # the app's setting naming the directory, in errors: "scheduleFilesDir"
    extension: str
    read: Callable[[bytes, str], T]
    write: Callable[[T], bytes]
    name_of: Callable[[T], str]


class ChannelDir(Generic[T]):
    def __init__(self, where: str, kind: ChannelFileKind[T], files_dir: str, config_dir: Path | None,
                 roots: WriteRoots | None = None) -> None:
        self.where = where
        self.kind = kind
        self.config_dir = config_dir
        self.roots = roots
        self._files_dir = files_dir
        self._own: dict[str, float] = {}  # channel -> monotonic time Kiln last finished writing or deleting its file

    def stale(self, name: str, looked: float) -> bool:
        """A watcher's look that began (``looked``, monotonic) before Kiln's own write or delete of the channel's
        file ended may have read the file as it was before: what it reports is not news, and a channel deleted right
        after its POST must not come back from a file read a moment before."""
        return self._own.get(name, float("-inf")) >= looked

    def resolve(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() or self.config_dir is None else self.config_dir / path

    def files_dir(self) -> Path:
        return self.resolve(self._files_dir)

    def path(self, name: str) -> Path:
        return self.files_dir() / f"{name}.{self.kind.extension}"

    def _confined(self, path: Path) -> None:
        if self.roots is not None and not self.roots.allows(path):
            raise Invalid(f"{self.kind.setting} is outside the writable roots (Managers/API/WritableRoots): "
                          f"[{path.parent}]")

    def write(self, channel: T) -> None:
        """OME's 500 when the file cannot be written (the command then journals nothing); 400 outside the roots."""
        name = self.kind.name_of(channel)
        path = self.path(name)
        self._confined(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_replacing(path, self.kind.write(channel))
        except OSError as exc:
            log.warning("%s file not written where=%s path=%s error=%s", self.kind.label, self.where, path, exc)
            raise Failed(f"Could not save the {self.kind.label} file {path}") from exc
        finally:
            self._own[name] = time.monotonic()

    def remove(self, name: str) -> None:
        path = self.path(name)
        self._confined(path)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("%s file not deleted where=%s path=%s error=%s", self.kind.label, self.where, path, exc)
            raise Failed(f"Could not delete the {self.kind.label} file {path}") from exc
        finally:
            self._own[name] = time.monotonic()

    def restore(self, channel: T) -> None:
        """At start the file says what the journal says: written again when it went missing, or when it differs
        (a change whose new file was written but whose event was lost to a kill -9 answered no one)."""
        try:
            same = read_regular(self.path(self.kind.name_of(channel))) == self.kind.write(channel)
        except OSError:
            same = False
        if not same:
            try:
                self.write(channel)
            except Failed:
                pass  # logged; the channel runs from the journal either way
            except Invalid as exc:
                log.warning("%s file not written where=%s error=%s", self.kind.label, self.where, exc.text)

    def found(self, known: set[str]) -> list[T]:
        """The files no journaled channel names, read as OME reads them; a bad one is logged."""
        return [channel for name, channel in self.read_all().items() if name not in known]

    def read_all(self) -> dict[str, T]:
        """Every file read as OME reads them, by the channel it names (of two naming one channel the first in name
        order counts); a bad one is logged."""
        root = self.files_dir()
        try:
            paths = sorted(p for p in root.iterdir() if p.suffix == f".{self.kind.extension}")
        except FileNotFoundError:
            log.info("%s files dir absent where=%s dir=%s (made with the first channel)", self.kind.label,
                     self.where, root)
            return {}
        except OSError as exc:
            log.warning("%s files not listed where=%s dir=%s error=%s", self.kind.label, self.where, root, exc)
            return {}
        out: dict[str, T] = {}
        for path in paths:
            try:
                channel = self.kind.read(read_regular(path), path.stem)
            except OSError as exc:
                log.warning("%s file unreadable where=%s path=%s error=%s", self.kind.label, self.where, path, exc)
                continue
            except Invalid as exc:
                log.warning("%s file refused where=%s path=%s error=%s", self.kind.label, self.where, path,
                            exc.text)
                continue
            out.setdefault(self.kind.name_of(channel), channel)
        return out
