"""An app's tasks as recovered from the journal: what its task supervisor starts from."""

from __future__ import annotations

from dataclasses import dataclass

from kiln.domain.dumps import DumpStatus
from kiln.domain.push import PushStatus
from kiln.domain.record import RecordStatus


@dataclass(frozen=True)
class AppTasks:
    pushes: tuple[PushStatus, ...] = ()
    records: tuple[RecordStatus, ...] = ()
    dumps: tuple[DumpStatus, ...] = ()
