"""Which hot modules run compiled (mypyc, see setup.py), and a guard that never runs a stale one.

A build that compiled writes ``kiln/_compiled.json``: the modules and the sha256 of the source each
was compiled from. An extension sits next to its ``.py`` and Python imports it first, so after an edit
without a rebuild (an editable install) the old code would run. :func:`install`, called by
``kiln/__init__.py`` before any of those modules can be imported, compares the hashes; when a source
changed, or ``KILN_PURE=1`` is set, every listed module loads from its ``.py`` instead: all of them,
because compiled modules call each other directly, so one fresh ``.py`` among stale neighbours would
still run old code.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

MANIFEST = Path(__file__).with_name("_compiled.json")
PURE_ENV = "KILN_PURE"
ON, ABSENT, STALE, OFF = "on", "absent", "stale", "off"


@dataclass(frozen=True)
class CompiledState:
    """``state``: on (the extensions run), absent (the install is pure Python), stale (a source changed
    since the build: pure Python runs), off (``KILN_PURE=1``: pure Python runs)."""

    state: str
    modules: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # sources that differ from what was compiled
    refused: str = ""  # why the last build compiled nothing (mypyc's first errors), when it said

    @property
    def compiled(self) -> bool:
        return self.state == ON


def source_path(module: str, root: Path = MANIFEST.parent) -> Path:
    """The ``.py`` of a ``kiln.*`` module."""
    return root.joinpath(*module.split(".")[1:]).with_suffix(".py")


def read_state(manifest: Path = MANIFEST, environ: Mapping[str, str] | None = None) -> CompiledState:
    try:
        written = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return CompiledState(ABSENT)
    if not isinstance(written, dict):
        return CompiledState(ABSENT)
    recorded = written.get("modules")
    if not isinstance(recorded, dict):  # a build that compiled nothing may say why
        return CompiledState(ABSENT, refused=str(written.get("refused", "")))
    modules = tuple(recorded)
    changed = tuple(name for name, digest in recorded.items() if _digest(source_path(name, manifest.parent)) != digest)
    if changed:
        return CompiledState(STALE, modules, changed)
    if (os.environ if environ is None else environ).get(PURE_ENV, "").strip() not in ("", "0"):
        return CompiledState(OFF, modules)
    return CompiledState(ON, modules)


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


class SourceFinder(importlib.abc.MetaPathFinder):
    """Loads the named modules from their ``.py`` even where a compiled extension sits beside it."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path or ():
            candidate = Path(entry) / leaf
            if candidate.is_file():
                return importlib.util.spec_from_file_location(fullname, candidate)
        return None


_state: CompiledState | None = None


def install() -> CompiledState:
    """Decide once per process; when the extensions must not run, route their imports to the sources."""
    global _state
    if _state is None:
        _state = read_state()
        if _state.state in (STALE, OFF):
            sys.meta_path.insert(0, SourceFinder(_state.modules))
    return _state


def is_extension(module: ModuleType) -> bool:
    return any(str(getattr(module, "__file__", "")).endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES)


def log_startup(log: logging.Logger) -> CompiledState:
    """One line at startup: which modules run compiled, or why none do."""
    state = install()
    if state.state == ABSENT and state.refused:
        log.warning("event=compiled_modules state=absent reason=%r (pure Python install)", state.refused)
    elif state.state == ABSENT:
        log.info("event=compiled_modules state=absent (pure Python install; `make install` compiles with gcc)")
    elif state.state == STALE:
        log.warning("event=compiled_modules state=stale changed=%s (pure Python runs; `make install` rebuilds)",
                    ",".join(state.changed))
    elif state.state == OFF:
        log.info("event=compiled_modules state=off count=%d (%s=1: pure Python runs)", len(state.modules), PURE_ENV)
    else:
        loaded = [name for name in state.modules if is_extension(importlib.import_module(name))]
        log.info("event=compiled_modules state=on count=%d modules=%s", len(loaded), ",".join(loaded))
    return state
