"""The one door every player port goes through for a stream that is not here (media spec §4.1).

An LL-HLS master or chunklist, a thumbnail, a WebRTC ``request_offer`` or a WHEP POST for a missing
stream asks the vhost's Origins / OriginMapStore to pull it, then waits, bounded, until what that
request serves exists (a packaged stream, a still, an output with tracks). One function, so every
port answers a missing stream the same way and no port waits longer than the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)

READY_WAIT_S = 10.0  # a pull that connected is packaged (or has its first still) within this
POLL_S = 0.1

T = TypeVar("T")


class OnDemand(Protocol):
    """Pull on demand (``kiln.media.origins.OriginPuller``): True once the missing stream is pulled."""

    async def pull(self, vhost: str, app: str, stream: str, query: str = "") -> bool: ...


async def pull_and_wait(origins: OnDemand | None, vhost: str, app: str, stream: str, query: str,
                        ready: Callable[[], T | None], wait_s: float = READY_WAIT_S) -> T | None:
    """Pull ``vhost/app/stream`` and return ``ready()`` once it is not None; None when no origin has the
    stream, the pull failed, or it was not ready within ``wait_s`` after connecting. The caller calls
    this only when the stream is missing (a stream that is here but not ready yet is not pulled again)."""
    if origins is None or not await origins.pull(vhost, app, stream, query):
        return None
    found = await wait_ready(ready, wait_s)
    if found is None:
        log.info("origin pull connected but not ready vhost=%s app=%s stream=%s waited=%.0fs", vhost, app, stream,
                 wait_s)
    return found


async def wait_ready(ready: Callable[[], T | None], wait_s: float = READY_WAIT_S) -> T | None:
    """``ready()`` once it is not None, polled; None after ``wait_s`` (a stream pulled, or one whose
    publisher connected but whose first tracks are not known yet)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while (found := ready()) is None:
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(POLL_S)
    return found
