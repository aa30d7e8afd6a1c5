"""The latest image of one image encode of one output stream, kept in memory for the Thumbnail publisher.

It stands where an encoder's target hub would be (``publish``), so the transcoder hands it stills
the same way it hands packets to output streams. Only the newest image is kept: a thumbnail is a
snapshot, never a history. Replacing the tuple is atomic, so readers on the event loop need no lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kiln.media.model import Codec, Packet
from kiln.media.transcode.image import IMAGE_FORMATS


@dataclass(frozen=True, slots=True)
class Still:
    data: bytes
    sequence: int        # 1 for the first image of this output, then counting up
    made: float          # time.time() when it was encoded (Last-Modified)


class LatestImage:
    def __init__(self, codec: Codec, width: int, height: int) -> None:
        self.codec = codec
        self.width, self.height = width, height
        self.content_type = IMAGE_FORMATS[codec].content_type
        self.extension = IMAGE_FORMATS[codec].extension
        self.still: Still | None = None

    def publish(self, packet: Packet) -> None:
        """Called on the transcoder's worker thread with one complete image."""
        previous = self.still
        self.still = Still(packet.data, previous.sequence + 1 if previous else 1, time.time())
