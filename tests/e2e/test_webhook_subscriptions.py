"""Webhook subscriptions on a running Kiln, the receiver in its own process: one declared in Server.xml
(from the first record) and one created through the API. The receiver goes down for a while and comes
back; every record arrives, signed, and nothing is lost across a restart of Kiln.

Duplicates: at-least-once allows a record twice only when a POST reached the receiver but its answer
did not reach Kiln, or after a crash (records after the last checkpoint). Here the receiver is stopped
while idle and Kiln stops cleanly (a last checkpoint), so this test expects none: exactly once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.webhook_server import WebhookServer

pytestmark = pytest.mark.e2e

CFG_SECRET = "cfg-secret-1"
API_SECRET = "api-secret-2"


def journal_json(k: KilnProcess) -> dict[int, dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir), "--json"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return {r["seq"]: r for r in map(json.loads, out.splitlines())}


def received(hooks: WebhookServer, subscription: str, secret: str) -> list[dict[str, Any]]:
    """Every event POSTed for ``subscription``, in arrival order; each POST's signature checked."""
    events = []
    for request in hooks.requests():
        body = json.loads(request["body"])
        if body.get("subscription") != subscription:
            continue
        digest = hmac.new(secret.encode(), request["body"].encode(), hashlib.sha1).digest()
        assert request["signature"] == base64.urlsafe_b64encode(digest).decode().rstrip("="), request
        assert request["content_type"] == "application/json"
        events += body["events"]
    return events


def sent_to(journal: dict[int, dict[str, Any]], subscription: str, from_seq: int) -> list[int]:
    """The records a subscription without a filter is sent: all but checkpoints and its own records."""
    return [seq for seq, r in sorted(journal.items()) if seq >= from_seq and r["type"] != "SubscriptionDelivered"
            and r["entity"] != f"subscription:{subscription}"]


def settled(k: KilnProcess, ident: str) -> Callable[[], Any]:
    def check() -> Any:
        view = k.api.get(f"/v1/subscriptions/{ident}").json()["response"]
        delivery = view["delivery"]
        return view if delivery["state"] == "delivering" and delivery["behind"] == 0 else None
    return check


def make_vhosts(k: KilnProcess, *names: str) -> None:
    r = k.api.post("/v1/vhosts", json=[{"name": n, "host": {"names": [f"{n}.test"]}} for n in names])
    assert r.status_code == 200, r.text


