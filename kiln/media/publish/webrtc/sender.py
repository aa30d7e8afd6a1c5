"""The thread that sends one feed's frames to its viewers, off the event loop.

Per viewer and packet Kiln writes an RTP header, SRTP-protects (libsrtp) and ``sendto``s. At 200
viewers of a 2.5 Mbit/s stream that is ~60,000 packets a second, and a keyframe is ~15,000 packets
sent in one go: on the event loop that blocked signalling, ICE, RTCP and RTMP ingest for tens of
milliseconds per frame, and every frame behind it waited. Here the loop (or the transcoder thread)
only queues the frame; this thread does the per-viewer work, and since libsrtp and ``sendto``
release the GIL, most of it runs beside the loop on the other core.

Frames are bounded (``max_frames``): a thread that cannot keep up (a machine without the CPU for it)
refuses new frames instead of queueing without bound; the feed counts them as shed and viewers resume
at the next keyframe. Commands (a viewer added or gone, a NACK, a rendition change) are never
refused: they change what the thread owns, and only the thread changes it, in queue order.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from kiln.control_cpu import free_thread

log = logging.getLogger(__name__)

T = TypeVar("T")
SWITCH_INTERVAL_S = 0.0005
FRAME, ORDERED, ANYTIME = 0, 1, 2
Command = Callable[[], object]


class _SwitchInterval:
    """Python's GIL switch interval is SWITCH_INTERVAL_S while any send thread runs, the process's own
    value otherwise. A send thread gives the GIL up at every protect and sendto (they run without it)
    and must get it back at once: with the default 5 ms a busy loop thread keeps it that long each time
    (a convoy: at 60 viewers the send thread spent most of its time waiting for the GIL). The shorter
    interval costs every thread more switches, so it lasts only while WebRTC viewers are being served."""

    _lock = threading.Lock()
    _running = 0
    _saved = 0.0

    @classmethod
    def enter(cls) -> None:
        with cls._lock:
            cls._running += 1
            if cls._running == 1 and sys.getswitchinterval() > SWITCH_INTERVAL_S:
                cls._saved = sys.getswitchinterval()
                sys.setswitchinterval(SWITCH_INTERVAL_S)
                log.info("webrtc send threads: gil switch interval set seconds=%s", SWITCH_INTERVAL_S)

    @classmethod
    def leave(cls) -> None:
        with cls._lock:
            cls._running -= 1
            if cls._running == 0 and cls._saved:
                sys.setswitchinterval(cls._saved)
                log.info("webrtc send threads: gil switch interval restored seconds=%s", cls._saved)
                cls._saved = 0.0


class SendThread(Generic[T]):
    """A daemon thread running ``send(frame)`` for queued frames and queued commands, in order."""

    def __init__(self, name: str, send: Callable[[T], None], max_frames: int) -> None:
        self.name = name
        self._send = send
        self.max_frames = max_frames
        self._items: deque[tuple[int, object]] = deque()   # (FRAME, ORDERED or ANYTIME, frame or command)
        self._frames = 0
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        _SwitchInterval.enter()
        self._thread.start()

    def put(self, frame: T) -> bool:
        """Queue a frame; False (not queued) when ``max_frames`` are waiting or the thread is stopping."""
        with self._cond:
            if self._stopping or self._frames >= self.max_frames:
                return False
            self._items.append((FRAME, frame))
            self._frames += 1
            self._cond.notify()
        return True

    def command(self, command: Command, anytime: bool = False) -> bool:
        """Run ``command`` on the thread after what is queued (``anytime``: or sooner, between two steps of a
        frame's sending, for what the frames' order does not matter to, e.g. a NACK); False when stopping."""
        with self._cond:
            if self._stopping:
                return False
            self._items.append((ANYTIME if anytime else ORDERED, command))
            self._cond.notify()
        return True

    def take_frames(self) -> list[T]:
        """The frames at the head of the queue, up to the first ordered command (called by ``send`` on the thread:
        frames that arrived while it ran join it; an ordered command keeps its place after them). ``anytime``
        commands met on the way are run here."""
        taken: list[T] = []
        commands: list[Command] = []
        with self._cond:
            while self._items and self._items[0][0] != ORDERED:
                kind, item = self._items.popleft()
                if kind == FRAME:
                    taken.append(item)  # type: ignore[arg-type]
                else:
                    commands.append(item)  # type: ignore[arg-type]
            self._frames -= len(taken)
        for command in commands:
            self._run_command(command)
        return taken

    @property
    def queued_frames(self) -> int:
        return self._frames

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued before this call has run (tests, shutdown); never from the loop while
        viewers are served: it blocks."""
        done = threading.Event()
        if not self.command(done.set):
            return not self._thread.is_alive()
        return done.wait(timeout)

    def stop(self) -> None:
        """End after what is queued; queueing more is refused from now on."""
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def join(self, timeout: float) -> bool:
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _next(self) -> tuple[int, object] | None:
        with self._cond:
            while not self._items:
                if self._stopping:
                    return None
                self._cond.wait()
            kind, item = self._items.popleft()
            if kind == FRAME:
                self._frames -= 1
            return kind, item

    def _run(self) -> None:
        free_thread()  # not on the actors' CPU, whoever started it (kiln/control_cpu.py)
        try:
            self._serve()
        finally:
            _SwitchInterval.leave()

    def _serve(self) -> None:
        while (entry := self._next()) is not None:
            kind, item = entry
            if kind != FRAME:
                self._run_command(item)  # type: ignore[arg-type]
                continue
            try:
                self._send(item)  # type: ignore[arg-type]
            except Exception:  # a bug: logged with its traceback, and the other viewers go on being served
                log.exception("webrtc send thread error name=%s", self.name)

    def _run_command(self, command: Command) -> None:
        try:
            command()
        except Exception:  # a bug in one command must not end the thread
            log.exception("webrtc send thread command error name=%s", self.name)
