"""The README's curl walk-through, executed as written: only hosts, ports and paths are swapped for
the local peers (Kiln on free ports, nginx-rtmp as the push target, a gst RTSP camera), and every
step's answer is checked as a user reading it would.

The block is taken from README.md between the ``walkthrough:begin``/``walkthrough:end`` markers;
each command runs in one bash session (variables carry over) with its output kept apart.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess, Ports
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.ports import free_udp_port
from tests.peers.rtsp_server import RtspSource

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_XML = Path(__file__).resolve().parents[2] / "kiln" / "config" / "default.xml"
BEGIN = re.compile(r"<!-- walkthrough:begin\b.*?-->\s*```bash\n")
END = re.compile(r"```\s*<!-- walkthrough:end -->")
SCRIPT_TIMEOUT_S = 180


@dataclass(frozen=True)
class Step:
    command: str
    output: str
    exit_code: int

    def answer(self) -> Any:
        """The JSON the command printed (curl -s prints the body only)."""
        try:
            return json.loads(self.output)
        except json.JSONDecodeError:
            raise AssertionError(f"{self.command!r} printed no JSON: {self.output!r}") from None


def walkthrough_block(readme: str) -> str:
    begin, end = BEGIN.search(readme), END.search(readme)
    assert begin and end and begin.end() < end.start(), "README.md lost its walkthrough markers"
    return readme[begin.end():end.start()]


def split_commands(block: str) -> list[str]:
    """Top-level commands, a backslash-continued command kept whole; blank and comment lines dropped."""
    commands: list[str] = []
    current: list[str] = []
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current.append(line)
        if not line.endswith("\\"):
            commands.append("\n".join(current))
            current = []
    assert not current, "the walkthrough ends inside a continued command"
    return commands


def localise(block: str, swaps: dict[str, str]) -> str:
    for readme_text, local in swaps.items():
        assert readme_text in block, f"the README walk-through no longer mentions {readme_text!r}"
        block = block.replace(readme_text, local)
    return block


def script_of(commands: list[str], out_dir: Path) -> str:
    """One bash script; each command's output and exit code go to ``out_dir/<n>.out|.rc``."""
    parts = ["set -u"]
    for n, command in enumerate(commands):
        parts.append(f"{{\n{command}\n}} >'{out_dir}/{n}.out' 2>&1 </dev/null; echo $? >'{out_dir}/{n}.rc'")
    return "\n".join(parts) + "\n"


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def readme_kiln(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KilnProcess]:
    """Kiln as `make run` starts it: the embedded default config (its ports moved through the
    ``KILN_*_PORT`` variables it reads) and a token of the generated form (``kiln:<hex>``) in
    ``data/access_token``, written first so the fixture's client knows it; Kiln reuses the file."""
    ports, workdir = Ports(), tmp_path / "kiln"
    for name, port in (("API", ports.api), ("RTMP", ports.rtmp), ("SRT", ports.srt), ("MPEGTS", ports.mpegts),
                       ("OVT", ports.ovt), ("LLHLS", ports.llhls)):
        monkeypatch.setenv(f"KILN_{name}_PORT", str(port))
    monkeypatch.setenv("KILN_SRT_PLAYBACK_PORT", str(free_udp_port()))
    monkeypatch.setenv("KILN_ICE_CANDIDATE", f"*:{free_udp_port()}/udp")  # WebRTC media, 10000-10004 by default
    token = "kiln:" + secrets.token_hex(16)
    (workdir / "data").mkdir(parents=True)
    (workdir / "data" / "access_token").write_text(token + "\n")
    proc = KilnProcess(workdir, DEFAULT_XML.read_text(), ports)
    proc.api.headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
    try:
        yield proc.start()
    finally:
        proc.close()


