"""Build: Kiln's per-packet hot modules compiled to C extensions with mypyc, when this machine can.

The modules below are plain type-annotated Python; mypyc (part of mypy) turns them into C extensions
that run the ingest path (RTMP chunks -> FLV -> hub -> meters -> LL-HLS fMP4, MPEG-TS demux) about
1.5-2x faster. Compiling is optional: without a C compiler or Python's headers, or with
``KILN_COMPILE=0``, the install is pure Python and Kiln logs ``event=compiled_modules state=absent``.
A successful build writes ``kiln/_compiled.json`` (the modules and a hash of each source), which
``kiln.compiled`` uses at import time to refuse a stale extension (see there).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
MANIFEST = ROOT / "kiln" / "_compiled.json"

# the ingest path, per packet; each must stay mypyc-compatible (tests/unit/test_compiled.py)
COMPILED = (
    "kiln/media/model.py",
    "kiln/media/formats/rtmp/messages.py",
    "kiln/media/formats/rtmp/chunk.py",
    "kiln/media/formats/flv.py",
    "kiln/media/formats/codecs/nal.py",
    "kiln/media/formats/mpegts/demux.py",
    "kiln/media/formats/mpegts/tsclock.py",
    "kiln/media/ingest/demux/convert.py",
    "kiln/media/formats/bmff/boxes.py",
    "kiln/media/formats/bmff/entries.py",
    "kiln/media/formats/bmff/fragment.py",
    "kiln/media/formats/bmff/emsg.py",
    "kiln/media/formats/bmff/init.py",
    "kiln/media/ingest/rtmp/session.py",
    "kiln/media/stream/hub.py",
    "kiln/media/stream/live.py",
    "kiln/metrics/queue.py",
    "kiln/metrics/track.py",
    "kiln/media/publish/llhls/packager.py",
    # startup replay, per journal record (bench/journal.py, replay)
    "kiln/journal/reader.py",
    "kiln/replay.py",
    # not kiln/media/publish/llhls/stream.py: the LL-HLS server keys streams weakly, and a compiled class has
    # no weak references unless mypy_extensions marks it (a runtime dependency for one attribute)
)


def _say(message: str) -> None:
    sys.stderr.write(f"kiln build: {message}\n")


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


GROUP = "kiln._native"  # mypyc's shared library: kiln/_native__mypyc.*.so, inside the package


def _remove_extensions() -> None:
    """Every extension an earlier build left in the tree (Kiln has no others): one for a module no longer
    listed would otherwise still be imported in place of its source."""
    for stale in (ROOT / "kiln").rglob("*.cpython-*.so"):
        stale.unlink()


def _go_pure(reason: str) -> None:
    """No compiled modules: drop the manifest and any extension an earlier build left in the tree."""
    _say(f"pure Python install ({reason}); Kiln runs, slower on the ingest path")
    MANIFEST.unlink(missing_ok=True)
    _remove_extensions()


def _can_compile() -> str | None:
    """None when compiling can be tried, else why not."""
    if os.environ.get("KILN_COMPILE", "1").strip() == "0":
        return "KILN_COMPILE=0"
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler}; Debian: apt-get install gcc)"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python.h (Debian: apt-get install python3-dev)"
    return None


class OptionalBuildExt(build_ext):
    """A failed compile leaves a working pure-Python install instead of a failed one."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure means: no extensions
            _go_pure(f"compiling failed: {exc}")


def _ext_modules() -> list[Extension]:
    reason = _can_compile()
    if reason is not None:
        _go_pure(reason)
        return []
    import mypy.version
    from mypyc.build import mypycify

    _remove_extensions()
    MANIFEST.write_text(json.dumps({
        "mypy": mypy.version.__version__,
        "modules": {_module(p): hashlib.sha256((ROOT / p).read_bytes()).hexdigest() for p in COMPILED},
    }, indent=1) + "\n")
    _say(f"compiling {len(COMPILED)} modules with mypyc {mypy.version.__version__}")
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            return mypycify(list(COMPILED), opt_level="3", group_name=GROUP)
    except (Exception, SystemExit):  # noqa: BLE001 - mypyc exits on a type error or code it cannot compile
        sys.stderr.write(said.getvalue())
        errors = [line for line in said.getvalue().splitlines() if ": error:" in line][:5]
        reason = "mypyc refused: " + ("; ".join(errors) or said.getvalue().strip()[-500:] or "no message")
        _go_pure(reason)
        MANIFEST.write_text(json.dumps({"refused": reason}, indent=1) + "\n")  # kiln.compiled reports it
        return []


# pip also runs this file for metadata only (egg_info, dist_info): compile only when building
BUILDING = bool({"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"} & set(sys.argv[1:]))
setup(ext_modules=_ext_modules() if BUILDING else [], cmdclass={"build_ext": OptionalBuildExt})
