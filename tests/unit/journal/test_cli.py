"""``kiln journal`` as an auditor uses it."""

from __future__ import annotations

import io
import json
from pathlib import Path

from kiln.journal import Journal, NewRecord
from kiln.journal.cli import run
from kiln.journal.segments import journal_dir, list_segments


def make_journal(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, fsync=False)
    j.append([NewRecord("vhost:default", "VhostCreated", 1, {"name": "default"}),
              NewRecord("app:default/app", "AppCreated", 1, {"name": "app"}),
              NewRecord("stream:default/app/s1", "StreamCreated", 1, {"name": "s1"}),
              NewRecord("stream:default/app/s1", "StreamEnded", 1, {"reason": "publisher left"})]).result(5)
    j.close()


def call(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = run(list(argv), out)
    return code, out.getvalue()


def test_show_filters_by_entity_prefix_and_type(tmp_path: Path) -> None:
    make_journal(tmp_path)
    code, text = call("show", "-d", str(tmp_path), "--entity", "stream:", "--json")
    assert code == 0
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(r["seq"], r["type"]) for r in lines] == [(3, "StreamCreated"), (4, "StreamEnded")]
    assert lines[1]["payload"] == {"reason": "publisher left"}
    _, text = call("show", "-d", str(tmp_path), "--type", "AppCreated")
    assert text.count("\n") == 1 and "app:default/app" in text and "AppCreated" in text


def test_tail_prints_the_last_n(tmp_path: Path) -> None:
    make_journal(tmp_path)
    _, text = call("tail", "-d", str(tmp_path), "-n", "2", "--json")
    assert [json.loads(line)["seq"] for line in text.splitlines()] == [3, 4]


def test_stats_counts_types_and_entity_kinds(tmp_path: Path) -> None:
    make_journal(tmp_path)
    code, text = call("stats", "-d", str(tmp_path), "--json")
    stats = json.loads(text)
    assert code == 0 and stats["records"] == 4 and stats["last_seq"] == 4
    assert stats["entities"] == {"stream": 2, "vhost": 1, "app": 1}
    assert stats["types"]["StreamEnded"] == 1


def test_verify_reports_damage_with_file_and_exit_code(tmp_path: Path) -> None:
    make_journal(tmp_path)
    assert call("verify", "-d", str(tmp_path))[0] == 0
    (_, path), = list_segments(journal_dir(tmp_path))
    data = bytearray(path.read_bytes())
    data[10] ^= 0x55
    path.write_bytes(bytes(data))
    code, text = call("verify", "-d", str(tmp_path))
    assert code == 1 and "DAMAGED" in text and str(path) in text and "byte 0" in text


def test_bad_since_is_a_clear_error(tmp_path: Path, capsys) -> None:
    make_journal(tmp_path)
    code, _ = call("show", "-d", str(tmp_path), "--since", "yesterday-ish")
    assert code == 2 and "--since" in capsys.readouterr().err
