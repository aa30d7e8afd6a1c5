"""The stream actor: journals one live stream instance's lifecycle (described, ended with reason).

It never touches packets; the LiveStream's hubs carry media. Ending is idempotent: the source
going away, a DELETE and a server shutdown may race, and exactly one StreamEnded is journaled.
The app actor stops it once the stream is forgotten, so a command already on its way is still
answered (an actor that stopped itself would leave that caller waiting).
"""

from __future__ import annotations

import logging
from typing import Any

from kiln.actors.base import CommandActor, Outcome, tell_quietly
from kiln.actors.commands import EndStream, ForgetStream, StreamDescribed, StreamReady, Teardown
from kiln.actors.context import Context
from kiln.events import streams as se
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)


class StreamActor(CommandActor):
    def __init__(self, ctx: Context, stream: LiveStream, supervisor: Any) -> None:
        super().__init__()
        self.ctx = ctx
        self.stream = stream
        self.supervisor = supervisor
        self.ended = False

    def handle_StreamDescribed(self, cmd: StreamDescribed) -> Outcome:
        if self.ended:
            return Outcome(None)
        s = self.stream
        fut = self.ctx.events.emit([se.StreamTracksDescribed(s.vhost, s.app, s.name, s.instance,
                                                             s.tracks_summary())])
        tell_quietly(self.supervisor, StreamReady(s.name, s.instance))
        return Outcome(None, [fut])

    def handle_EndStream(self, cmd: EndStream) -> Outcome:
        if self.ended:
            return Outcome(None)
        self.ended = True
        s = self.stream
        s.end(cmd.reason)
        fut = self.ctx.events.emit([se.StreamEnded(s.vhost, s.app, s.name, s.instance, cmd.reason, s.bytes_in)])
        tell_quietly(self.supervisor, ForgetStream(s.name, s.instance))
        return Outcome(None, [fut])

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        self.stream.close_ingest(cmd.reason)
        return self.handle_EndStream(EndStream(cmd.reason))
