"""How long each fuzz target runs, and the bounds every example must stay within.

CI runs every target with a small, reproducible budget (``derandomize``: the same examples each run,
so a red CI means the code changed, not the dice). ``make fuzz`` sets ``KILN_FUZZ_EXAMPLES`` high and
``KILN_FUZZ_RANDOM=1``: random examples each run, kept in ``.hypothesis/`` so a failure found once is
replayed first next time.

Each target has a weight: its example count is ``KILN_FUZZ_EXAMPLES`` (default 100) times the weight,
so cheap pure parsers get more examples than targets that start a demuxer thread or an HTTP request.

``bounded()`` is the no-hang / no-unbounded-memory property: an example that runs longer than
``seconds`` is interrupted (SIGALRM, so an endless loop fails instead of hanging the run) and one whose
Python allocations peak above ``max_bytes`` fails, whatever it returns.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

EXAMPLES = max(1, int(os.environ.get("KILN_FUZZ_EXAMPLES", "100")))
RANDOM = os.environ.get("KILN_FUZZ_RANDOM", "") not in ("", "0")
EXAMPLE_SECONDS = float(os.environ.get("KILN_FUZZ_EXAMPLE_SECONDS", "10"))  # a hang, not a slow machine
EXAMPLE_BYTES = 64 << 20    # inputs are at most a few hundred KiB: 64 MiB means a length field was believed

PROFILE = "kiln-fuzz-long" if RANDOM else "kiln-fuzz-ci"
settings.register_profile(
    "kiln-fuzz-ci", max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture])
settings.register_profile(
    "kiln-fuzz-long", parent=settings.get_profile("kiln-fuzz-ci"), derandomize=False,
    database=DirectoryBasedExampleDatabase(".hypothesis/fuzz"))

F = TypeVar("F", bound=Callable[..., Any])


def fuzz(weight: float = 1.0) -> Callable[[F], F]:
    """``@fuzz(w)`` above ``@given``: the target runs ``KILN_FUZZ_EXAMPLES * w`` examples (at least 5)."""
    return settings(settings.get_profile(PROFILE), max_examples=max(5, int(EXAMPLES * weight)))


class Hang(AssertionError):
    """An example ran past its time bound."""


class Unbounded(AssertionError):
    """An example allocated far more than its input could justify."""


@contextlib.contextmanager
def bounded(seconds: float = EXAMPLE_SECONDS, max_bytes: int = EXAMPLE_BYTES) -> Iterator[None]:
    on_main = threading.current_thread() is threading.main_thread()
    if on_main:
        def expired(signum: int, frame: Any) -> None:
            raise Hang(f"example still running after {seconds:.0f} s")

        previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
        if peak > max_bytes:
            raise Unbounded(f"example allocated {peak / 2**20:.0f} MiB (bound {max_bytes / 2**20:.0f} MiB)")
    finally:
        if not tracing:
            tracemalloc.stop()
        if on_main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def only(errors: type[BaseException] | tuple[type[BaseException], ...], fn: Callable[..., Any], *args: Any,
         **kwargs: Any) -> Any:
    """``fn(*args)`` within bounds; returns its result, or None when it raised one of ``errors``.
    Any other exception propagates, and hypothesis shrinks the input that raised it."""
    with bounded():
        try:
            return fn(*args, **kwargs)
        except errors:
            return None
