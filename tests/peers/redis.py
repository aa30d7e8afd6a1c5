"""A throwaway redis-server on a free loopback port, without persistence."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.ports import free_tcp_port, wait_tcp, wait_until
from tests.peers.process import Peer, run_checked

log = logging.getLogger(__name__)

REDIS_SERVER = "redis-server"
REDIS_CLI = "redis-cli"


@dataclass
class RedisServer:
    """redis-server bound to 127.0.0.1; `start()` returns once it answers PING."""

    workdir: Path
    port: int = 0
    peer: Peer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0, *, same_port: bool = False) -> RedisServer:
        """Start on a free port (or, with ``same_port``, again on the port it had: a Redis restart)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (same_port and self.port):
            self.port = free_tcp_port()
        argv = [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", str(self.workdir), "--protected-mode", "yes"]
        self.peer = Peer.spawn("redis-server", argv, self.workdir)
        wait_tcp("127.0.0.1", self.port, timeout, proc=self.peer)
        wait_until(lambda: self.cli("PING") == "PONG", timeout, "redis PING", proc=self.peer)
        log.info("redis ready port=%d", self.port)
        return self

    def cli(self, *args: str, timeout: float = 10.0) -> str:
        """Run `redis-cli -h 127.0.0.1 -p PORT args...`; return its stripped stdout."""
        argv = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), *args]
        return run_checked(argv, timeout).stdout.strip()

    def stop(self) -> None:
        if self.peer is not None:
            self.peer.stop()

    def __enter__(self) -> RedisServer:
        return self.start() if self.peer is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
