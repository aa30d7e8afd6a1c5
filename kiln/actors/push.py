"""The push task actor: one durable restreaming task (rest-spec §9).

The task waits in ``ready`` until its output stream exists; the media side (kiln.media.push)
drives the session states and reports them back as commands.
"""

from __future__ import annotations

import copy
import logging

from kiln.actors.base import CommandActor, Outcome
from kiln.actors.commands import Teardown
from kiln.actors.context import Context
from kiln.projections.tasks import PushTask

log = logging.getLogger(__name__)


class PushActor(CommandActor):
    def __init__(self, ctx: Context, task: PushTask) -> None:
        super().__init__()
        self.ctx = ctx
        self.task = copy.copy(task)

    def on_start(self) -> None:
        log.debug("push task ready vhost=%s app=%s id=%s", self.task.vhost, self.task.app, self.task.id)

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        log.info("push task stopped vhost=%s app=%s id=%s reason=%s", self.task.vhost, self.task.app,
                 self.task.id, cmd.reason)
        return Outcome(None)
