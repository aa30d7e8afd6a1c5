"""Where the API's commands spend their time, in three phases, summed since start.

An HTTP command (``kiln.actors.base.ask``) goes to an actor, which decides and journals its events
(``actor``: from the ask to the actor's answer, its mailbox wait included), then waits for those events
to be durable (``journal``: the commit under way, then its own write, fsync and projections), then for
the event loop to resume the waiting request (``loop``). A command that waits mostly in ``journal`` is
limited by the disk; one that waits in ``actor`` or ``loop`` by the CPU (bench/api.py prints the split).

Process-wide, as the commands' path is: ``ask`` has no service at hand, and one process serves one API.
Written on the event loop's thread only (when a command's answer resumes), read at scrape time.
"""

from __future__ import annotations

from dataclasses import dataclass

PHASES = ("actor", "journal", "loop")


@dataclass
class CommandTimings:
    commands: int = 0
    actor_seconds: float = 0.0
    journal_seconds: float = 0.0
    loop_seconds: float = 0.0

    def record(self, actor: float, journal: float, loop: float) -> None:
        self.commands += 1
        self.actor_seconds += actor
        self.journal_seconds += journal
        self.loop_seconds += loop

    def phases(self) -> list[tuple[str, float]]:
        return [("actor", self.actor_seconds), ("journal", self.journal_seconds), ("loop", self.loop_seconds)]


COMMANDS = CommandTimings()
