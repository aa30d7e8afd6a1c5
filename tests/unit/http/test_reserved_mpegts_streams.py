"""GET app shows reserved MPEG-TS streams as OME does (rest-spec §6.3): ``providers.mpegts.streams`` is a
flat array of ``{"name", "port"}`` (OME registers the StreamMap's ``Stream`` list with no JSON name of
its own), not ome.yml's ``{"stream": [...]}`` (scripts/SCHEMA_EXCEPTIONS.md, ``mpegts-streams-array``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.unit.http.conftest import AUTH, SERVER_XML, start_service

MPEGTS = ("<Providers><RTMP/><MPEGTS><StreamMap><Stream><Name>stream_${Port}</Name><Port>4000/udp</Port></Stream>"
          "<Stream><Name>cam</Name><Port>4001</Port></Stream></StreamMap></MPEGTS></Providers>")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    service = start_service(tmp_path / "data", SERVER_XML.replace("<Providers><RTMP/></Providers>", MPEGTS))
    try:
        with TestClient(service.build_api().starlette, base_url="http://kiln.test") as c:
            yield c
    finally:
        service.close()


def test_reserved_streams_are_a_flat_array_with_ports(client: TestClient) -> None:
    app = client.get("/v1/vhosts/default/apps/app", headers=AUTH).json()["response"]
    assert app["providers"]["mpegts"] == {"streams": [{"name": "stream_4000", "port": "4000/udp"},
                                                      {"name": "cam", "port": "4001/udp"}]}
    assert app["providers"]["rtmp"] == {}
