"""A pull (RTSP through FFmpeg, OVT) whose application is deleted while the source's name is being looked up (the
name server does not answer). ``getaddrinfo`` cannot be interrupted: the delete must not leave the app's actors
joining the pull's thread, nor the pull connect once the answer comes. Kiln runs in a mount namespace whose
/etc/resolv.conf names a DNS server this test holds (the fixtures of test_push_stop_while_connecting.py).

A DELETE of the stream itself then answers 404 at once, as OME's: the stream does not exist until its pull connects
(the POST that made it is still waiting)."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.test_push_stop_while_connecting import (  # noqa: F401
    Destination,
    held_dns,
    kiln_behind,
    os_thread_names,
)
from tests.peers.dns_server import HeldDns

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/dyn/apps/live"


def threads(k: KilnProcess) -> list[str]:
    """The names of Kiln's threads now, as the OS has them (15 bytes: "kiln-pull-pulle")."""
    return os_thread_names(k)


def pulling(k: KilnProcess) -> bool:
    return any(name.startswith("kiln-pull-pull") for name in threads(k))


def actors(k: KilnProcess) -> list[str]:
    return [t for t in threads(k) if re.fullmatch(r"(App|Streams|Tasks)Actor-\d+", t)]


@pytest.mark.parametrize("scheme", ["rtsp", "ovt"])
def test_an_app_deleted_during_its_pulls_name_lookup_waits_for_nothing_and_never_connects(
        kiln_behind: KilnProcess, held_dns: HeldDns, scheme: str) -> None:  # noqa: F811
    k = kiln_behind
    destination = Destination()
    before = actors(k)  # the configured app's
    assert k.api.post("/v1/vhosts", json=[{"name": "dyn", "host": {"names": ["dyn.example"]}}]).status_code == 200
    r = k.api.post("/v1/vhosts/dyn/apps", json=[{"name": "live", "type": "live",
                                                 "providers": {"ovt": {}, "rtspPull": {}}}])
    assert r.status_code == 200, r.text
    k.wait_for(lambda: len(actors(k)) == len(before) + 3, what="the new app's actors")
    answers: list[Any] = []

    def create() -> None:
        r = k.api.post(f"{APP}/streams", json={"name": "pulled",
                                               "urls": [f"{scheme}://pull.slow.test:{destination.port}/app/s"]},
                       timeout=60)
        answers.append(r.status_code)

    creator = threading.Thread(target=create)
    creator.start()
    try:
        held_dns.wait_asked("pull.slow.test")
        assert pulling(k)
        began = time.monotonic()
        assert k.api.delete(APP).status_code == 200
        assert time.monotonic() - began < 2
        # the app's actors end at once: none sits joining the pull's thread, still in getaddrinfo
        k.wait_for(lambda: actors(k) == before, timeout=5, what="the deleted app's actors to end")
        k.wait_for_log("pull closed during its name lookup where=dyn/live stream=pulled")
        assert pulling(k)
        # the name server answers: the pull's thread ends without connecting to the source
        held_dns.answer("127.0.0.1")
        k.wait_for_log("pull ended after its name lookup where=dyn/live stream=pulled connected=false")
        k.wait_for(lambda: not pulling(k), what="the pull's thread to end")
        creator.join(30)
        assert answers == [502]
        assert destination.accepted == 0
    finally:
        held_dns.answer("127.0.0.1")
        creator.join(30)
        destination.close()
