"""The web console in a real browser (Debian's Chromium through playwright-core), against a real Kiln with an
ffmpeg publisher: log in, see the live stream with its tracks and a playing LL-HLS preview, start a push from
the page (it appears in ``:pushes`` and arrives back in Kiln as a new stream), watch the journal timeline
update, stop the push from the page; ``kiln status`` shows the same server. Screenshots go to the test's tmp
dir; every assertion is on what the page or the API says, not on pixels."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.kiln_process import TOKEN, KilnProcess
from tests.peers.browser import browser_available
from tests.peers.console_browser import ConsoleBrowser
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.fixtures import require

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[ConsoleBrowser]:
    require("chromium", browser_available)
    b = ConsoleBrowser(tmp_path / "chromium").start()
    try:
        yield b
    finally:
        b.close()


def rows_text(browser: ConsoleBrowser, table: str) -> list[str]:
    return browser.eval(f"return [...document.querySelectorAll('#{table} tbody tr')].map(r => r.innerText)")


def test_console_login_preview_push_and_timeline(kiln: KilnProcess, browser: ConsoleBrowser, test_flv: Path,
                                                 peer_dir: Path, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/cam1", test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: kiln.api.get(f"{APP}/streams").json().get("response") == ["cam1"], timeout=30,
                      what="stream cam1")
        console = f"http://127.0.0.1:{kiln.ports.api}/console/"

        # a wrong token is refused with the API's words; the right one opens the console
        browser.do("goto", url=console)
        browser.wait_for("return !document.getElementById('login-view').hidden")
        browser.do("screenshot", path=str(shots / "1-login.png"))
        browser.do("fill", selector="#token", value="kiln:wrong")
        browser.do("click", selector="#login-form button[type=submit]")
        refused = browser.wait_for("const t = document.getElementById('login-error').textContent; "
                                   "return t.includes('refused') && t")
        assert "Invalid credential" in refused
        browser.do("fill", selector="#token", value=TOKEN)
        browser.do("click", selector="#login-form button[type=submit]")
        browser.wait_for("return document.querySelector('#streams-table tr[data-stream=\"default/app/cam1\"]')",
                         timeout=30)
        assert browser.eval("return sessionStorage.getItem('kiln.accessToken')") == TOKEN
        overview = browser.do("text", selector="#overview-list")
        assert f"api=127.0.0.1:{kiln.ports.api}" in overview and f"llhls=127.0.0.1:{kiln.ports.llhls}" in overview
        assert browser.eval("return document.querySelector('#catalog-list li[data-app=\"default/app\"]')"
                            ".innerText") == "app (1 live)"
        (stream_row,) = rows_text(browser, "streams-table")
        assert "video H264 320x180" in stream_row and "audio AAC 48000 Hz" in stream_row
        assert "rtmp" in stream_row.lower()

        # the LL-HLS preview plays in the page (hls.js from the console's own files)
        browser.do("click", selector="tr[data-stream='default/app/cam1'] button.preview")
        browser.wait_for("const v = document.getElementById('preview-video'); return v.currentTime > 1.5 && "
                         "document.getElementById('preview-state').textContent.startsWith('playing')", timeout=45)
        assert browser.eval("return typeof window.Hls") == "function"
        browser.do("screenshot", path=str(shots / "2-preview.png"))

        # the charts have samples and show the input bitrate
        browser.wait_for("const c = document.querySelector('tr[data-stream=\"default/app/cam1\"] "
                         "svg[data-field=bitrate]'); return c && Number(c.dataset.samples) >= 3", timeout=30)
        caption = browser.eval("return document.querySelector('tr[data-stream=\"default/app/cam1\"] "
                               "figcaption').textContent")
        assert caption.startswith("in ") and "bit/s" in caption and not caption.startswith("in 0 bit/s"), caption

        # start a push from the page: to Kiln's own RTMP port, so it arrives as stream cam1copy
        browser.do("select", selector="#push-form select[name=app]", value="default/app")
        for name, value in (("id", "console-push"), ("stream", "cam1"),
                            ("url", f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app"), ("streamKey", "cam1copy")):
            browser.do("fill", selector=f"#push-form [name={name}]", value=value)
        browser.do("click", selector="#push-form button[type=submit]")
        browser.wait_for("return document.getElementById('notice').textContent === 'Start push console-push: done'")
        pushes = kiln.api.get(f"{APP}:pushes").json()["response"]
        assert [(p["id"], p["stream"]["name"], p["protocol"]) for p in pushes] == [("console-push", "cam1", "rtmp")]
        browser.wait_for("const r = document.querySelector('tr[data-task=\"push:default/app/console-push\"]'); "
                         "return r && r.dataset.state === 'pushing'", timeout=30)
        browser.wait_for("return document.querySelector('tr[data-stream=\"default/app/cam1copy\"]')", timeout=30)

        # the journal timeline got the push's records without a reload; the search narrows it
        browser.wait_for("return [...document.querySelectorAll('#timeline li')].some(li => "
                         "li.dataset.type === 'PushCreated' && li.innerText.includes('push:default/app/console-push'))")
        assert "cam1copy" not in browser.eval(
            "return [...document.querySelectorAll('#timeline li[data-type=PushCreated]')].map(l => l.innerText)"
            ".join(' ')"), "the stream key is masked in the timeline"
        browser.do("fill", selector="#journal-filters [name=search]", value="console-push")
        shown = browser.eval("return [...document.querySelectorAll('#timeline li')].map(li => li.innerText)")
        assert shown and all("console-push" in s for s in shown)
        browser.do("screenshot", path=str(shots / "3-push-and-timeline.png"))

        # kiln status sees the same server (another process, through the API)
        status = subprocess.run([sys.executable, "-m", "kiln.cli", "status", "-d", str(kiln.data_dir), "-c",
                                 str(kiln.config_path)], capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        assert "default/app/cam1 " in status.stdout and "default/app/cam1copy" in status.stdout
        assert "push   default/app/console-push  pushing  cam1 -> rtmp://127.0.0.1" in status.stdout
        assert "cam1copy" not in status.stdout.split("push   ")[1], "the stream key is masked"
        assert f"api=127.0.0.1:{kiln.ports.api}" in status.stdout
        as_json = subprocess.run([sys.executable, "-m", "kiln.cli", "status", "-d", str(kiln.data_dir), "-c",
                                  str(kiln.config_path), "--json"], capture_output=True, text=True, timeout=60)
        found = json.loads(as_json.stdout)
        assert "cam1copy" not in json.dumps(found["pushes"]) and found["pushes"][0]["streamKey"] == "***"
        assert sorted(s["name"] for s in found["streams"]) == ["cam1", "cam1copy"]
        assert [p["id"] for p in found["pushes"]] == ["console-push"] and found["status"]["journal"]["lastSeq"] > 0

        # stop it from the page: gone from :pushes and from the table; the timeline shows the removal
        browser.do("click", selector="tr[data-task='push:default/app/console-push'] button.stop")
        browser.wait_for("return document.getElementById('notice').textContent === 'Stop push console-push: done'")
        assert kiln.api.get(f"{APP}:pushes").json()["response"] == []
        browser.wait_for("return !document.querySelector('tr[data-task=\"push:default/app/console-push\"]')")
        browser.wait_for("return document.querySelector('#timeline li[data-type=PushRemoved]')")
        browser.do("screenshot", path=str(shots / "4-push-stopped.png"))

        # the timeline's server-side filters: an event type, then an entity prefix
        browser.do("fill", selector="#journal-filters [name=search]", value="")
        browser.do("fill", selector="#journal-filters [name=type]", value="PushRemoved")
        browser.wait_for("const li = [...document.querySelectorAll('#timeline li')]; "
                         "return li.length === 1 && li[0].dataset.type === 'PushRemoved'")
        browser.do("fill", selector="#journal-filters [name=type]", value="")
        browser.do("fill", selector="#journal-filters [name=entity]", value="stream:default/app/cam1copy")
        browser.wait_for("const li = [...document.querySelectorAll('#timeline li')]; return li.length >= 2 && "
                         "li.every(l => l.innerText.includes('stream:default/app/cam1copy')) && "
                         "li.some(l => l.dataset.type === 'StreamEnded')")
        browser.do("fill", selector="#journal-filters [name=entity]", value="")

        # a recording and an HLS dump, started and stopped from the page
        browser.do("select", selector="#record-form select[name=app]", value="default/app")
        browser.do("fill", selector="#record-form [name=id]", value="console-rec")
        browser.do("fill", selector="#record-form [name=stream]", value="cam1")
        browser.do("click", selector="#record-form button[type=submit]")
        browser.wait_for("return document.getElementById('notice').textContent === "
                         "'Start recording console-rec: done'")
        assert [r["id"] for r in kiln.api.get(f"{APP}:records").json()["response"]] == ["console-rec"]
        browser.wait_for("const r = document.querySelector('tr[data-task=\"record:default/app/console-rec\"]'); "
                         "return r && r.dataset.state === 'recording' && !r.innerText.includes('0 B')", timeout=30)
        dump_dir = tmp_path / "dump"
        browser.do("select", selector="#dump-form select[name=app]", value="default/app")
        for name, value in (("stream", "cam1"), ("id", "console-dump"), ("outputPath", str(dump_dir))):
            browser.do("fill", selector=f"#dump-form [name={name}]", value=value)
        browser.do("click", selector="#dump-form button[type=submit]")
        browser.wait_for("return document.getElementById('notice').textContent === 'Start dump console-dump: done'")
        browser.wait_for("const r = document.querySelector('tr[data-task=\"dump:default/app/console-dump\"]'); "
                         "return r && r.dataset.state === 'dumping'")
        kiln.wait_for(lambda: any(dump_dir.glob("**/*.m3u8")), timeout=30, what="dumped playlist")
        browser.do("screenshot", path=str(shots / "5-record-and-dump.png"))
        browser.do("click", selector="tr[data-task='record:default/app/console-rec'] button.stop")
        browser.wait_for("return document.getElementById('notice').textContent === 'Stop recording console-rec: done'")
        browser.do("click", selector="tr[data-task='dump:default/app/console-dump'] button.stop")
        browser.wait_for("return document.getElementById('notice').textContent === 'Stop dump console-dump: done'")
        browser.wait_for("const r = document.querySelector('tr[data-task=\"dump:default/app/console-dump\"]'); "
                         "return r && r.dataset.state === 'stopped' && !r.querySelector('button.stop')")
        assert kiln.api.get(f"{APP}:records").json()["response"] == []
        files = [p for p in (kiln.workdir / "records").rglob("*default_app_cam1_*") if p.suffix in (".ts", ".mp4")]
        assert files and all(p.stat().st_size > 0 for p in files), "the recording is on disk"
        errors = [m for m in browser.page_log() if m.startswith("pageerror")]
        assert not errors, errors
    finally:
        pub.stop()
    # a cleanly stopped server leaves no server file; kiln status then says nothing runs
    assert kiln.stop() == 0 and not (kiln.data_dir / "server.json").exists()
    gone = subprocess.run([sys.executable, "-m", "kiln.cli", "status", "-d", str(kiln.data_dir)], capture_output=True,
                          text=True, timeout=60)
    assert gone.returncode == 1 and "no Kiln is running with data directory" in gone.stderr
    assert sorted(p.name for p in shots.iterdir()) == ["1-login.png", "2-preview.png", "3-push-and-timeline.png",
                                                       "4-push-stopped.png", "5-record-and-dump.png"]
