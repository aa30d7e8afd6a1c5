"""An app's MuxFilesDir: the ``.mux`` files OME keeps its multiplex channels in.

The journal decides which channels exist; the files are written (a fresh temporary name renamed over the
target, ``kiln/regular_files.py``) and deleted as OME writes and deletes them, so a tool that reads the directory
sees OME's files, and only inside the writable roots (an app made through the API may name any MuxFilesDir).
A relative MuxFilesDir is under the configuration file's directory, as in OME.

While Kiln runs the directory is followed as OME's provider follows it (``kiln/actors/file_watch.py`` with
:data:`MUX_FILES`): a new file is a new channel, a changed one replaces its channel, one missing three looks in a
row removes it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kiln.actors.file_watch import ChannelFileKind
from kiln.config.write_roots import WriteRoots
from kiln.domain import multiplex as dm
from kiln.domain.errors import Failed, Invalid
from kiln.events.multiplex import Multiplex
from kiln.regular_files import read_regular, write_replacing

log = logging.getLogger(__name__)

# OME names a multiplex channel after the file's OutputStream, not after the file
MUX_FILES: ChannelFileKind[Multiplex] = ChannelFileKind("multiplex", dm.FILE_EXTENSION,
                                                        lambda data, _stem: dm.multiplex_from_xml(data),
                                                        lambda mux: mux.name)


def _files_dir(config: dict[str, Any]) -> str:
    providers = config.get("providers")
    found = providers.get("multiplex") if isinstance(providers, dict) else None
    return str(found.get("muxFilesDir") or "") if isinstance(found, dict) else ""


class MuxFiles:
    def __init__(self, where: str, app_config: dict[str, Any], config_dir: Path | None,
                 roots: WriteRoots | None = None) -> None:
        self.where = where
        self.config_dir = config_dir
        self.roots = roots
        self._files_dir = _files_dir(app_config)

    def files_dir(self) -> Path:
        path = Path(self._files_dir)
        return path if path.is_absolute() or self.config_dir is None else self.config_dir / path

    def path(self, name: str) -> Path:
        return self.files_dir() / f"{name}.{dm.FILE_EXTENSION}"

    def _confined(self, path: Path) -> None:
        if self.roots is not None and not self.roots.allows(path):
            raise Invalid(f"muxFilesDir is outside the writable roots (Managers/API/WritableRoots): [{path.parent}]")

    def write(self, mux: Multiplex) -> None:
        """OME's 500 when the file cannot be written (the command then journals nothing); 400 outside the roots."""
        path = self.path(mux.name)
        self._confined(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_replacing(path, dm.multiplex_to_xml(mux))
        except OSError as exc:
            log.warning("multiplex file not written where=%s path=%s error=%s", self.where, path, exc)
            raise Failed(f"Could not save the multiplex file {path}") from exc

    def remove(self, name: str) -> None:
        path = self.path(name)
        self._confined(path)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("multiplex file not deleted where=%s path=%s error=%s", self.where, path, exc)
            raise Failed(f"Could not delete the multiplex file {path}") from exc

    def restore(self, mux: Multiplex) -> None:
        """At start the file says what the journal says: written again when it went missing or differs."""
        try:
            same = read_regular(self.path(mux.name)) == dm.multiplex_to_xml(mux)
        except OSError:
            same = False
        if not same:
            try:
                self.write(mux)
            except Failed:
                pass  # logged; the channel runs from the journal either way
            except Invalid as exc:
                log.warning("multiplex file not written where=%s error=%s", self.where, exc.text)

    def found(self, known: set[str]) -> list[Multiplex]:
        """The ``*.mux`` files no journaled channel names, read as OME reads them; a bad one is logged."""
        return [mux for name, mux in self.read_all().items() if name not in known]

    def read_all(self) -> dict[str, Multiplex]:
        """Every ``*.mux`` file read as OME reads them, by the channel it names (OME names the channel after the
        file's OutputStream, so a file named otherwise gives that name; of two naming one channel the first in
        name order counts); a bad one is logged."""
        root = self.files_dir()
        try:
            paths = sorted(p for p in root.iterdir() if p.suffix == f".{dm.FILE_EXTENSION}")
        except FileNotFoundError:
            log.info("multiplex files dir absent where=%s dir=%s (made with the first channel)", self.where, root)
            return {}
        except OSError as exc:
            log.warning("multiplex files not listed where=%s dir=%s error=%s", self.where, root, exc)
            return {}
        out: dict[str, Multiplex] = {}
        for path in paths:
            try:
                mux = dm.multiplex_from_xml(read_regular(path))
            except OSError as exc:
                log.warning("multiplex file unreadable where=%s path=%s error=%s", self.where, path, exc)
                continue
            except dm.MultiplexError as exc:
                log.warning("multiplex file refused where=%s path=%s error=%s", self.where, path, exc.text)
                continue
            out.setdefault(mux.name, mux)
        return out
