"""``kiln journal`` never says OK about nothing, and never prints a secret unless asked (issue 20, items 3-4)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiln.events import registered_types
from kiln.events.catalog import VhostCreated
from kiln.events.streams import PullDefined, StreamStarted
from kiln.events.tasks import PushCreated, PushSpec, PushStateChanged
from kiln.journal import Journal, NewRecord
from kiln.journal.cli import ENTITY_FORMS, run

ROOT = Path(__file__).resolve().parents[3]
KEY = "live_8f3kq9Zx"
PASSPHRASE = "correct-horse-battery"
SIGNATURE = "dGhlLXNpZ25hdHVyZQ"
WEBHOOK_SECRET = "whsec-1234567890"
CAMERA_PASSWORD = "hunter2cam"
SECRETS = (KEY, PASSPHRASE, SIGNATURE, WEBHOOK_SECRET, CAMERA_PASSWORD)


def _spec(id: str, protocol: str, url: str, key: str) -> PushSpec:
    return PushSpec("default", "app", id, "src", [], [], protocol, url, key)


def secret_journal(data_dir: Path) -> None:
    """A journal as a user's would hold it: real events carrying every kind of secret."""
    events = [
        VhostCreated("tv", {"name": "tv", "host": {"names": ["tv.example.com"]},
                            "signedPolicy": {"policyQueryKeyName": "policy", "signatureQueryKeyName": "signature",
                                             "secretKey": "signing-key-abc"},
                            "admissionWebhooks": {"controlServerUrl": "http://hooks.local/admit",
                                                  "secretKey": WEBHOOK_SECRET}}, 1.0),
        PushCreated.of(_spec("yt", "rtmp", "rtmp://a.rtmp.example.com/live2", KEY), 2.0),
        PushCreated.of(_spec("srt1", "srt", f"srt://relay.example.com:9000?passphrase={PASSPHRASE}&latency=200",
                             ""), 3.0),
        PushStateChanged("default", "app", "yt", "error",
                         f"no stream key in rtmp://a.rtmp.example.com/live2/{KEY} (refused)"),
        PullDefined("default", "app", "cam", [f"rtsp://admin:{CAMERA_PASSWORD}@10.0.0.7/stream1"], {}, True, 4.0),
        StreamStarted("default", "app", "signed", "i1", "Rtmp",
                      f"rtmp://host/app/signed?policy=eyJ1cmxfZXhwaXJlIjoxfQ&signature={SIGNATURE}", 5.0),
    ]
    j = Journal.open(data_dir, fsync=False)
    j.append([NewRecord(e.entity, e.TYPE, e.VERSION, e.payload()) for e in events]).result(5)
    j.close()


