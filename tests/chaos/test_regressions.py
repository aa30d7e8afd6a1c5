"""What crash chaos found, each pinned down by a deterministic test."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.rtsp_server import RtspSource

pytestmark = pytest.mark.e2e

STREAMS = "/v1/vhosts/default/apps/app/streams"


def test_a_deleted_pull_stays_deleted_after_kill9(tmp_path: Path, rtsp_source: RtspSource) -> None:
    """DELETE answered 200 before the pull's definition was removed from the journal (that waited for
    the worker to wind down), so a crash right after it brought the persistent pull back."""
    ports = Ports()
    (tmp_path / "kiln").mkdir()
    kiln = KilnProcess(tmp_path / "kiln", server_xml(ports, tmp_path / "records"), ports).start()
    try:
        for round_ in range(3):
            r = kiln.api.post(STREAMS, json={"name": f"door{round_}", "urls": [rtsp_source.url],
                                             "properties": {"persistent": True}})
            assert r.status_code == 201, r.text
            assert kiln.api.delete(f"{STREAMS}/door{round_}").status_code == 200
            kiln.kill9()
            kiln.start()
        kept = kiln.api.post(STREAMS, json={"name": "kept", "urls": [rtsp_source.url],
                                            "properties": {"persistent": True}})
        assert kept.status_code == 201
        kiln.kill9()
        kiln.start()
        # the pull that was not deleted comes back; by then the deleted ones would have too
        kiln.wait_for(lambda: "kept" in kiln.api.get(STREAMS).json()["response"], timeout=30, what="kept pull")
        time.sleep(2)  # a margin for a slower reconnect of a wrongly resumed pull (the assertion is absence)
        assert kiln.api.get(STREAMS).json()["response"] == ["kept"]
    finally:
        kiln.close()
