"""``kiln journal show|tail|stats|verify``: read the audit trail without starting the server.

All commands only read; they are safe while Kiln runs (a half-written last frame is skipped).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TextIO

from kiln.journal.errors import JournalCorruptError
from kiln.journal.reader import iter_records
from kiln.journal.records import Record
from kiln.journal.segments import journal_dir
from kiln.journal.verify import verify
from kiln.timefmt import format_time, parse_time


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiln journal", description="Audit Kiln's event journal.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-d", "--data-dir", default="data", help="Kiln's data directory (default: data)")
        p.add_argument("--json", action="store_true", help="one JSON object per line")

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--entity", help="entity id or prefix, e.g. 'app:default/app' or 'stream:'")
        p.add_argument("--type", action="append", help="event type (repeatable), e.g. StreamCreated")
        p.add_argument("--since", help="ISO time, e.g. 2026-11-29T10:00:00+00:00")
        p.add_argument("--from-seq", type=int, default=1, help="first sequence number")

    show = sub.add_parser("show", help="print records, oldest first")
    common(show)
    filters(show)
    show.add_argument("--limit", type=int, default=0, help="stop after N records")
    tail = sub.add_parser("tail", help="print the last records")
    common(tail)
    filters(tail)
    tail.add_argument("-n", type=int, default=20, help="how many (default 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new records")
    stats = sub.add_parser("stats", help="counts per event type and entity kind")
    common(stats)
    check = sub.add_parser("verify", help="check every frame; exit 1 on damage")
    common(check)
    return parser


def _matches(record: Record, args: argparse.Namespace, since: float | None) -> bool:
    if args.entity and not record.entity.startswith(args.entity):
        return False
    if args.type and record.type not in args.type:
        return False
    return since is None or record.time >= since


def _line(record: Record, as_json: bool) -> str:
    if as_json:
        return json.dumps({"seq": record.seq, "time": format_time(record.time), "entity": record.entity,
                           "type": record.type, "version": record.version, "payload": record.payload},
                          default=repr, sort_keys=True)
    payload = json.dumps(record.payload, default=repr, sort_keys=True, separators=(",", ":"))
    return f"{record.seq:>8} {format_time(record.time)} {record.type:<22} {record.entity} {payload}"


def _selected(args: argparse.Namespace, from_seq: int) -> Iterator[Record]:
    since = parse_time(args.since) if args.since else None
    for record in iter_records(journal_dir(args.data_dir), from_seq):
        if _matches(record, args, since):
            yield record


def _write(out: TextIO, lines: Iterable[str]) -> None:
    for line in lines:
        out.write(line + "\n")


def _show(args: argparse.Namespace, out: TextIO) -> int:
    for count, record in enumerate(_selected(args, args.from_seq), 1):
        out.write(_line(record, args.json) + "\n")
        if args.limit and count >= args.limit:
            break
    return 0


def _tail(args: argparse.Namespace, out: TextIO) -> int:
    last: list[Record] = []
    for record in _selected(args, args.from_seq):
        last.append(record)
        if len(last) > args.n:
            last.pop(0)
    _write(out, (_line(r, args.json) for r in last))
    next_seq = last[-1].seq + 1 if last else args.from_seq
    while args.follow:
        out.flush()
        time.sleep(0.5)
        for record in iter_records(journal_dir(args.data_dir), next_seq):
            next_seq = record.seq + 1
            if _matches(record, args, None):
                out.write(_line(record, args.json) + "\n")
    return 0


def _stats(args: argparse.Namespace, out: TextIO) -> int:
    report = verify(args.data_dir)
    types: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    if report.ok:
        for record in iter_records(report.directory, 1):
            types[record.type] += 1
            kinds[record.entity.split(":", 1)[0]] += 1
    first = next((s.first_time for s in report.segments if s.first_time is not None), None)
    last = next((s.last_time for s in reversed(report.segments) if s.last_time is not None), None)
    summary = {"directory": str(report.directory), "segments": len(report.segments), "records": report.records,
               "last_seq": report.last_seq, "bytes": report.bytes,
               "first_time": format_time(first) if first is not None else None,
               "last_time": format_time(last) if last is not None else None,
               "types": dict(types.most_common()), "entities": dict(kinds.most_common()),
               "problems": report.problems}
    if args.json:
        out.write(json.dumps(summary, sort_keys=True) + "\n")
    else:
        out.write(f"journal {summary['directory']}: {summary['segments']} segments, {summary['records']} records, "
                  f"last seq {summary['last_seq']}, {summary['bytes']} bytes\n")
        out.write(f"from {summary['first_time']} to {summary['last_time']}\n")
        _write(out, (f"  {name:<24} {n}" for name, n in types.most_common()))
        _write(out, (f"  {kind + ':':<24} {n}" for kind, n in kinds.most_common()))
        _write(out, (f"problem: {p}" for p in report.problems))
    return 0 if report.ok else 1


def _verify(args: argparse.Namespace, out: TextIO) -> int:
    report = verify(args.data_dir)
    if args.json:
        out.write(json.dumps({"ok": report.ok, "segments": len(report.segments), "records": report.records,
                              "last_seq": report.last_seq, "problems": report.problems,
                              "torn_tail": report.torn_tail}) + "\n")
    else:
        state = "OK" if report.ok else "DAMAGED"
        out.write(f"{state}: {len(report.segments)} segments, {report.records} records, "
                  f"last seq {report.last_seq}\n")
        if report.torn_tail:
            out.write(f"torn tail: {report.torn_tail}\n")
        _write(out, (f"problem: {p}" for p in report.problems))
    return 0 if report.ok else 1


def run(argv: list[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    if getattr(args, "since", None):
        try:
            parse_time(args.since)
        except ValueError:
            sys.stderr.write(f"--since: not an ISO time: {args.since!r}\n")
            return 2
    handler = {"show": _show, "tail": _tail, "stats": _stats, "verify": _verify}[args.command]
    try:
        return handler(args, out)
    except JournalCorruptError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
