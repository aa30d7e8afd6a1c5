"""A real browser the test steers step by step: Debian's headless Chromium through npm playwright-core
(console_driver.js), one JSON command per line. Used by the web console's e2e test, which asserts on the
REST API between clicks, something a one-shot script (browser.js) cannot do.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from tests.peers.browser import CHROMIUM, NODE, NODE_MODULES, _kill_processes_using

log = logging.getLogger(__name__)

DRIVER_JS = Path(__file__).with_name("console_driver.js")


class BrowserStepFailed(AssertionError):
    """A step the page could not do (element missing, condition not met in time): the test fails with it."""


class ConsoleBrowser:
    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.user_data_dir = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=self.workdir))
        self.stderr_path = self.workdir / "console-driver.stderr.log"
        self._answers: queue.Queue[str | None] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60) -> ConsoleBrowser:
        options = {"user_data_dir": str(self.user_data_dir), "chromium": CHROMIUM}
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen(
                [NODE, str(DRIVER_JS), json.dumps(options)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr, text=True, bufsize=1, start_new_session=True, cwd=self.workdir,
                env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "NODE_PATH": str(NODE_MODULES)})
        threading.Thread(target=self._read, name="console-driver-stdout", daemon=True).start()
        ready = self._answer(timeout)
        if not ready.get("ok"):
            raise RuntimeError(f"chromium did not start: {ready}")
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def _answer(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise BrowserStepFailed(f"the browser did not answer within {timeout:.0f}s") from None
        if line is None:
            tail = self.stderr_path.read_text(errors="replace")[-2000:]
            raise BrowserStepFailed(f"the browser driver exited; stderr:\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def do(self, op: str, timeout: float = 30, **args: Any) -> Any:
        """Run one step; its value, or BrowserStepFailed naming the step."""
        assert self.proc is not None and self.proc.stdin is not None, "start() first"
        self.proc.stdin.write(json.dumps({"op": op, "timeout_ms": int(timeout * 1000), **args}) + "\n")
        self.proc.stdin.flush()
        answer = self._answer(timeout + 30)
        if not answer.get("ok"):
            raise BrowserStepFailed(f"{op} {args}: {answer.get('error')}\npage log:\n" + "\n".join(self.page_log()))
        return answer.get("value")

    def page_log(self) -> list[str]:
        """The page's console messages and errors so far (best effort: empty when the driver is gone)."""
        if self.proc is None or self.proc.poll() is not None or self.proc.stdin is None:
            return []
        try:
            self.proc.stdin.write(json.dumps({"op": "log"}) + "\n")
            self.proc.stdin.flush()
            answer = self._answer(10)
        except (BrokenPipeError, BrowserStepFailed):
            return []
        value = answer.get("value")
        return [str(v) for v in value] if isinstance(value, list) else []

    def wait_for(self, expr: str, arg: Any = None, timeout: float = 30) -> Any:
        """Wait until the page function body ``expr`` (with ``arg``) returns something truthy; that value."""
        return self.do("wait_for", timeout=timeout, expr=expr, arg=arg)

    def eval(self, expr: str, arg: Any = None) -> Any:
        return self.do("eval", expr=expr, arg=arg)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.do("close", timeout=10)
            except (BrowserStepFailed, BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        _kill_processes_using(f"--user-data-dir={self.user_data_dir}")
        shutil.rmtree(self.user_data_dir, ignore_errors=True)
