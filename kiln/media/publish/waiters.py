"""A bounded wait on the event loop until something a publisher holds changes: how a player port or an API call
waits for a stream the stream actor has not handed to that publisher yet."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class ChangeWaiters:
    """Futures woken all at once when their owner says something changed. Used on the event loop only."""

    def __init__(self) -> None:
        self._waiting: list[asyncio.Future[None]] = []

    def wake(self) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_while(self, condition: Callable[[], bool], timeout: float) -> None:
        """Return once ``condition()`` is false (looked at again after each wake) or after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while condition():
            left = deadline - loop.time()
            if left <= 0:
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiting.append(waiter)
            try:
                await asyncio.wait_for(waiter, left)
            except TimeoutError:
                return
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
