"""Run ``kiln serve`` as a real subprocess with its own Server.xml, ports and data dir."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.peers.ports import free_tcp_port, free_udp_port

TOKEN = "kiln-e2e-token"

APP_XML = """
        <Application>
          <Name>{name}</Name>
          <Type>live</Type>
          <OutputProfiles>{profiles}</OutputProfiles>
          <Providers><RTMP/><SRT/><RTSPPull/><MPEGTS><StreamMap><Stream><Name>stream_${{Port}}</Name><Port>{mpegts}</Port></Stream></StreamMap></MPEGTS></Providers>
          <Publishers>
            <LLHLS><ChunkDuration>0.5</ChunkDuration><SegmentDuration>2</SegmentDuration><SegmentCount>5</SegmentCount>
              <CrossDomains><Url>*</Url></CrossDomains></LLHLS>
            <Push/><FILE><RootPath>{root}</RootPath></FILE><Thumbnail><CrossDomains><Url>*</Url></CrossDomains></Thumbnail>
          </Publishers>
        </Application>"""

BYPASS_PROFILE = """
            <OutputProfile>
              <Name>bypass</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
                <Audio><Name>bypass_audio</Name><Bypass>true</Bypass></Audio>
              </Encodes>
            </OutputProfile>"""


@dataclass
class Ports:
    api: int = field(default_factory=free_tcp_port)
    rtmp: int = field(default_factory=free_tcp_port)
    srt: int = field(default_factory=free_udp_port)
    llhls: int = field(default_factory=free_tcp_port)
    mpegts: int = field(default_factory=free_udp_port)
    thumbnail: int = field(default_factory=free_tcp_port)
    ovt: int = field(default_factory=free_tcp_port)


def server_xml(ports: Ports, root: Path, *, profiles: str = BYPASS_PROFILE, extra_apps: str = "") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>KilnE2E</Name>
  <Type>origin</Type>
  <IP>127.0.0.1</IP>
  <Bind>
    <Managers><API><Port>{ports.api}</Port></API></Managers>
    <Providers>
      <RTMP><Port>{ports.rtmp}</Port></RTMP>
      <SRT><Port>{ports.srt}</Port></SRT>
      <MPEGTS><Port>{ports.mpegts}/udp</Port></MPEGTS>
    </Providers>
    <Publishers>
      <LLHLS><Port>{ports.llhls}</Port></LLHLS>
      <Thumbnail><Port>{ports.thumbnail}</Port></Thumbnail>
      <OVT><Port>{ports.ovt}</Port></OVT>
    </Publishers>
  </Bind>
  <Managers><API><AccessToken>{TOKEN}</AccessToken></API></Managers>
  <VirtualHosts>
    <VirtualHost>
      <Name>default</Name>
      <Host><Names><Name>*</Name></Names></Host>
      <Applications>{APP_XML.format(name="app", profiles=profiles, root=root, mpegts=ports.mpegts)}{extra_apps}
      </Applications>
    </VirtualHost>
  </VirtualHosts>
</Server>
"""


def basic_auth(token: str) -> str:
    return "Basic " + base64.b64encode(token.encode()).decode()


class KilnProcess:
    """A running ``kiln serve``; ``api`` is an authenticated httpx client on its API port (with the
    token the Server.xml sets, or, when it sets none, the one Kiln generates in the data dir)."""

    def __init__(self, workdir: Path, xml: str, ports: Ports) -> None:
        self.workdir = workdir
        self.ports = ports
        self.data_dir = workdir / "data"
        self.config_path = workdir / "Server.xml"
        self.config_path.write_text(xml)
        self.log_path = workdir / "kiln.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.launcher: list[str] = []  # a command that runs kiln (e.g. in a mount namespace of its own)
        self.entry: list[str] = ["-m", "kiln.cli"]  # what the interpreter runs (the soak: bench/_traced_kiln.py)
        self.env: dict[str, str] = {}  # added to this process's environment (the soak: MALLOC_ARENA_MAX)
        self.generated_token = "<AccessToken>" not in xml
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{ports.api}", headers={"Authorization": basic_auth(TOKEN)},
                                timeout=30)

    def start(self, timeout: float = 30.0) -> KilnProcess:
        self._starts = getattr(self, "_starts", 0) + 1
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [*self.launcher, sys.executable, *self.entry, "serve", "-c", str(self.config_path),
             "-d", str(self.data_dir), "--log-level", "debug"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kiln exited with {self.proc.returncode}:\n{self.log_tail()}")
            token_file = self.data_dir / "access_token"
            if self.generated_token and token_file.exists() and token_file.read_text().strip():
                self.api.headers["Authorization"] = basic_auth(token_file.read_text().strip())
            try:
                if self.api.get("/v1/version", timeout=1).status_code == 200 and self.rtmp_ready() \
                        and self._ready_logged():
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"kiln did not become ready:\n{self.log_tail()}")

    def _ready_logged(self) -> bool:
        """'kiln ready' is logged after every listener (SRT, UDP too) is open, once per start."""
        try:
            return self.log_path.read_text(errors="replace").count("kiln ready") >= self._starts
        except OSError:
            return False

    def rtmp_ready(self) -> bool:
        import socket

        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.ports.rtmp)) == 0

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)

    def wait_for(self, predicate: Any, timeout: float = 20.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {what} (last={last!r})\n{self.log_tail()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, *lines: str, timeout: float = 30.0) -> str:
        """The log once it holds every one of ``lines``. Kiln logs an effect on its own threads and loop, often
        just after the answer, exit or API change a test saw: reading the log at once races that line."""
        def holds_all() -> str | None:
            text = self.log_text()
            return text if all(line in text for line in lines) else None
        return str(self.wait_for(holds_all, timeout, f"log lines {list(lines)!r}"))

    def close(self) -> None:
        self.stop()
        self.api.close()
