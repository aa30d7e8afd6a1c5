"""The console's files: everything the page loads exists, ships in the package, and keeps to the
Content-Security-Policy (no inline script or style, nothing from another server)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

from kiln.http.console import STATIC

ROOT = Path(__file__).resolve().parents[3]


def static_files() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*") if p.is_file())


def test_every_static_file_is_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "kiln.http.console"]
    package = STATIC.parent
    missing = [str(p.relative_to(package)) for p in static_files()
               if not any(fnmatch.fnmatch(str(p.relative_to(package)), g) for g in globs)]
    assert not missing, f"not in pyproject's package-data, so not installed: {missing}"


def test_what_the_page_loads_exists_and_comes_from_this_server() -> None:
    html = (STATIC / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "js/main.js" in refs and "console.css" in refs
    for ref in refs:
        assert "://" not in ref and not ref.startswith("//"), ref
        assert (STATIC / ref).is_file(), ref
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script: the CSP forbids it"
    assert "<style" not in html and " style=" not in html, "inline style: the CSP forbids it"


def test_every_module_import_resolves() -> None:
    for module in (STATIC / "js").glob("*.js"):
        for target in re.findall(r"from '(\.[^']+)'", module.read_text()):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}"
    preview = (STATIC / "js" / "preview.js").read_text()
    hls = re.search(r"HLS_SCRIPT = '([^']+)'", preview)
    assert hls and (STATIC / hls.group(1)).is_file()


def test_the_vendored_player_ships_with_its_license() -> None:
    assert (STATIC / "vendor" / "hls.min.js").stat().st_size > 100_000
    assert "Apache License" in (STATIC / "vendor" / "hls.js.LICENSE").read_text()
