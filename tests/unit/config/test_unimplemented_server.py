"""Server-level elements Kiln accepts and does not run are warnings naming them (``kiln config check`` and
startup), and only when set to something Kiln does not do: the same element absent, or set as Kiln behaves, says
nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kiln.config.check import run_check

BASE = """<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>x</Name><Type>origin</Type><IP>*</IP>{server}
  <Bind>
    <Managers><API><Port>18081</Port>{api}</API></Managers>
    <Providers><RTMP><Port>11935</Port>{rtmp}</RTMP>{providers}</Providers>
    <Publishers><WebRTC><Signalling><Port>13333</Port></Signalling>
      <IceCandidates><IceCandidate>*:10000/udp</IceCandidate>{ice}</IceCandidates></WebRTC></Publishers>
  </Bind>
  <VirtualHosts/>
</Server>
"""

SLOTS = ("server", "api", "rtmp", "providers", "ice")

# (slot, element as written, the warning it must give, the same element set as Kiln behaves: no warning)
CASES = [
    ("server", "<IP>::</IP>", "Server.IP (::): not implemented by Kiln, only the first IP (*) is bound", ""),
    ("server", "<PrivacyProtection>true</PrivacyProtection>",
     "Server.PrivacyProtection: not implemented by Kiln, client addresses are kept whole in logs, the journal "
     "and the API", "<PrivacyProtection>false</PrivacyProtection>"),
    ("server", "<Modules><LLHLS><Enable>false</Enable></LLHLS></Modules>",
     "Server.Modules.LLHLS.Enable: not implemented by Kiln, false: LL-HLS is still served with parts and blocking "
     "reloads", "<Modules><LLHLS><Enable>true</Enable></LLHLS></Modules>"),
    ("server", "<Alert><Url>http://127.0.0.1:9/alert</Url><SecretKey>k</SecretKey></Alert>",
     "Server.Alert: not implemented by Kiln, no alert is ever sent", ""),
    ("server", "<Defaults><CrossDomains><Url>*</Url></CrossDomains></Defaults>",
     "Server.Defaults.CrossDomains: not implemented by Kiln, CORS headers come from each app's publisher "
     "CrossDomains only", ""),
    ("server", "<Managers><API><Storage><Enable>true</Enable><Path>/tmp/api.xml</Path></Storage></API></Managers>",
     "Server.Managers.API.Storage: not implemented by Kiln, API-made vhosts and apps are kept in Kiln's journal "
     "in the data dir, nothing is written to Storage.Path",
     "<Managers><API><Storage><Enable>false</Enable></Storage></API></Managers>"),
    ("ice", "<EnableLinkLocalAddress>true</EnableLinkLocalAddress>",
     "Server.Bind.Publishers.WebRTC.IceCandidates.EnableLinkLocalAddress: not implemented by Kiln, link-local "
     "addresses are not added as ICE candidates (one address is advertised per session)",
     "<EnableLinkLocalAddress>false</EnableLinkLocalAddress>"),
    ("api", "<WorkerCount>4</WorkerCount>",
     "Server.Bind.Managers.API.WorkerCount (4): not implemented by Kiln, Kiln's event loop serves it "
     "(media work runs on Kiln's own threads)", ""),
    ("rtmp", "<WorkerCount>2</WorkerCount>",
     "Server.Bind.Providers.RTMP.WorkerCount (2): not implemented by Kiln, Kiln's event loop serves it "
     "(media work runs on Kiln's own threads)", ""),
    ("providers", "<WebRTC><IceCandidates><IceCandidate>*:10010/udp</IceCandidate></IceCandidates></WebRTC>",
     "Server.Bind.Providers.WebRTC.IceCandidates: not implemented by Kiln, WebRTC ingest shares "
     "Server.Bind.Publishers.WebRTC.IceCandidates (its ports, TcpRelay and TcpForce), which differ",
     "<WebRTC><IceCandidates><IceCandidate>*:10000/udp</IceCandidate></IceCandidates></WebRTC>"),
    ("providers", "<WebRTC><Signalling><Port>13333</Port><TLSPort>13334</TLSPort></Signalling></WebRTC>",
     "Server.Bind.Providers.WebRTC.Signalling.TLSPort (13334): not implemented by Kiln, WebRTC ingest over TLS "
     "is served only on Server.Bind.Publishers.WebRTC.Signalling.TLSPort",
     "<WebRTC><Signalling><Port>13333</Port></Signalling></WebRTC>"),
]


def _check(tmp_path: Path, slot: str, fragment: str) -> str:
    path = tmp_path / "Server.xml"
    path.write_text(BASE.format(**{s: fragment if s == slot else "" for s in SLOTS}))
    out = io.StringIO()
    assert run_check(str(path), out) == 0, out.getvalue()
    return out.getvalue()


@pytest.mark.parametrize(("slot", "fragment", "warning", "as_kiln_does"), CASES,
                         ids=[c[2].split(" ")[0] for c in CASES])
def test_the_element_is_named_when_set_and_silent_otherwise(tmp_path: Path, slot: str, fragment: str, warning: str,
                                                           as_kiln_does: str) -> None:
    assert f"  {warning}\n" in _check(tmp_path, slot, fragment)
    for other in {"", as_kiln_does}:
        text = _check(tmp_path, slot, other)
        assert "not implemented by Kiln" not in text, text


def test_dynamic_app_removal_is_described_with_its_timings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamicAppRemoval is run (OME's 60 s idle, 10 s checks, unless KILN_DYNAMIC_APP_*_S say otherwise); with no
    ``*`` application anywhere it has nothing to remove, and check says so."""
    enabled = "<Modules><DynamicAppRemoval><Enable>true</Enable></DynamicAppRemoval></Modules>"
    text = _check(tmp_path, "server", enabled)
    assert "dynamic app removal: on (no stream for 60 s: removed; checked every 10 s)\n" in text, text
    assert "  Modules.DynamicAppRemoval: no vhost has a '*' application, so there is nothing to remove\n" in text
    assert "not implemented by Kiln" not in text
    monkeypatch.setenv("KILN_DYNAMIC_APP_IDLE_S", "2.5")
    monkeypatch.setenv("KILN_DYNAMIC_APP_SWEEP_S", "nonsense")
    assert "dynamic app removal: on (no stream for 2.5 s: removed; checked every 10 s)\n" in _check(
        tmp_path, "server", enabled)
    assert "dynamic app removal" not in _check(tmp_path, "server", "")
