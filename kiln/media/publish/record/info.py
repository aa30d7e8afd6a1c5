"""The recording info XML: one ``<file>`` appended per finished file (rest-spec §10.6, seed 003).

Written as a new file then renamed over the old one, so a crash never leaves half a document.
``<interval>``/``<schedule>`` are written as the seed page shows (OME's code omits them).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from kiln.regular_files import NotRegularFile, read_regular, write_replacing
from kiln.timefmt import format_time


@dataclass(frozen=True)
class FileEntry:
    transaction_id: str
    id: str
    metadata: str
    vhost: str
    app: str
    stream: str
    file_path: str
    record_bytes: int
    record_time_ms: int
    sequence: int
    last_sequence: bool
    created_time: float
    start_time: float
    finish_time: float
    interval: int = 0
    schedule: str = ""


def _existing(info_path: Path) -> ET.Element:
    """The info file's document so far (a new one when there is none or it is not one). Raises OSError when
    something other than a regular file stands there: a FIFO's open() would hold the recording for good."""
    try:
        data = read_regular(info_path)
    except NotRegularFile:
        raise
    except OSError:  # none yet (or unreadable: the write says so)
        return ET.Element("files")
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return ET.Element("files")
    return root if root.tag == "files" else ET.Element("files")


def append_entry(info_path: Path, entry: FileEntry) -> None:
    root = _existing(info_path)
    f = ET.SubElement(root, "file")
    for tag, value in (("transactionId", entry.transaction_id), ("id", entry.id), ("metadata", entry.metadata),
                       ("vhost", entry.vhost), ("app", entry.app), ("stream", entry.stream)):
        ET.SubElement(f, tag).text = value
    ET.SubElement(f, "filePath").text = entry.file_path
    if entry.interval > 0:
        ET.SubElement(f, "interval").text = str(entry.interval)
    if entry.schedule:
        ET.SubElement(f, "schedule").text = entry.schedule
    for tag, number in (("recordBytes", entry.record_bytes), ("recordTime", entry.record_time_ms),
                        ("sequence", entry.sequence)):
        ET.SubElement(f, tag).text = str(number)
    ET.SubElement(f, "lastSequence").text = "true" if entry.last_sequence else "false"
    for tag, ts in (("createdTime", entry.created_time), ("startTime", entry.start_time),
                    ("finishTime", entry.finish_time)):
        ET.SubElement(f, tag).text = format_time(ts)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    # OME wraps filePath in CDATA; ElementTree escapes instead, so splice CDATA in for that element
    for el in root.iter("filePath"):
        escaped = ET.tostring(el, encoding="unicode").strip()
        body = body.replace(escaped, f"<filePath><![CDATA[{el.text}]]></filePath>", 1)
    info_path.parent.mkdir(parents=True, exist_ok=True)
    write_replacing(info_path, ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode(), mode=0o644)


def read_entries(info_path: Path) -> list[dict[str, str]]:
    """The entries of an info file (for tests and recovery checks)."""
    root = ET.parse(info_path).getroot()
    return [{child.tag: (child.text or "") for child in f} for f in root.findall("file")]