def test_webhooks_survive_a_receiver_outage_and_a_restart(tmp_path: Path,
                                                          kiln_factory: Callable[..., KilnProcess]) -> None:
    hooks = WebhookServer(tmp_path / "hooks").start()
    try:
        ports = Ports()
        xml = server_xml(ports, tmp_path / "records")
        head, tail = xml.rsplit("</Managers>", 1)
        xml = head + f"""<Subscriptions><Subscription><Id>cfg</Id><Url>http://127.0.0.1:{hooks.port}/cfg</Url>
            <SecretKey>{CFG_SECRET}</SecretKey><From>1</From></Subscription></Subscriptions></Managers>""" + tail
        k = kiln_factory(xml=xml, ports=ports, workdir=tmp_path / "kiln")

        r = k.api.post("/v1/subscriptions", json={"id": "api1", "url": f"http://127.0.0.1:{hooks.port}/api",
                                                  "secretKey": API_SECRET})
        assert r.status_code == 200, r.text
        created = r.json()["response"]
        assert created["secretKey"] == "***" and created["isConfig"] is False and created["signed"] is True
        api_from = created["from"]
        r = k.api.post("/v1/subscriptions", json={"id": "api1", "url": "http://127.0.0.1:1/"})
        assert r.status_code == 409
        assert k.api.delete("/v1/subscriptions/cfg").status_code == 403
        assert k.api.post("/v1/subscriptions", json={"id": "x", "url": "ftp://h/"}).status_code == 400

        make_vhosts(k, "w1", "w2")
        k.wait_for(settled(k, "api1"), 30, "api1 delivered")
        k.wait_for(settled(k, "cfg"), 30, "cfg delivered")

        hooks.stop()                                   # the receiver is down ...
        make_vhosts(k, "w3")
        assert k.api.post("/v1/vhosts/w3/apps", json=[{"name": "live", "type": "live"}]).status_code == 200
        failing = k.wait_for(lambda: (lambda d: d if d["state"] == "retrying" and d["failures"] >= 2 else None)(
            k.api.get("/v1/subscriptions/api1").json()["response"]["delivery"]), 30, "api1 retrying")
        assert failing["lastError"] and failing["nextRetryTime"] and failing["behind"] > 0
        hooks.start()                                  # ... and comes back on its port
        k.wait_for(settled(k, "api1"), 40, "api1 caught up")
        k.wait_for(settled(k, "cfg"), 40, "cfg caught up")

        k.stop()                                       # a clean restart: the subscriptions and cursors stay
        k.start()
        make_vhosts(k, "w4")
        k.wait_for(settled(k, "api1"), 30, "api1 after restart")
        k.wait_for(settled(k, "cfg"), 30, "cfg after restart")
        listed = {s["id"]: s for s in k.api.get("/v1/subscriptions").json()["response"]}
        assert set(listed) == {"api1", "cfg"} and listed["cfg"]["isConfig"] is True

        journal = journal_json(k)
        states = [r["payload"]["state"] for r in journal.values() if r["type"] == "SubscriptionStateChanged"
                  and r["entity"] == "subscription:api1"]
        assert states[:2] == ["retrying", "delivering"]
        for ident, secret, start in (("api1", API_SECRET, api_from), ("cfg", CFG_SECRET, 1)):
            events = received(hooks, ident, secret)
            seqs = [e["seq"] for e in events]
            counts = Counter(seqs)
            assert [s for s, n in counts.items() if n > 1] == [], f"{ident} duplicates"
            assert seqs == sorted(seqs), f"{ident} out of order"
            assert seqs == sent_to(journal, ident, start), ident
            for e in events:
                assert e == journal[e["seq"]]           # the journal's own JSON of the record
        assert k.api.delete("/v1/subscriptions/api1").status_code == 200
        assert k.api.get("/v1/subscriptions/api1").status_code == 404
    finally:
        hooks.stop()


def test_after_kill9_delivery_resumes_from_the_last_checkpoint(tmp_path: Path, kiln: KilnProcess) -> None:
    """At-least-once across a crash: every record arrives; the only repeats are records after the last
    journaled checkpoint (at most ``CHECKPOINT_S`` of deliveries), and each repeat arrives twice at most."""
    hooks = WebhookServer(tmp_path / "hooks").start()
    try:
        r = kiln.api.post("/v1/subscriptions", json={"id": "crash", "url": f"http://127.0.0.1:{hooks.port}/c",
                                                     "secretKey": API_SECRET, "from": 1})
        assert r.status_code == 200, r.text
        make_vhosts(kiln, "c1", "c2")
        kiln.wait_for(settled(kiln, "crash"), 30, "delivered before the crash")
        make_vhosts(kiln, "c3")
        kiln.wait_for(lambda: any(e["type"] == "VhostCreated" and e["payload"]["name"] == "c3"
                                  for e in received(hooks, "crash", API_SECRET)), 30, "c3 delivered")
        kiln.kill9()                                  # before (or after) the next checkpoint: both are fine
        kiln.start()
        make_vhosts(kiln, "c4")
        kiln.wait_for(settled(kiln, "crash"), 30, "delivered after the restart")

        journal = journal_json(kiln)
        restart = max(seq for seq, rec in journal.items() if rec["type"] == "ServerStarted")
        checkpoints = [rec["payload"]["cursor"] for seq, rec in journal.items()
                       if rec["type"] == "SubscriptionDelivered" and seq < restart
                       and rec["entity"] == "subscription:crash"]
        last_checkpoint = max(checkpoints, default=0)
        seqs = [e["seq"] for e in received(hooks, "crash", API_SECRET)]
        assert sorted(set(seqs)) == sent_to(journal, "crash", 1)
        repeated = {seq: n for seq, n in Counter(seqs).items() if n > 1}
        assert all(seq > last_checkpoint and n == 2 for seq, n in repeated.items()), (last_checkpoint, repeated)
    finally:
        hooks.stop()