def test_the_readme_walkthrough_runs_as_written(readme_kiln: KilnProcess, nginx_rtmp: NginxRtmp,
                                                rtsp_source: RtspSource, tmp_path: Path) -> None:
    kiln, ports = readme_kiln, readme_kiln.ports
    rec_dir = tmp_path / "rec"
    block = localise(walkthrough_block(README.read_text()), {
        "http://127.0.0.1:8081": f"http://127.0.0.1:{ports.api}",
        "rtmp://127.0.0.1:1935": f"rtmp://127.0.0.1:{ports.rtmp}",
        "http://127.0.0.1:3333": f"http://127.0.0.1:{ports.llhls}",
        "srt://127.0.0.1:9999": f"srt://127.0.0.1:{ports.srt}",
        "rtmp://example.com/live": f"rtmp://127.0.0.1:{nginx_rtmp.port}/live",
        "/tmp/rec/": f"{rec_dir}/",
        "rtsp://10.0.0.7/stream1": rtsp_source.url,
        ".venv/bin/kiln": f"{sys.executable} -m kiln.cli",
    })
    commands = split_commands(block)
    out_dir = tmp_path / "steps"
    out_dir.mkdir()
    shell = subprocess.Popen(["bash", "-c", script_of(commands, out_dir)], cwd=kiln.workdir,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        assert shell.wait(SCRIPT_TIMEOUT_S) == 0
        steps = [Step(c, (out_dir / f"{n}.out").read_text(errors="replace"), int((out_dir / f"{n}.rc").read_text()))
                 for n, c in enumerate(commands)]
        check_steps(steps, kiln, nginx_rtmp, rec_dir)
    finally:  # the publishers the walk-through started in the background, and anything left of it
        try:
            os.killpg(shell.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        shell.wait(10)


def check_steps(steps: list[Step], kiln: KilnProcess, nginx: NginxRtmp, rec_dir: Path) -> None:
    failed = [s for s in steps if s.exit_code != 0]
    assert not failed, "\n".join(f"{s.command}\n  exit {s.exit_code}: {s.output[-800:]}" for s in failed)

    def step(fragment: str, nth: int = 0) -> Step:
        found = [s for s in steps if fragment in s.command + "\n"]
        assert len(found) > nth, f"no step {fragment!r} in the walk-through"
        return found[nth]

    def ok(fragment: str, status: int = 200, nth: int = 0) -> Any:
        answer = step(fragment, nth).answer()
        assert answer["statusCode"] == status, (fragment, answer)
        return answer.get("response")

    assert step("$API/vhosts ").answer() == {"message": "OK", "response": ["default"], "statusCode": 200}
    assert ok("$API/vhosts/default/apps/app\n")["name"] == "app"
    assert ok("/apps/app/streams ") == ["cam1"]
    info = ok("/streams/cam1 ")
    video = next(t["video"] for t in info["input"]["tracks"] if t["type"] == "Video")
    assert (info["name"], video["codec"], video["width"], video["height"]) == ("cam1", "H264", 640, 360)
    assert int(ok("$API/stats/current/")["totalBytesIn"]) > 0
    assert "Video: h264" in step("ffprobe ").output and "Audio: aac" in step("ffprobe ").output

    assert ok(":startPush")["id"] == "yt"
    nginx.wait_publishing("KEY")
    assert [(p["id"], p["protocol"]) for p in ok(":pushes")] == [("yt", "rtmp")]
    assert ok(":startRecord")["id"] == "r1"
    ok(":sendEvent")
    ok(":stopRecord")
    wait_for(lambda: [p for p in rec_dir.glob("r1_*.mp4") if p.stat().st_size > 0], "the recording in /tmp/rec")

    assert step('"name":"door"').answer() == {"message": "Created", "statusCode": 201}
    ok("-X DELETE $API/vhosts/default/apps/app/streams/door")

    created = step("-X POST $API/vhosts -d").answer()
    assert [(v["statusCode"], v["response"]["name"]) for v in created] == [(200, "tv")]
    assert "vhost shadowed vhost=tv shadowed_by=default host_names=tv.example.com" in kiln.log_tail(400)
    created = step("-X POST $API/vhosts/tv/apps").answer()
    assert [(a["statusCode"], a["response"]["name"]) for a in created] == [(200, "live")]
    assert ok("$API/vhosts/tv/apps/live/streams") == ["news"]

    tail = step("journal tail").output.splitlines()
    # the last 20 events: the push still checkpoints its totals (PushProgress) every 2 s
    assert len(tail) == 20 and any("push:default/app/yt" in line for line in tail)
    assert "PushStateChanged" in step("journal show").output
    assert step("journal stats").output.strip()
    assert step("journal verify").output.startswith("OK")
