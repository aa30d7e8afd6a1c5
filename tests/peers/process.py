"""A peer program run in its own process group, with its output in files, stopped by PID.

Every fixture starts its programs through `Peer`, so teardown can always kill them (and their
children, e.g. chromium's helpers) even after a failed assertion. `stop_all()` is a last resort
used at session end and at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

_running: dict[int, Peer] = {}


@dataclass
class Peer:
    """One external program. Create with `Peer.spawn(...)` (or construct and call `.start()`)."""

    name: str
    argv: list[str]
    log_dir: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    stop_signal: int = signal.SIGTERM
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    stdout_path: Path = field(init=False)
    stderr_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_dir = Path(self.log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stem = self.name
        n = 1
        while (self.log_dir / f"{stem}.stderr.log").exists():
            n += 1
            stem = f"{self.name}-{n}"
        self.stdout_path = self.log_dir / f"{stem}.stdout.log"
        self.stderr_path = self.log_dir / f"{stem}.stderr.log"
        self.stderr_path.touch()

    @classmethod
    def spawn(
        cls,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> Peer:
        """Start `argv` now and return the running peer."""
        peer = cls(name, [str(a) for a in argv], Path(log_dir), env=env, cwd=cwd, stop_signal=stop_signal)
        return peer.start()

    def start(self) -> Peer:
        if self.popen is not None:
            raise RuntimeError(f"peer {self.name} already started")
        full_env = None if self.env is None else {**os.environ, **self.env}
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=full_env,
                cwd=self.cwd,
                start_new_session=True,
            )
        _running[self.popen.pid] = self
        log.info("peer started name=%s pid=%d argv=%s", self.name, self.popen.pid, " ".join(self.argv))
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"peer {self.name} not started")
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def wait(self, timeout: float) -> int:
        """Wait for the program to exit by itself; raise TimeoutError (with its stderr) if it doesn't."""
        if self.popen is None:
            raise RuntimeError(f"peer {self.name} not started")
        try:
            rc = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"{self.name} (pid {self.pid}) still running after {timeout:.1f}s; stderr tail:\n"
                f"{self.stderr_tail(30)}"
            ) from None
        self._forget()
        return rc

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, grace: float = 3.0) -> int | None:
        """Send `stop_signal` to the process group, SIGKILL it after `grace` seconds; return the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self._signal_group(self.stop_signal)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                log.warning("peer did not stop name=%s pid=%d grace=%.1f, killing", self.name, self.pid, grace)
                self._signal_group(signal.SIGKILL)
                self.popen.wait(5)
        # children that outlived the leader (the group id is the leader's pid)
        self._signal_group(signal.SIGKILL)
        self._forget()
        log.info("peer stopped name=%s pid=%d rc=%s", self.name, self.pid, self.popen.returncode)
        return self.popen.returncode

    def _forget(self) -> None:
        if self.popen is not None:
            _running.pop(self.popen.pid, None)

    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stderr_tail(self, n: int = 20) -> str:
        try:
            lines = self.stderr_text().splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def __enter__(self) -> Peer:
        if self.popen is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def running() -> list[Peer]:
    """Peers started in this process and not stopped yet."""
    return list(_running.values())


@atexit.register
def stop_all(grace: float = 1.0) -> None:
    """Stop every peer this process started and has not stopped (session end, interpreter exit)."""
    for peer in list(_running.values()):
        log.warning("peer left running name=%s pid=%d, stopping", peer.name, peer.pid)
        peer.stop(grace)


def run_checked(argv: Sequence[str | os.PathLike[str]], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a short command to completion in its own session; on failure raise with its stderr."""
    args = [str(a) for a in argv]
    with subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    ) as p:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            raise TimeoutError(f"{args[0]} timed out after {timeout:.1f}s: {' '.join(args)}\n{err[-2000:]}") from None
    if p.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {p.returncode}: {' '.join(args)}\n{err[-2000:]}")
    return subprocess.CompletedProcess(args, p.returncode, out, err)

