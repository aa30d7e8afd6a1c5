"""Server.xml for OVT clusters: Kiln origins and edges whose app has ``<OVT/>`` as provider and publisher."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.kiln_process import Ports, server_xml

# the origin's profile: the bypass output plus a playlist, so the describe carries one
PLAYLIST_PROFILE = """
            <OutputProfile>
              <Name>bypass</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
                <Audio><Name>bypass_audio</Name><Bypass>true</Bypass></Audio>
              </Encodes>
              <Playlist><Name>default</Name><FileName>master</FileName>
                <Rendition><Name>src</Name><Video>bypass_video</Video><Audio>bypass_audio</Audio></Rendition>
              </Playlist>
            </OutputProfile>"""


def cluster_xml(ports: Ports, root: Path, *, vhost_extra: str = "") -> str:
    """``server_xml`` with OVT enabled in the app (provider and publisher) and ``vhost_extra``
    (Origins, OriginMapStore) inside the vhost."""
    xml = server_xml(ports, root, profiles=PLAYLIST_PROFILE)
    xml = xml.replace("<Providers><RTMP/>", "<Providers><OVT/><RTMP/>", 1)
    xml = xml.replace("<Publishers>\n            <LLHLS>", "<Publishers><OVT/>\n            <LLHLS>", 1)
    if vhost_extra:
        xml = xml.replace("<Applications>", vhost_extra + "\n      <Applications>", 1)
    return xml
