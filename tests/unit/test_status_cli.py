"""``kiln status`` without a server to ask: each case says why, exit 1, nothing on stdout. (With a running
server it is exercised by tests/e2e/test_console.py.)"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from kiln.running import SERVER_FILE
from kiln.status_cli import find_server, render, run


def status(data_dir: Path, config: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(Namespace(data_dir=str(data_dir), config=config, json=False), out, err)
    return code, out.getvalue(), err.getvalue()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_no_data_directory(tmp_path: Path) -> None:
    code, out, err = status(tmp_path / "nope")
    assert (code, out) == (1, "") and "no Kiln data directory at" in err


def test_a_data_directory_without_a_running_server(tmp_path: Path) -> None:
    code, out, err = status(tmp_path)
    assert (code, out) == (1, "")
    assert err == (f"kiln status: no Kiln is running with data directory {tmp_path.resolve()} (no {SERVER_FILE}; "
                   f"start one with 'kiln serve -d {tmp_path}')\n")


def test_a_server_file_left_by_a_killed_server(tmp_path: Path) -> None:
    pid = dead_pid()
    (tmp_path / SERVER_FILE).write_text(json.dumps({"pid": pid, "api": {"host": "127.0.0.1", "port": 1}}))
    code, _out, err = status(tmp_path)
    assert code == 1 and f"pid {pid}" in err and "has exited" in err


def test_a_garbled_server_file(tmp_path: Path) -> None:
    (tmp_path / SERVER_FILE).write_text("{not json")
    code, _out, err = status(tmp_path)
    assert code == 1 and "is not Kiln's server file" in err


def test_the_token_comes_from_the_data_dir_or_the_config(tmp_path: Path) -> None:
    (tmp_path / SERVER_FILE).write_text(json.dumps({"pid": os.getpid(), "api": {"host": "::", "port": 8081}}))
    with pytest.raises(Exception, match="no access token"):
        find_server(tmp_path, None)
    (tmp_path / "access_token").write_text("kiln:abc\n")
    target = find_server(tmp_path, None)
    assert (target.base_url, target.token) == ("http://[::1]:8081", "kiln:abc")


def test_render_masks_stream_keys_and_shows_errors() -> None:
    found = {"status": {"version": "1", "pid": 7, "uptimeSeconds": 3725, "startTime": "t", "dataDir": "/d",
                        "config": "c", "listeners": {"api": {"host": "127.0.0.1", "port": 8081}},
                        "journal": {"lastSeq": 42, "segments": 1, "bytes": 2048,
                                    "sinceSnapshot": {"snapshotSeq": 40, "events": 2, "bytes": 300}}},
             "vhosts": ["default"], "apps": ["default/app"],
             "streams": [{"vhost": "default", "app": "app", "name": "cam",
                          "detail": {"input": {"sourceType": "Rtmp", "tracks": [
                              {"type": "Video", "video": {"codec": "H264", "width": 320, "height": 180,
                                                          "framerate": 30.0}}]}},
                          "stats": {"totalBytesIn": 4096, "totalBytesOut": 0, "connections": {"llhls": 2}}}],
             "pushes": [{"vhost": "default", "app": "app", "id": "yt", "state": "error", "stream": {"name": "cam"},
                         "url": "rtmp://example.com/live", "streamKey": "KEY123", "totalsentBytes": 0,
                         "lastError": "connection refused"}],
             "records": []}
    out = io.StringIO()
    render(found, out)
    text = out.getvalue()
    assert "up 1h 2m 5s" in text
    assert ("journal    last seq 42, 1 segment, 2.0 KB; a restart replays 2 records, about 300 B "
            "(after snapshot seq 40)") in text
    assert "default/app/cam" in text and "h264 320x180 30fps" in text and "viewers 2" in text
    assert "rtmp://example.com/live/***" in text and "KEY123" not in text and "error: connection refused" in text


def test_render_says_when_a_failed_write_stopped_the_journal() -> None:
    failure = "the journal stopped after a failed write ([Errno 5] Input/output error); restart Kiln once the disk " \
              "is fixed"
    found = {"status": {"version": "1", "pid": 7, "uptimeSeconds": 5, "startTime": "t", "dataDir": "/d",
                        "config": "c", "listeners": {},
                        "journal": {"lastSeq": 50, "segments": 1, "bytes": 10, "failure": failure}},
             "vhosts": [], "apps": [], "streams": [], "pushes": [], "records": []}
    out = io.StringIO()
    render(found, out)
    assert f"journal    last seq 50, 1 segment, 10 B; STOPPED: {failure}" in out.getvalue().splitlines()


def test_render_shows_webhook_subscriptions_with_state_backlog_and_last_error() -> None:
    found = {"status": {"version": "1", "pid": 7, "uptimeSeconds": 5, "startTime": "t", "dataDir": "/d",
                        "config": "c", "listeners": {}, "journal": {"lastSeq": 50, "segments": 1, "bytes": 10}},
             "vhosts": [], "apps": [], "streams": [], "pushes": [], "records": [],
             "subscriptions": [
                 {"id": "audit", "url": "http://hooks.example/in", "delivery": {
                     "state": "retrying", "behind": 12, "delivered": 38, "lastError": "connection refused",
                     "nextRetryTime": "2026-12-06T09:10:00.000+0000"}},
                 {"id": "billing", "url": "https://u:***@pay.example/h", "delivery": {
                     "state": "delivering", "behind": 0, "delivered": 50}}]}
    out = io.StringIO()
    render(found, out)
    lines = out.getvalue().splitlines()
    assert "webhooks   2 subscriptions" in lines
    (audit,) = [line for line in lines if "audit" in line]
    assert audit == ("  hook   audit  retrying  -> http://hooks.example/in  behind 12  delivered 38  "
                     "error: connection refused  retry at 2026-12-06T09:10:00.000+0000")
    (billing,) = [line for line in lines if "billing" in line]
    assert "delivering" in billing and "behind 0" in billing and "error" not in billing


def test_render_without_subscriptions_says_none() -> None:
    found = {"status": {"listeners": {}, "journal": {}}, "vhosts": [], "apps": [], "streams": [], "pushes": [],
             "records": []}
    out = io.StringIO()
    render(found, out)
    assert out.getvalue().splitlines()[-1] == "webhooks   0 subscriptions"
