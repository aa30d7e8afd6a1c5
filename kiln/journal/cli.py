"""``kiln journal show|tail|stats|verify``: read the audit trail without starting the server.

All commands only read; they are safe while Kiln runs (a half-written last frame is skipped).
Secrets in payloads (stream keys, passphrases, signed-URL signatures, webhook secret keys) are shown
as ``***`` unless ``--reveal`` is given; the journal itself keeps them for replay. A data directory
without a journal, an unknown ``--type`` and an ``--entity`` no record has are errors that say
what exists, never an empty success.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import TextIO

from kiln.events import registered_types
from kiln.events.catalog import app_entity, vhost_entity
from kiln.events.redact import Redactor
from kiln.events.streams import pull_entity, stream_entity
from kiln.events.subscriptions import subscription_entity
from kiln.events.tasks import dump_entity, push_entity, record_entity
from kiln.journal.errors import JournalCorruptError
from kiln.journal.reader import iter_records
from kiln.journal.records import Record
from kiln.journal.segments import journal_dir, list_segments
from kiln.journal.verify import verify
from kiln.journal.view import record_view
from kiln.timefmt import format_time, parse_time

# How each kind of entity id is spelled, built from the functions that spell them.
ENTITY_FORMS = {form.split(":", 1)[0]: form for form in (
    vhost_entity("<vhost>"), app_entity("<vhost>", "<app>"), pull_entity("<vhost>", "<app>", "<stream>"),
    stream_entity("<vhost>", "<app>", "<stream>"), push_entity("<vhost>", "<app>", "<id>"),
    record_entity("<vhost>", "<app>", "<id>"), dump_entity("<vhost>", "<app>", "<output stream>", "<id>"),
    subscription_entity("<id>"), "server")}


class UsageError(Exception):
    """The command cannot mean anything (no journal, an unknown type): exit 2 with this text."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiln journal", description="Audit Kiln's event journal.",
        epilog="exit status: 0 done; 1 damage found, or no record for --entity; 2 no journal in the data "
               "directory, or an unknown --type/--entity (the known ones are listed)")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-d", "--data-dir", default="data", help="Kiln's data directory (default: data)")
        p.add_argument("--json", action="store_true", help="one JSON object per line")

    def reveal(p: argparse.ArgumentParser) -> None:
        p.add_argument("--reveal", action="store_true",
                       help="show secrets (stream keys, passphrases, signatures) instead of ***")

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--entity", help="entity id or prefix, e.g. 'app:default/app' or 'stream:'; kinds: "
                       + ", ".join(ENTITY_FORMS))
        p.add_argument("--type", action="append", help="event type (repeatable), e.g. StreamStarted")
        p.add_argument("--since", help="ISO time, e.g. 2026-11-29T10:00:00+00:00")
        p.add_argument("--from-seq", type=int, default=1, help="first sequence number")

    show = sub.add_parser("show", help="print records, oldest first")
    common(show)
    filters(show)
    reveal(show)
    show.add_argument("--limit", type=int, default=0, help="stop after N records")
    tail = sub.add_parser("tail", help="print the last records")
    common(tail)
    filters(tail)
    reveal(tail)
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


class _Printer:
    """Formats records, secrets masked unless ``reveal``; one per command so a secret seen in an
    earlier record (a push's stream key) is masked where a later one repeats it."""

    def __init__(self, as_json: bool, reveal: bool) -> None:
        self.as_json = as_json
        self.redactor = None if reveal else Redactor()

    def see(self, record: Record) -> None:
        """Learn the secrets of a record that is read but not printed."""
        if self.redactor is not None:
            self.redactor.learn(record.payload)

    def line(self, record: Record) -> str:
        view = record_view(record, self.redactor)
        if self.as_json:
            return json.dumps(view, default=repr, sort_keys=True)
        text = json.dumps(view["payload"], default=repr, sort_keys=True, separators=(",", ":"))
        return f"{record.seq:>8} {format_time(record.time)} {record.type:<22} {record.entity} {text}"


