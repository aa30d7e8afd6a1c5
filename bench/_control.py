"""Helpers shared by the control-plane benches (journal.py, api.py): output tables, paths, percentiles."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned table: first column left, the others right."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    out(fmt(cells[0]))
    out("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        out(fmt(row))
    out()


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if value < 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def filesystem_of(path: Path) -> str:
    """``device type`` of the mount holding ``path`` (so a tmpfs, where fsync is free, is visible)."""
    path = path.resolve()
    best, found = "", "unknown"
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                device, mount, fstype = line.split()[:3]
                if (str(path) + "/").startswith(mount.rstrip("/") + "/") and len(mount) >= len(best):
                    best, found = mount, f"{fstype} on {device} ({mount})"
    except OSError:
        pass
    return found


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cpu(s) {model}".strip()


def api_server_xml(token: str, vhost: str = "default", app: str = "app") -> str:
    """Server.xml of a Kiln with only the API port (free port) and one live app with RTMP in and LL-HLS, push
    and recording out: what the control-plane benches drive."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>KilnBench</Name>
  <Type>origin</Type>
  <IP>127.0.0.1</IP>
  <Bind><Managers><API><Port>0</Port></API></Managers></Bind>
  <Managers><API><AccessToken>{token}</AccessToken></API></Managers>
  <VirtualHosts>
    <VirtualHost>
      <Name>{vhost}</Name>
      <Host><Names><Name>*</Name></Names></Host>
      <Applications>
        <Application>
          <Name>{app}</Name>
          <Type>live</Type>
          <Providers><RTMP/></Providers>
          <Publishers><LLHLS/><Push/><FILE/></Publishers>
        </Application>
      </Applications>
    </VirtualHost>
  </VirtualHosts>
</Server>
"""
