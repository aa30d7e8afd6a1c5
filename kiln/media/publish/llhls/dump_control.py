"""Starting and stopping HLS dump writers from any thread.

The task supervisor decides and journals dump starts and stops; this runs the effect. The
writers live on the asyncio loop with their LL-HLS stream, so every call only schedules work
there (``call_soon_threadsafe``) and never blocks the caller or the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from kiln.media.publish.llhls.publisher import LlhlsPublisher

log = logging.getLogger(__name__)


class LlhlsDumpControl:
    def __init__(self, publisher: LlhlsPublisher) -> None:
        self.publisher = publisher

    def start(self, vhost: str, app: str, output_stream: str, dump_id: str, output_path: str,
              playlists: list[str], info_file: str, user_data: str) -> None:
        def on_loop() -> None:
            stream = self.publisher.find(vhost, app, output_stream)
            if stream is None:  # the output ended between the decision and now: nothing to write
                log.info("hls dump not started id=%s stream=%s/%s/%s reason=stream gone", dump_id, vhost, app,
                         output_stream)
                return
            if any(dump.id == dump_id and dump.enabled for dump in stream.dumps):
                return  # already writing (a start and a resume crossed): one writer per dump
            self.publisher.start_dump(stream, dump_id, output_path, playlists, info_file, user_data)
        self._on_loop(on_loop)

    def stop(self, vhost: str, app: str, output_stream: str, dump_ids: Collection[str]) -> None:
        wanted = set(dump_ids)

        def on_loop() -> None:
            stream = self.publisher.find(vhost, app, output_stream)
            if stream is None:
                return
            for dump in list(stream.dumps):
                if dump.id in wanted:
                    dump.stop()
                    stream.dumps.remove(dump)
        self._on_loop(on_loop)

    def _on_loop(self, fn: Callable[[], None]) -> None:
        loop = self.publisher.loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(fn)
