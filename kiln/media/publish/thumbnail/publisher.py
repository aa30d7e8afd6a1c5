"""The Thumbnail publisher of one output stream: its newest still per image codec, counted as served.

The transcoder keeps each image encode's newest still in the output's :class:`LatestImage` holders;
this publisher is what reads them on behalf of the Thumbnail HTTP port. It owns no thread, socket
or file: attaching is remembering the output, detaching is forgetting it, so a stream that ends
keeps nothing alive through a thumbnail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiln.media.model import Codec
from kiln.media.publish.thumbnail.store import LatestImage, Still
from kiln.media.stream.live import OutputStream

log = logging.getLogger(__name__)


@dataclass
class ThumbnailCounters:
    images_served: int = 0
    bytes_out: int = 0


@dataclass(frozen=True)
class Served:
    """One still as a response carries it: the bytes, and the holder's content type."""

    still: Still
    content_type: str


class ThumbnailPublisher:
    def __init__(self, name: str, counters: ThumbnailCounters | None = None) -> None:
        self.name = name
        self.counters = counters if counters is not None else ThumbnailCounters()
        self._output: OutputStream | None = None

    @property
    def attached(self) -> bool:
        return self._output is not None

    def attach(self, output: OutputStream) -> None:
        self._output = output

    def detach(self, reason: str) -> None:
        if self._output is not None:
            log.info("thumbnail publisher detached name=%s reason=%s", self.name, reason)
        self._output = None

    def holder(self, codec: Codec) -> LatestImage | None:
        """The output's image encode with ``codec``; None when detached or there is none."""
        output = self._output
        return output.images.get(codec) if output is not None else None

    def peek(self, codec: Codec) -> Served | None:
        """The newest still with ``codec`` without counting it (a HEAD request); None if none was made yet."""
        holder = self.holder(codec)
        still = holder.still if holder is not None else None
        return Served(still, holder.content_type) if holder is not None and still is not None else None

    def serve(self, codec: Codec) -> Served | None:
        """The newest still with ``codec``, counted as sent to a viewer (a GET request)."""
        served = self.peek(codec)
        if served is not None:
            self.counters.images_served += 1
            self.counters.bytes_out += len(served.still.data)
        return served


if TYPE_CHECKING:  # mypy holds the class to the publisher contract
    from kiln.media.publish.contract import Publisher

    _conforms: type[Publisher] = ThumbnailPublisher
