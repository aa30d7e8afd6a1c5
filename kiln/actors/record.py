"""The record task actor: one durable recording task (rest-spec §10)."""

from __future__ import annotations

import copy
import logging

from kiln.actors.base import CommandActor, Outcome
from kiln.actors.commands import Teardown
from kiln.actors.context import Context
from kiln.projections.tasks import RecordTask

log = logging.getLogger(__name__)


class RecordActor(CommandActor):
    def __init__(self, ctx: Context, task: RecordTask) -> None:
        super().__init__()
        self.ctx = ctx
        self.task = copy.copy(task)

    def stop_snapshot(self) -> RecordTask:
        """The task as ``:stopRecord`` answers it: a snapshot taken before finalising, ``stopping``."""
        snap = copy.copy(self.task)
        snap.state = "stopping"
        snap.output_file_path = ""
        snap.output_info_path = ""
        return snap

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        log.info("record task stopped vhost=%s app=%s id=%s reason=%s", self.task.vhost, self.task.app,
                 self.task.id, cmd.reason)
        return Outcome(None)
