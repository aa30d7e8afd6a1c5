"""No lock on the packet path, yet no byte lost: many threads count at once and the totals are exact."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from kiln.metrics import MetricsTree
from kiln.metrics import tree as tree_module
from kiln.timefmt import now

STREAMS = 4
OUT_THREADS_PER_STREAM = 3
ROUNDS = 20_000


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can, so races have every chance to happen."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def run_all(workers: list[Callable[[], None]]) -> None:
    start = threading.Barrier(len(workers))
    failures: list[BaseException] = []

    def wrapped(work: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            start.wait()
            try:
                work()
            except BaseException as exc:  # a failure in a worker must fail the test
                failures.append(exc)
        return body

    threads = [threading.Thread(target=wrapped(w)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures


def test_concurrent_input_output_reads_and_structure_changes_lose_nothing(
        tiny_switch_interval: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree_module, "RETIRE_GRACE_S", 0.0)  # departed nodes fold at the next change
    tree = MetricsTree()
    tree.vhost_created("v")
    tree.app_created("v", "a")
    names = [f"s{i}" for i in range(STREAMS)]
    for name in names:
        tree.stream_created("v", "a", name)
    stop = threading.Event()
    restarts = []

    def ingest(name: str, size: int) -> Callable[[], None]:
        def work() -> None:
            meter = tree.ingest_meter("v", "a", name)  # what a LiveStream does: its own node, then add_in
            for _ in range(ROUNDS):
                meter.add_in(size, now())
        return work

    def publish(name: str, size: int) -> Callable[[], None]:
        def work() -> None:
            for _ in range(ROUNDS):
                tree.bytes_out("v", "a", name, size)
        return work

    def read() -> None:
        while not stop.is_set():
            tree.server_json()
            tree.app_json("v", "a")
            list(tree.walk())

    def churn() -> None:  # other streams come and go, the app restarts, connections change
        n = 0
        while not stop.is_set():
            if n % 10 == 0:
                tree.app_created("v", "a")  # a reconfigure: the app starts from zero, its streams move
                restarts.append(n)
            tree.stream_created("v", "a", f"x{n % 3}")
            tree.connection("v", "a", f"x{n % 3}", "llhls", +1)
            tree.connection("v", "a", f"x{n % 3}", "llhls", -1)
            tree.stream_deleted("v", "a", f"x{n % 3}")
            n += 1

    counters = [ingest(name, 100 + i) for i, name in enumerate(names)]
    counters += [publish(name, 10 + j) for name in names for j in range(OUT_THREADS_PER_STREAM)]

    def counting() -> None:
        run_all(counters)
        stop.set()

    run_all([counting, read, churn])

    assert len(restarts) >= 2, "the app must have restarted while bytes were counted"
    expected_in = {name: ROUNDS * (100 + i) for i, name in enumerate(names)}
    expected_out = ROUNDS * sum(10 + j for j in range(OUT_THREADS_PER_STREAM))
    for name in names:
        body = tree.stream_json("v", "a", name)
        assert body is not None
        assert (body["totalBytesIn"], body["totalBytesOut"]) == (expected_in[name], expected_out)
    app = tree.app_json("v", "a")
    assert app is not None and app["totalBytesIn"] <= sum(expected_in.values())
    for body in (tree.vhost_json("v"), tree.server_json()):
        assert body is not None
        assert body["totalBytesIn"] == sum(expected_in.values())
        assert body["totalBytesOut"] == expected_out * STREAMS
        assert body["totalConnections"] == 0
