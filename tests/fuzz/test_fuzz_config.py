"""Fuzz target for Server.xml: documents generated from Kiln's own table of OME elements (so they get
past the root and into every section), with leaf texts chosen to hurt (huge numbers, port ranges,
``${env:…}`` forms, empty and non-ASCII text), unknown elements, and mutated bytes of a real file.

Property: ``kiln config check`` (load, validate every vhost, summarise) and the per-app settings the
actors read answer a config or ``ConfigLoadError``/``ConfigError`` with a message, never a traceback,
within the time and memory bounds of tests/fuzz/budget.py.
"""

from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

from hypothesis import given
from hypothesis import strategies as st

from kiln.config.check import EXIT_INVALID, EXIT_OK, run_check
from kiln.config.schema import SERVER, Node
from kiln.domain.settings import AppSettings
from tests.fuzz.budget import bounded, fuzz
from tests.fuzz.strategies import mutated
from tests.unit.http.conftest import SERVER_XML

TEXTS = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "true", "false", "TRUE", "65535", "65536", "99999999999999999999",
                     "1935", "1935/tcp", "4000-4005/udp", "4005-4000", "10000-70000", "1,2,3", "*", "*.example.com",
                     "${env:KILN_FUZZ_UNSET}", "${env:KILN_FUZZ_UNSET:9}", "${env:HOME}", "${env:", "${", "${Port}",
                     "origin", "edge", "live", "bypass", "h264", "aac", "opus", "1K", "2M", "0.5", "nan", "inf",
                     "1e400", "../../etc", "/tmp/kiln-fuzz", "rtmp://127.0.0.1:9/app", "é", "\u202e",
                     "\u00b2", "4000-\u00b2", "9" * 5000]),  # isdigit but no int(); more digits than int() reads
    st.text(max_size=12),
)
NAMES = st.sampled_from(["default", "app", "bypass", "x", "", "a b", "é"])


def _element(tag: str, node: Node, children: st.DrawFn, depth: int) -> str:
    if node.kind == "leaf" or depth > 6:
        text = children(NAMES if tag == "Name" else TEXTS)
        return f"<{tag}>{escape(text)}</{tag}>"
    parts: list[str] = []
    fields = list(node.fields) if node.kind == "obj" else [node.item] if node.item else []
    for fld in fields:
        if fld.required and children(st.integers(0, 9)) or children(st.integers(0, 3)) == 0:
            for _ in range(children(st.integers(1, 2)) if fld.many else 1):
                parts.append(_element(fld.tag, fld.node, children, depth + 1))
    if children(st.integers(0, 20)) == 0:
        parts.append(f"<Unknown{depth}>{escape(children(TEXTS))}</Unknown{depth}>")
    return f"<{tag}>{''.join(parts)}</{tag}>"


@st.composite
def server_xml(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from(["8", "8", "7", ""]))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + _element("Server", SERVER, draw, 0).replace("<Server>", f'<Server version="{version}">', 1)).encode()


BOMB = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaaaaaaaa">' +
        b"".join(b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">' % ((c,) + (c - 1,) * 8) for c in range(98, 106))
        + b']><Server version="8"><Name>&i;</Name></Server>')


@fuzz(1.0)
@given(st.one_of(server_xml(), mutated([SERVER_XML.encode(), BOMB], max_mutations=4)))
def test_server_xml(data: bytes) -> None:
    path = Path("/tmp") / f"kiln-fuzz-server-{id(data)}.xml"  # tmp_path is per test, not per example
    path.write_bytes(data)
    out = io.StringIO()
    try:
        with bounded():
            code = run_check(str(path), out)
            assert code in (EXIT_OK, EXIT_INVALID)
            if code == EXIT_INVALID:
                assert out.getvalue().startswith("error: ") and out.getvalue().count("\n") == 1
            else:
                from kiln.config.loader import load_server_xml

                for vhost in load_server_xml(path).vhosts:
                    for app in (vhost.get("applications") or {}).get("application") or []:
                        AppSettings.parse(app)
    finally:
        path.unlink(missing_ok=True)
