"""pull_and_wait, the one door every player port uses for a missing stream: bounded, and None unless pulled."""

from __future__ import annotations

import asyncio

from kiln.media.origins.on_demand import pull_and_wait


class Origins:
    def __init__(self, connects: bool) -> None:
        self.connects = connects
        self.asked: list[tuple[str, str, str, str]] = []

    async def pull(self, vhost: str, app: str, stream: str, query: str = "") -> bool:
        self.asked.append((vhost, app, stream, query))
        return self.connects


def test_no_origins_or_no_origin_for_the_stream_is_none_at_once() -> None:
    assert asyncio.run(pull_and_wait(None, "v", "app", "cam", "", lambda: "ready")) is None
    origins = Origins(connects=False)
    assert asyncio.run(pull_and_wait(origins, "v", "app", "cam", "a=1", lambda: "ready")) is None
    assert origins.asked == [("v", "app", "cam", "a=1")]


def test_waits_until_ready_after_the_pull_connected() -> None:
    polls = iter([None, None, "packaged"])
    assert asyncio.run(pull_and_wait(Origins(connects=True), "v", "app", "cam", "", lambda: next(polls))) == "packaged"


def test_a_pull_that_never_becomes_ready_gives_up_within_the_bound() -> None:
    async def run() -> tuple[object, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        found = await pull_and_wait(Origins(connects=True), "v", "app", "cam", "", lambda: None, wait_s=0.3)
        return found, loop.time() - start

    found, waited = asyncio.run(run())
    assert found is None and 0.3 <= waited < 5
