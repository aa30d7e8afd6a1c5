"""A Kiln control plane on a temporary data dir, driven through Starlette's in-process client."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from kiln.config import load_server_xml_text
from kiln.service import KilnService

TOKEN = "ome-access-token"
AUTH = {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()}

SERVER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>KilnTest</Name>
  <Type>origin</Type>
  <IP>127.0.0.1</IP>
  <Bind>
    <Managers><API><Port>0</Port></API></Managers>
  </Bind>
  <Managers>
    <API>
      <AccessToken>ome-access-token</AccessToken>
      <CrossDomains><Url>*.kiln.test</Url></CrossDomains>
    </API>
  </Managers>
  <VirtualHosts>
    <VirtualHost>
      <Name>default</Name>
      <Host><Names><Name>*</Name></Names></Host>
      <Applications>
        <Application>
          <Name>app</Name>
          <Type>live</Type>
          <OutputProfiles>
            <OutputProfile>
              <Name>bypass</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
                <Audio><Name>bypass_audio</Name><Bypass>true</Bypass></Audio>
              </Encodes>
            </OutputProfile>
          </OutputProfiles>
          <Providers><RTMP/></Providers>
          <Publishers><LLHLS/><Push/><FILE/></Publishers>
        </Application>
      </Applications>
    </VirtualHost>
  </VirtualHosts>
</Server>
"""


def start_service(data_dir: Path, xml: str = SERVER_XML) -> KilnService:
    service = KilnService(load_server_xml_text(xml, data_dir), data_dir, fsync=False)
    service.open()
    return service


class Api:
    """Small helper around TestClient that always authenticates."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> Any:
        hdrs = {**AUTH, **(headers or {})}
        if raw is not None:
            return self.client.request(method, path, content=raw, headers=hdrs)
        if body is not None:
            return self.client.request(method, path, json=body, headers=hdrs)
        return self.client.request(method, path, headers=hdrs)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[KilnService]:
    svc = start_service(tmp_path / "data")
    yield svc
    svc.close()


@pytest.fixture
def api(service: KilnService) -> Iterator[Api]:
    app = service.build_api()
    with TestClient(app.starlette, base_url="http://kiln.test") as client:
        yield Api(client)


@pytest.fixture
def anon(service: KilnService) -> Iterator[TestClient]:
    app = service.build_api()
    with TestClient(app.starlette, base_url="http://kiln.test") as client:
        yield client