@dataclass
class _Selection:
    """Records read by show/tail, and what an ``--entity`` that matched nothing could have been."""

    args: argparse.Namespace
    printer: _Printer
    entity_seen: bool = False
    same_kind: set[str] = field(default_factory=set)  # entity ids of the --entity's kind

    def records(self, from_seq: int) -> Iterator[Record]:
        since = parse_time(self.args.since) if self.args.since else None
        kind = self.args.entity.partition(":")[0] + ":" if self.args.entity else ""
        for record in iter_records(journal_dir(self.args.data_dir), from_seq):
            if self.args.entity and not self.entity_seen:
                if record.entity.startswith(self.args.entity):
                    self.entity_seen = True
                elif record.entity.startswith(kind) and len(self.same_kind) < 1000:
                    self.same_kind.add(record.entity)
            if _matches(record, self.args, since):
                yield record
            else:
                self.printer.see(record)

    def finish(self) -> int:
        """0, or 1 with the reason on stderr when ``--entity`` named nothing the journal holds."""
        if not self.args.entity or self.entity_seen:
            return 0
        known = sorted(self.same_kind)
        listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
        sys.stderr.write(f"no records for entity {self.args.entity!r} in {journal_dir(self.args.data_dir)}\n"
                         + (f"entities of that kind: {listed}\n" if known else "")
                         + f"{_entity_help()}\n")
        return 1


def _entity_help() -> str:
    forms = "\n".join(f"  {form}" for form in ENTITY_FORMS.values())
    return f"entities are spelled kind:path (a prefix matches, e.g. 'push:' or 'app:default/'); kinds:\n{forms}"


def _write(out: TextIO, lines: Iterable[str]) -> None:
    for line in lines:
        out.write(line + "\n")


def _show(args: argparse.Namespace, out: TextIO) -> int:
    printer = _Printer(args.json, args.reveal)
    selection = _Selection(args, printer)
    for count, record in enumerate(selection.records(args.from_seq), 1):
        out.write(printer.line(record) + "\n")
        if args.limit and count >= args.limit:
            return 0
    return selection.finish()


def _tail(args: argparse.Namespace, out: TextIO) -> int:
    printer = _Printer(args.json, args.reveal)
    selection = _Selection(args, printer)
    last: list[Record] = []
    for record in selection.records(args.from_seq):
        last.append(record)
        if len(last) > args.n:
            printer.see(last.pop(0))
    _write(out, (printer.line(r) for r in last))
    next_seq = last[-1].seq + 1 if last else args.from_seq
    if not args.follow:
        return selection.finish()
    while True:
        out.flush()
        time.sleep(0.5)
        for record in iter_records(journal_dir(args.data_dir), next_seq):
            next_seq = record.seq + 1
            if _matches(record, args, None):
                out.write(printer.line(record) + "\n")
            else:
                printer.see(record)


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


def _check_journal(data_dir: str) -> None:
    """A data directory must hold a journal: reading nothing is not an empty success."""
    directory = journal_dir(Path(data_dir))
    if not Path(data_dir).is_dir():
        raise UsageError(f"no journal: data directory {data_dir} does not exist (give Kiln's with -d)")
    if not directory.is_dir():
        raise UsageError(f"no journal in {data_dir}: {directory} does not exist (is this Kiln's data directory?)")
    if not list_segments(directory):
        raise UsageError(f"no journal in {data_dir}: {directory} holds no segment files (*.kjl)")


def _check_types(args: argparse.Namespace) -> None:
    """Every ``--type`` must be an event type this Kiln knows or one the journal holds."""
    known = set(registered_types())
    unknown = [t for t in args.type or () if t not in known]
    if not unknown:
        return
    stored = {record.type for record in iter_records(journal_dir(args.data_dir), 1)}
    unknown = [t for t in unknown if t not in stored]
    if unknown:
        names = ", ".join(sorted(known | stored))
        hints = [f"{t!r} (did you mean {', '.join(close)}?)" if (close := get_close_matches(t, known | stored))
                 else repr(t) for t in unknown]
        raise UsageError(f"unknown event type {', '.join(hints)}; known types: {names}")


def _check_entity(args: argparse.Namespace) -> None:
    """An ``--entity`` must start with a known kind (or be a prefix of one)."""
    entity = args.entity
    if not entity:
        return
    kind, colon, _ = entity.partition(":")
    if kind in ENTITY_FORMS if colon else any(k.startswith(kind) for k in ENTITY_FORMS):
        return
    raise UsageError(f"unknown entity {entity!r}: {_entity_help()}")


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
        _check_journal(args.data_dir)
        if args.command in ("show", "tail"):
            _check_entity(args)
            _check_types(args)
        return handler(args, out)
    except UsageError as exc:
        sys.stderr.write(f"kiln journal {args.command}: {exc}\n")
        return 2
    except JournalCorruptError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
