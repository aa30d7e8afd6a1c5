"""The layers of DEVELOPERS.md, held by a test that walks every import in ``kiln/``.

Function-level imports count too: a deferred import is still a dependency. A violation fails
with the module, the line and the import, so the offending edge is named, not guessed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "kiln"

# The pure part of kiln.config: OME's configuration schema and its validation, shared by
# Server.xml loading and the domain (which decides whether an app's JSON is acceptable), and
# Host/Names matching (the domain tells which vhost shadows another).
PURE_CONFIG = ("kiln.config.schema", "kiln.config.validate", "kiln.config.values", "kiln.config.hosts")


@dataclass(frozen=True)
class Rule:
    """Modules under ``layer`` may import kiln modules only under ``allowed`` (if given) and
    never under ``forbidden``."""

    layer: str
    allowed: tuple[str, ...] | None = None
    forbidden: tuple[str, ...] = ()
    why: str = ""


RULES = (
    Rule("kiln.events", allowed=("kiln.events",), why="events are plain data"),
    Rule("kiln.domain", allowed=("kiln.domain", "kiln.events", *PURE_CONFIG),
         why="decisions without I/O, pykka or media"),
    Rule("kiln.media.formats", allowed=("kiln.media.formats", "kiln.media.model"),
         why="pure codecs and containers over the shared Track/Packet model"),
    Rule("kiln.media", forbidden=("kiln.actors", "kiln.http", "kiln.projections", "kiln.journal", "kiln.domain",
                                  "kiln.service", "kiln.errors", "kiln.eventlog", "kiln.cli"),
         why="media is driven through small interfaces; packets never meet actors or HTTP"),
    Rule("kiln.admission", allowed=("kiln.admission", "kiln.events"),
         why="admission decides from the request and small Protocols; media calls it, it calls nothing back"),
    Rule("kiln.metrics", allowed=("kiln.metrics", "kiln.timefmt"), why="counters know nothing else"),
    Rule("kiln.projections", allowed=("kiln.projections", "kiln.events", "kiln.domain", "kiln.timefmt",
                                      *PURE_CONFIG),
         why="read models are fed by events only"),
    Rule("kiln.http", forbidden=("kiln.media", "kiln.journal", "kiln.service", "kiln.eventlog",
                                 "kiln.actors.app", "kiln.actors.vhost", "kiln.actors.server",
                                 "kiln.actors.streams", "kiln.actors.stream", "kiln.actors.tasks",
                                 "kiln.actors.push", "kiln.actors.record", "kiln.actors.context",
                                 "kiln.actors.subscriptions", "kiln.delivery"),
         why="HTTP sends commands and reads read models and views"),
    Rule("kiln.delivery", allowed=("kiln.delivery", "kiln.events", "kiln.admission", "kiln.metrics"),
         why="delivery reads the feed and reports progress through Protocols; the actor owns the state"),
    Rule("kiln.actors", forbidden=("kiln.http", "kiln.errors"),
         why="actors refuse with domain errors; HTTP maps them to OME's texts"),
)

_DOMAIN_STDLIB_BANNED = ("pykka", "av", "starlette", "uvicorn", "msgpack", "socket", "threading", "asyncio",
                         "time", "os", "subprocess")


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """Absolute names of everything the module imports (relative imports resolved)."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # ``from kiln.actors import configcheck`` imports the module kiln.actors.configcheck
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                      if (root.parent / f"{base}.{alias.name}".replace(".", "/")).with_suffix(".py").exists()]
    return found


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _violations(root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        rules = [r for r in RULES if _under(module, r.layer)]
        if not rules:
            continue
        rule = max(rules, key=lambda r: len(r.layer))  # the most specific layer decides
        for line, name in _imports(path, root):
            where = f"{path.relative_to(root.parent)}:{line}"
            if rule.layer == "kiln.domain" and name.split(".")[0] in _DOMAIN_STDLIB_BANNED:
                out.append(f"{where} imports {name} ({rule.layer}: {rule.why})")
                continue
            if not _under(name, "kiln"):
                continue
            outside = rule.allowed is not None and not any(_under(name, a) for a in rule.allowed)
            if outside or any(_under(name, f) for f in rule.forbidden):
                out.append(f"{where} imports {name} ({rule.layer}: {rule.why})")
    return out


def test_layers_hold() -> None:
    violations = _violations()
    assert not violations, "layer violations:\n" + "\n".join(violations)


@pytest.mark.parametrize("source, expected", [
    ("from kiln.actors.base import ask\n", "kiln.actors.base"),
    ("def f():\n    from kiln.http.cors import CorsPolicy\n", "kiln.http.cors"),
])
def test_walker_sees_top_level_and_deferred_imports(tmp_path: Path, source: str, expected: str) -> None:
    """On a probe tree of its own, so a parallel run of test_layers_hold never sees the probe."""
    probe = tmp_path / "kiln" / "media" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(source)
    line = source.count("\n")  # the import is on the probe's last line
    found = [v.split(" (")[0] for v in _violations(tmp_path / "kiln")]
    assert found == [f"kiln/media/probe.py:{line} imports {expected}"]
