"""Crash chaos: drive mixed API commands at a real ``kiln serve`` and ``kill -9`` it at random points.

After every restart, everything acknowledged with a 2xx must be what the GETs show, and a command
whose answer the crash swallowed must have happened wholly or not at all. The journal must verify
after every kill (a torn tail is allowed: the next start cuts it) and at the end through the CLI.

Run bigger than CI does with ``make chaos`` (``python -m tests.chaos.runner --kills 100
--commands 5000``).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kiln.journal import verify
from tests.chaos.observe import ObserveError, Unresolved, Verdict, compare, observe
from tests.chaos.workload import DEFAULT_APP, PUBLISHED, Command, State, Workload
from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.media import test_flv
from tests.peers.process import Peer

log = logging.getLogger(__name__)

LOST_ANSWER = (httpx.TransportError,)
PULL_GRACE_S = 8.0


@dataclass
class Report:
    kills: int = 0
    kills_in_startup: int = 0
    sent: int = 0
    acknowledged: int = 0
    refused: int = 0
    unanswered: int = 0  # the crash took the answer: must have happened wholly or not at all
    unanswered_applied: int = 0
    lost: int = 0  # acknowledged, then missing after a restart: must stay 0
    half: int = 0  # unanswered and half applied: must stay 0
    pulls_retrying: int = 0  # checks that found a pull defined but its source not answering (observe.py)
    pulls_ended: int = 0  # acknowledged pulls Kiln ended itself because their source failed (observe.py)
    by_kind: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        kinds = " ".join(f"{k.replace(' ', '_')}={v}" for k, v in sorted(self.by_kind.items()))
        return [f"chaos kills_survived={self.kills} (during startup {self.kills_in_startup}) "
                f"commands_sent={self.sent} acknowledged={self.acknowledged} refused={self.refused} "
                f"unanswered={self.unanswered} (applied {self.unanswered_applied}) "
                f"commands_lost={self.lost} half_applied={self.half} pulls_seen_retrying={self.pulls_retrying} "
                f"pulls_ended_by_source={self.pulls_ended} "
                f"seconds={self.seconds:.1f}",
                f"chaos acknowledged by kind: {kinds}"]


def _ome_envelope(r: httpx.Response) -> bool:
    """A refusal is OME's ``{"message": ..., "statusCode": N}`` with N the HTTP status (one item
    lists hold one such object)."""
    try:
        body = r.json()
    except ValueError:
        return False
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    return isinstance(body, dict) and body.get("statusCode") == r.status_code and isinstance(body.get("message"), str)


class ChaosKiln(KilnProcess):
    """A KilnProcess that can also be killed while it is still starting (recovering)."""

    def kill_while_starting(self, delay: float) -> None:
        """Start, ``kill -9`` after ``delay`` seconds whatever it is doing, and wait for it to be gone."""
        done, old = threading.Event(), self.proc

        def start() -> None:
            try:
                self.start()
            except (RuntimeError, TimeoutError):
                pass
            finally:
                done.set()

        thread = threading.Thread(target=start, daemon=True)
        thread.start()
        time.sleep(delay)
        deadline = time.monotonic() + 10
        while self.proc is old and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.proc is not None and self.proc is not old, "kiln was not started"
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        done.wait(40)
        thread.join(5)
        # the next start() waits for one more "kiln ready" line than this one wrote (if it wrote none)
        self._starts = self.log_path.read_text(errors="replace").count("kiln ready")


class Republisher:
    """Keeps an ffmpeg RTMP publisher on default/app/cam, starting a new one whenever the last one died
    (every kill of Kiln ends it), so HLS dumps have a live LL-HLS stream to dump."""

    def __init__(self, url: str, log_dir: Path) -> None:
        self.url = url
        self.log_dir = log_dir
        self.media = test_flv(4)
        self.peer: Peer | None = None
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="chaos-republisher", daemon=True)

    def start(self) -> Republisher:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop_event.is_set():
            if self.peer is None or not self.peer.alive:
                if self.peer is not None:
                    self.peer.stop(grace=0.5)
                self.peer = publish_rtmp(self.url, self.media, loop=True, log_dir=self.log_dir)
            self.stop_event.wait(0.3)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)
        if self.peer is not None:
            self.peer.stop(grace=0.5)


class ChaosRun:
    def __init__(self, workdir: Path, pull_url: str, *, seed: int, out: Callable[[str], object] = log.info) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(seed)
        self.ports = Ports()
        self.kiln = ChaosKiln(workdir, server_xml(self.ports, workdir / "records"), self.ports)
        self.workload = Workload(self.rng, pull_url, str(workdir / "dumps"))
        self.state: State = {}
        self.unresolved: Unresolved = {}  # unanswered changes not seen yet (observe.compare)
        self.restart_seconds = 0.0
        self.started_at = time.time()  # wall time the running Kiln process was started (observe.retrying_pull)
        self.report = Report()
        self.out = out
        self.publisher = Republisher(f"rtmp://127.0.0.1:{self.ports.rtmp}/app/{PUBLISHED}", workdir / "peers")

    # -- one command -------------------------------------------------------------------------------
    def send(self, command: Command) -> bool:
        """Send one command; False when the answer was lost (Kiln died under it)."""
        self.report.sent += 1
        try:
            r = self.kiln.api.request(command.method, command.path, json=command.body, timeout=60)
        except LOST_ANSWER:
            self.report.unanswered += 1
            return False
        if 200 <= r.status_code < 300:
            self.report.acknowledged += 1
            self.report.by_kind[command.what] = self.report.by_kind.get(command.what, 0) + 1
            self.state = command.after
            for key in command.touched:  # an answer settles what an earlier unanswered command left in doubt
                self.unresolved.pop(key, None)
        else:
            self.report.refused += 1
            if not _ome_envelope(r):
                self.report.problems.append(f"{command.what} {command.path} answered {r.status_code} outside "
                                            f"OME's envelope: {r.text[:200]}")
        return True

    # -- checks ------------------------------------------------------------------------------------
    def check(self, doubt: Command | None, *, pulls_final: bool) -> None:
        """Compare GETs with what was acknowledged; wait (bounded) for pulls to reconnect and for the
        published stream's dumps, which only show while it is live."""
        now = time.monotonic()
        deadline = now + (25 if pulls_final else 3)
        # a pull whose create or delete lost its answer: absent may only mean "not reconnected yet", so
        # it is taken as absent only once it has had the time every pull takes to come back
        doubted_pulls = {k for k in doubt.touched if k[0] == "pull"} if doubt is not None else set()
        grace = now + PULL_GRACE_S if doubted_pulls else now
        verdict: Verdict | None = None
        while True:
            try:
                seen, cam_live, fates = observe(self.kiln.api, self.started_at)
            except (ObserveError, httpx.TransportError) as exc:
                self.report.problems.append(f"reading state back failed: {exc}")
                self.report.lost += 1
                return
            for key, fate in fates.items():  # Kiln ended it because its source failed, as OME does
                if fate.kind == "ended" and key in self.state:
                    self.state = {k: v for k, v in self.state.items() if k != key}
                    self.report.pulls_ended += 1
                    self.out(f"chaos after kill {self.report.kills}: pull {key[-1]} ended by Kiln ({fate.detail})")
            verdict = compare(self.state, seen, doubt, cam_live=cam_live, pulls_final=pulls_final,
                              unresolved=self.unresolved)
            settled = doubted_pulls <= set(seen) or time.monotonic() > grace
            if (not verdict.problems and settled) or time.monotonic() > max(deadline, grace):
                break
            time.sleep(0.2)
        retrying = sorted(key[-1] for key, fate in fates.items() if fate.kind == "retrying")
        if retrying:
            self.report.pulls_retrying += len(retrying)
            self.out(f"chaos after kill {self.report.kills}: pulls {retrying} defined and retrying "
                     f"(their RTSP source did not answer)")
        if verdict.problems:
            for problem in verdict.problems:
                self.out(f"chaos PROBLEM after kill {self.report.kills}: {problem}")
                self.report.problems.append(problem)
                if "half-exists" in problem:
                    self.report.half += 1
                else:
                    self.report.lost += 1
        if doubt is not None and verdict.adopted != self.state:
            self.report.unanswered_applied += 1
        self.state = verdict.adopted
        self.unresolved = verdict.unresolved

    def verify_journal(self) -> None:
        result = verify(self.kiln.data_dir)
        if not result.ok:
            self.report.problems.append(f"journal verify failed after kill {self.report.kills}: {result.problems}")

    # -- the run -----------------------------------------------------------------------------------
    def cycle(self, per_cycle: int) -> None:
        """Commands until a kill lands (armed after a random number of them, a random moment later)."""
        arm_at = self.rng.randint(1, max(1, 2 * per_cycle))
        timer: threading.Timer | None = None
        doubt: Command | None = None
        cam_live = False
        for index in range(10 * per_cycle + 100):
            if index == arm_at:
                timer = threading.Timer(self.rng.uniform(0, 0.03), self.kiln.kill9)
                timer.start()
            if index % 10 == 0:
                cam_live = self.cam_live()
            command = self.workload.next(self.state, cam_live=cam_live)
            if not self.send(command):
                doubt = command
                break
        if timer is None:  # never armed: kill now
            self.kiln.kill9()
        else:
            timer.join()
        self.report.kills += 1
        self.verify_journal()
        if self.rng.random() < 0.15:
            self.kiln.kill_while_starting(self.rng.uniform(0.2, 1.5))
            self.report.kills += 1
            self.report.kills_in_startup += 1
            self.verify_journal()
        restart = time.monotonic()
        self.started_at = time.time()
        self.kiln.start(timeout=60)
        self.restart_seconds += time.monotonic() - restart
        touched_pull = doubt is not None and any(k[0] == "pull" for k in doubt.touched)
        self.check(doubt, pulls_final=touched_pull or self.report.kills % 5 == 0)

    def cam_live(self) -> bool:
        try:
            r = self.kiln.api.get(f"/v1/vhosts/{DEFAULT_APP[0]}/apps/{DEFAULT_APP[1]}/streams/{PUBLISHED}", timeout=5)
        except httpx.TransportError:
            return False
        return r.status_code == 200 and bool(r.json()["response"]["outputs"])

    def run(self, kills: int, commands: int) -> Report:
        started = time.monotonic()
        self.started_at = time.time()
        self.kiln.start(timeout=60)
        self.publisher.start()
        try:
            per_cycle = max(1, commands // max(1, kills))
            while self.report.kills < kills or self.report.sent < commands:
                self.cycle(per_cycle)
                self.out(f"chaos kill {self.report.kills}: sent={self.report.sent} "
                         f"acknowledged={self.report.acknowledged} problems={len(self.report.problems)} "
                         f"elapsed={time.monotonic() - started:.1f}s restarts={self.restart_seconds:.1f}s")
            self.check(None, pulls_final=True)
            self.kiln.stop()
            self.cli_verify()
        finally:
            self.publisher.stop()
            self.kiln.close()
        self.report.seconds = time.monotonic() - started
        return self.report

    def cli_verify(self) -> None:
        """``kiln journal verify`` as a user runs it, on the data dir of the stopped server."""
        done = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "verify", "-d", str(self.kiln.data_dir)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            self.report.problems.append(f"kiln journal verify exited {done.returncode}: {done.stdout} {done.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--commands", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    from tests.peers.rtsp_server import RtspSource

    with tempfile.TemporaryDirectory(prefix="kiln-chaos-") as tmp:
        work = Path(tmp)
        source = RtspSource(work / "rtsp", max_seconds=24 * 3600).start()
        try:
            sys.stdout.write(f"chaos seed={seed} workdir={work}\n")
            report = ChaosRun(work / "kiln", source.url, seed=seed,
                              out=lambda line: sys.stdout.write(line + "\n")).run(args.kills, args.commands)
        finally:
            source.stop()
    for line in report.lines():
        sys.stdout.write(line + "\n")
    for problem in report.problems:
        sys.stdout.write(f"PROBLEM {problem}\n")
    return 0 if not report.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
