"""Automatic snapshots keep up with the journal by event count, however slowly one is written.

When events come faster than snapshots are written, a capture that has not started saving is replaced
by the newer one, so the newest snapshot is at most one save behind (it used to queue every capture,
and after a burst a crash found the newest snapshot tens of thousands of events behind the journal).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from kiln.config import load_server_xml_text
from kiln.events import catalog as ce
from kiln.journal import SnapshotStore
from kiln.service import KilnService
from tests.unit.http.conftest import SERVER_XML


class SlowStore(SnapshotStore):
    """Blocks the first save until released, recording every save."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.saved: list[int] = []

    def save(self, seq: int, state: dict[str, Any]) -> Path:
        self.entered.set()
        assert self.release.wait(10)
        self.saved.append(seq)
        return super().save(seq, state)


def test_a_slow_snapshot_is_followed_by_the_newest_capture_only(tmp_path: Path) -> None:
    service = KilnService(load_server_xml_text(SERVER_XML, tmp_path), tmp_path, snapshot_every=10, fsync=False)
    service.open()
    try:
        store = SlowStore(tmp_path)
        service.snapshots = store
        assert service.events is not None
        for n in range(20):  # 20 captures' worth of events while the first save is held up
            service.events.emit([ce.VhostCreated(f"v{n}-{i}", {"name": f"v{n}-{i}"}, 1.0) for i in range(10)]).result(5)
            if n == 0:  # the first capture is being saved (else, on a loaded machine, the second replaced it)
                assert store.entered.wait(10)
        last = service.journal.last_seq
        store.release.set()
    finally:
        service.close()
    newest = last - last % 10  # captures are taken at every 10th event
    assert store.saved == [10, newest]  # the held-up save, then only the newest capture
    loaded = SnapshotStore(tmp_path).load_latest()
    assert loaded is not None and loaded[0] == newest
