"""Refusals for API paths outside Kiln's writable roots (kiln/config/write_roots.py), in OME's 400 envelope."""

from __future__ import annotations

import os
import stat
from typing import Any

from kiln.config.write_roots import WriteRoots
from kiln.errors import ApiError


def _outside(field: str, path: str) -> ApiError:
    return ApiError(400, f"{field} is outside the writable roots (Managers/API/WritableRoots): [{path}]")


def check_record_paths(roots: WriteRoots | None, body: Any, root_path: str, vhost: str, app: str) -> None:
    """``filePath`` and ``infoPath`` as the recorder will place them (the app's rootPath joined, the
    names it will put in the macros), and the rootPath itself (an app made through the API may name any)."""
    if roots is None or not isinstance(body, dict):
        return
    stream = body.get("stream")
    name = stream.get("name") if isinstance(stream, dict) else None
    names = {"VirtualHost": vhost, "Application": app, "Stream": name if isinstance(name, str) else ""}
    for field in ("filePath", "infoPath"):
        value = body.get(field)
        if isinstance(value, str) and value and not roots.allows(roots.record_path(root_path, value), names):
            raise _outside(field, value)
    if root_path and not roots.allows(roots.record_path(root_path, "file")):
        raise _outside("rootPath", root_path)


def check_dump_paths(roots: WriteRoots | None, output_path: str, info_file: str, playlists: list[str]) -> None:
    """``outputPath``, ``infoFile`` and every playlist name, which the dump writes inside outputPath."""
    if roots is None:
        return
    if not roots.allows(output_path):
        raise _outside("outputPath", output_path)
    if info_file and not roots.allows(info_file):
        raise _outside("infoFile", info_file)
    for name in playlists:
        if not roots.allows(f"{output_path.rstrip('/')}/{name}"):
            raise _outside("playlist", name)


def _mode(path: str) -> int | None:
    try:
        return os.stat(path).st_mode
    except OSError:
        return None  # not there (the dump makes it) or not reachable (the write fails and says so)


def check_dump_targets(output_path: str, info_file: str) -> None:
    """What already stands at the dump's paths: ``infoFile`` must be a regular file (a FIFO's open() waits
    for a writer forever), ``outputPath`` a directory. Blocking (stat): run on a worker thread."""
    mode = _mode(output_path)
    if mode is not None and not stat.S_ISDIR(mode):
        raise ApiError(400, f"outputPath is not a directory: [{output_path}]")
    mode = _mode(info_file) if info_file else None
    if mode is not None and not stat.S_ISREG(mode):
        raise ApiError(400, f"infoFile is not a regular file: [{info_file}]")


def check_record_targets(roots: WriteRoots | None, body: Any, root_path: str) -> None:
    """An ``infoPath`` without macros (where it lands is known now) must be a regular file if it is there:
    the recorder reads it to append each finished file, and a FIFO's open() would hold it for good.
    Blocking (stat): run on a worker thread."""
    if roots is None or not isinstance(body, dict):
        return
    value = body.get("infoPath")
    if not isinstance(value, str) or not value or "${" in value:
        return  # a template: the recorder meets what stands there and fails the task saying why
    path = roots.record_path(root_path, value)
    mode = _mode(path)
    if mode is not None and not stat.S_ISREG(mode):
        raise ApiError(400, f"infoPath is not a regular file: [{path}]")


def check_dump(roots: WriteRoots | None, output_path: str, info_file: str, playlists: list[str]) -> None:
    """Every check of ``:startHlsDump``'s paths. Blocking (realpath, stat): run on a worker thread."""
    check_dump_paths(roots, output_path, info_file, playlists)
    check_dump_targets(output_path, info_file)


def check_record(roots: WriteRoots | None, body: Any, root_path: str, vhost: str, app: str) -> None:
    """Every check of ``:startRecord``'s paths. Blocking (realpath, stat): run on a worker thread."""
    check_record_paths(roots, body, root_path, vhost, app)
    check_record_targets(roots, body, root_path)