def call(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return run(list(argv), out), out.getvalue()


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """The command as a user types it: ``kiln journal …`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "kiln.cli", "journal", *argv], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)


@pytest.mark.parametrize("command", ["show", "tail", "stats", "verify"])
def test_a_data_dir_without_a_journal_is_an_error_naming_the_path(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "nonexistent"
    done = cli(command, "-d", str(missing))
    assert done.returncode == 2 and done.stdout == ""
    assert str(missing) in done.stderr and "no journal" in done.stderr and "OK" not in done.stderr
    done = cli(command, "-d", str(tmp_path))  # exists, but is not a data dir
    assert done.returncode == 2 and str(tmp_path / "journal") in done.stderr
    (tmp_path / "journal").mkdir()
    code, text = call(command, "-d", str(tmp_path))
    assert code == 2 and text == ""


def test_verify_of_a_real_journal_still_says_ok(tmp_path: Path) -> None:
    secret_journal(tmp_path)
    done = cli("verify", "-d", str(tmp_path))
    assert done.returncode == 0 and done.stdout.startswith("OK: 1 segments, 6 records")


@pytest.mark.parametrize("command", ["show", "tail"])
def test_an_unknown_type_lists_every_known_type(tmp_path: Path, command: str) -> None:
    secret_journal(tmp_path)
    done = cli(command, "-d", str(tmp_path), "--type", "NoSuchType")
    assert done.returncode == 2 and done.stdout == ""
    assert "unknown event type 'NoSuchType'" in done.stderr
    assert all(name in done.stderr for name in registered_types())
    done = cli(command, "-d", str(tmp_path), "--type", "PushCreatd")
    assert done.returncode == 2 and "did you mean PushCreated" in done.stderr


def test_a_type_the_journal_holds_is_known_even_if_this_kiln_is_older(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, fsync=False)
    j.append([NewRecord("stream:default/app/s", "StreamFromTheFuture", 1, {"name": "s"})]).result(5)
    j.close()
    code, text = call("show", "-d", str(tmp_path), "--type", "StreamFromTheFuture")
    assert code == 0 and "StreamFromTheFuture" in text


@pytest.mark.parametrize("command", ["show", "tail"])
def test_an_unknown_entity_kind_says_how_entities_are_spelled(tmp_path: Path, command: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    secret_journal(tmp_path)
    code, text = call(command, "-d", str(tmp_path), "--entity", "camera:default/app/x")
    err = capsys.readouterr().err
    assert code == 2 and text == ""
    assert "unknown entity 'camera:default/app/x'" in err and "push:<vhost>/<app>/<id>" in err
    assert all(form in err for form in ENTITY_FORMS.values())


def test_an_entity_no_record_has_is_reported_not_silent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret_journal(tmp_path)
    code, text = call("show", "-d", str(tmp_path), "--entity", "push:default/app/nope")
    err = capsys.readouterr().err
    assert code == 1 and text == ""
    assert "no records for entity 'push:default/app/nope'" in err and "stream:<vhost>/<app>/<stream>" in err
    assert "entities of that kind: push:default/app/srt1, push:default/app/yt" in err
    code, text = call("show", "-d", str(tmp_path), "--entity", "push:")  # prefixes of a kind still work
    assert code == 0 and text.count("\n") == 3
    code, text = call("show", "-d", str(tmp_path), "--entity", "pus")
    assert code == 0 and text.count("\n") == 3


@pytest.mark.parametrize("command", [["show"], ["tail", "-n", "100"], ["show", "--json"], ["tail", "--json"]])
def test_show_and_tail_mask_every_secret(tmp_path: Path, command: list[str]) -> None:
    secret_journal(tmp_path)
    done = cli(*command, "-d", str(tmp_path))
    assert done.returncode == 0 and done.stdout.count("\n") == 6
    leaked = [s for s in (*SECRETS, "signing-key-abc") if s in done.stdout]
    assert leaked == []
    # what is not secret is still there to read
    for visible in ("rtmp://a.rtmp.example.com/live2", "srt://relay.example.com:9000?passphrase=***&latency=200",
                    "rtsp://admin:***@10.0.0.7/stream1", "policy=***", "http://hooks.local/admit",
                    "tv.example.com", "no stream key in rtmp://a.rtmp.example.com/live2/*** (refused)"):
        assert visible in done.stdout


def test_json_keeps_the_payload_shape_with_secrets_masked(tmp_path: Path) -> None:
    secret_journal(tmp_path)
    code, text = call("show", "-d", str(tmp_path), "--type", "PushCreated", "--json")
    payloads = [json.loads(line)["payload"] for line in text.splitlines()]
    assert code == 0 and [p["stream_key"] for p in payloads] == ["***", ""]
    assert payloads[0]["url"] == "rtmp://a.rtmp.example.com/live2"


def test_a_secret_learnt_from_an_unprinted_record_is_still_masked(tmp_path: Path) -> None:
    secret_journal(tmp_path)
    code, text = call("tail", "-d", str(tmp_path), "-n", "1", "--type", "PushStateChanged")
    assert code == 0 and KEY not in text and "live2/***" in text


@pytest.mark.parametrize("command", [["show"], ["tail", "-n", "100"]])
def test_reveal_prints_what_the_journal_stores(tmp_path: Path, command: list[str]) -> None:
    secret_journal(tmp_path)
    code, text = call(*command, "-d", str(tmp_path), "--reveal", "--json")
    assert code == 0 and all(s in text for s in SECRETS)
    payload = json.loads(text.splitlines()[1])["payload"]
    assert payload["stream_key"] == KEY
