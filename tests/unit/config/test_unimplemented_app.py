"""Application elements (Server.xml, and the same JSON through the API) that Kiln accepts and does not run are
warnings naming them, only when they ask for what Kiln does not do: absent, or set as Kiln behaves, they say
nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kiln.config.check import run_check

BASE = """<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>x</Name><Type>origin</Type><IP>*</IP>
  <Bind><Managers><API><Port>18081</Port></API></Managers><Providers><RTMP><Port>11935</Port></RTMP></Providers>
    <Publishers><LLHLS><Port>13333</Port></LLHLS></Publishers></Bind>
  <VirtualHosts><VirtualHost><Name>default</Name><Host><Names><Name>*</Name></Names></Host>{vhost}
    <Applications><Application><Name>{name}</Name><Type>live</Type>{app}
      <OutputProfiles>{profiles}
        <OutputProfile><Name>p</Name><OutputStreamName>${{OriginStreamName}}</OutputStreamName>
          <Encodes><Video><Name>v</Name><Bypass>true</Bypass>{video}</Video>
            <Audio><Name>a</Name><Codec>aac</Codec><Bitrate>128000</Bitrate>{audio}</Audio></Encodes>
          <Playlist><Name>abr</Name><FileName>abr</FileName>{playlist}</Playlist>
        </OutputProfile>
      </OutputProfiles>
      <Providers><RTMP/>{providers}</Providers>
      <Publishers><LLHLS>{llhls}</LLHLS>{publishers}</Publishers>
    </Application></Applications>
  </VirtualHost></VirtualHosts>
</Server>
"""
SLOTS = ("vhost", "app", "profiles", "video", "audio", "playlist", "providers", "llhls", "publishers")
PREFIX = "vhost default app app: Application."

# (slot, element as written, the warning after PREFIX, the same element set as Kiln behaves: no warning)
CASES = [
    ("profiles", "<Decodes><OnlyKeyframes>true</OnlyKeyframes></Decodes>",
     "OutputProfiles.Decodes.OnlyKeyframes: not implemented by Kiln, decoding keyframes only: every frame is decoded",
     "<Decodes><OnlyKeyframes>false</OnlyKeyframes></Decodes>"),
    ("app", "<Decodes><OnlyKeyframes>true</OnlyKeyframes></Decodes>",
     "Decodes.OnlyKeyframes: not implemented by Kiln, decoding keyframes only: every frame is decoded",
     "<Decodes><ThreadCount>2</ThreadCount></Decodes>"),
    ("profiles", "<MediaOptions><Anything>1</Anything></MediaOptions>",
     "OutputProfiles.MediaOptions: not implemented by Kiln, output media options: input tracks are used as they "
     "arrive", ""),
    ("video", "<Modules>nv</Modules>",
     "OutputProfiles.OutputProfile.Encodes.Video.Modules: not implemented by Kiln, choosing the encoder module: Kiln "
     "encodes with FFmpeg's libx264, libx265, libvpx, aac, libopus and its image encoders", "<Modules></Modules>"),
    ("audio", "<Modules>fdkaac</Modules>",
     "OutputProfiles.OutputProfile.Encodes.Audio.Modules: not implemented by Kiln, choosing the encoder module: Kiln "
     "encodes with FFmpeg's libx264, libx265, libvpx, aac, libopus and its image encoders", ""),
    ("video", "<Lookahead>10</Lookahead>",
     "OutputProfiles.OutputProfile.Encodes.Video.Lookahead: not implemented by Kiln, encoder lookahead: x264's "
     "default is used", ""),
    ("playlist", "<RenditionTemplate><Name>${Height}p</Name><VideoTemplate><EncodingType>all</EncodingType>"
                 "</VideoTemplate><AudioTemplate><EncodingType>all</EncodingType></AudioTemplate></RenditionTemplate>",
     "OutputProfiles.OutputProfile.Playlist.RenditionTemplate: not implemented by Kiln, rendition templates: only a "
     "playlist's Rendition elements make renditions",
     "<Rendition><Name>r</Name><Video>v</Video><Audio>a</Audio></Rendition>"),
    ("providers", "<SRT><PassthroughOutputProfile>true</PassthroughOutputProfile></SRT>",
     "Providers.SRT.PassthroughOutputProfile: not implemented by Kiln, passthrough: the stream goes through the "
     "output profiles", "<SRT/>"),
    ("providers", "<MPEGTS><PassthroughOutputProfile>true</PassthroughOutputProfile></MPEGTS>",
     "Providers.MPEGTS.PassthroughOutputProfile: not implemented by Kiln, passthrough: the stream goes through the "
     "output profiles", "<MPEGTS/>"),
    ("providers", "<WebRTC><PassthroughOutputProfile>true</PassthroughOutputProfile></WebRTC>",
     "Providers.WebRTC.PassthroughOutputProfile: not implemented by Kiln, passthrough: the stream goes through the "
     "output profiles", "<WebRTC/>"),
    ("publishers", "<AppWorkerCount>1</AppWorkerCount>",
     "Publishers.AppWorkerCount: not implemented by Kiln, publisher worker threads: Kiln sizes its own", ""),
    ("publishers", "<StreamWorkerCount>8</StreamWorkerCount>",
     "Publishers.StreamWorkerCount: not implemented by Kiln, publisher worker threads: Kiln sizes its own", ""),
    ("publishers", "<DelayBufferTimeMs>2000</DelayBufferTimeMs>",
     "Publishers.DelayBufferTimeMs: not implemented by Kiln, delaying the publishers: streams are published without "
     "delay", "<DelayBufferTimeMs>0</DelayBufferTimeMs>"),
    ("publishers", "<WebRTC><Rtx>false</Rtx></WebRTC>",
     "Publishers.WebRTC.Rtx: not implemented by Kiln, false: RTX (RFC 4588) is still offered to viewers for NACKed "
     "packets", "<WebRTC><Rtx>true</Rtx></WebRTC>"),
    ("publishers", "<WebRTC><JitterBuffer>true</JitterBuffer></WebRTC>",
     "Publishers.WebRTC.JitterBuffer: not implemented by Kiln, the WebRTC jitter buffer: frames are sent as they "
     "arrive", "<WebRTC><JitterBuffer>false</JitterBuffer></WebRTC>"),
    ("publishers", "<WebRTC><PlayoutDelay><Min>100</Min><Max>500</Max></PlayoutDelay></WebRTC>",
     "Publishers.WebRTC.PlayoutDelay: not implemented by Kiln, the playout-delay RTP extension: players choose "
     "their own delay", "<WebRTC/>"),
    ("publishers", "<WebRTC><BandwidthEstimation>TransportCc</BandwidthEstimation></WebRTC>",
     "Publishers.WebRTC.BandwidthEstimation: not implemented by Kiln, other bandwidth estimation than REMB: viewers' "
     "REMB is read", "<WebRTC><BandwidthEstimation>REMB</BandwidthEstimation></WebRTC>"),
    ("llhls", "<CacheControl><SegmentMaxAge>3600</SegmentMaxAge></CacheControl>",
     "Publishers.LLHLS.CacheControl: not implemented by Kiln, Cache-Control settings: OME's defaults are sent", ""),
    ("publishers", "<HLS><CacheControl><SegmentMaxAge>3600</SegmentMaxAge></CacheControl></HLS>",
     "Publishers.HLS.CacheControl: not implemented by Kiln, Cache-Control settings: OME's defaults are sent",
     "<HLS/>"),
    ("llhls", "<DefaultQueryString><Query><Key>_HLS_legacy</Key><Value>YES</Value></Query></DefaultQueryString>",
     "Publishers.LLHLS.DefaultQueryString: not implemented by Kiln, default query strings: a request's own query is "
     "used as is", ""),
    ("llhls", "<Dumps><Dump><Enable>true</Enable><TargetStreamName>stream*</TargetStreamName>"
              "<Playlists><Playlist>llhls.m3u8</Playlist></Playlists><OutputPath>/tmp/d</OutputPath></Dump></Dumps>",
     "Publishers.LLHLS.Dumps.Dump: not implemented by Kiln, dumps started by the configuration: start them with "
     ":startHlsDump", "<Dumps><Dump><Enable>false</Enable><TargetStreamName>s</TargetStreamName></Dump></Dumps>"),
    ("publishers", "<FILE><StreamMap><Enable>true</Enable><Path>record_map.xml</Path></StreamMap></FILE>",
     "Publishers.FILE.StreamMap: not implemented by Kiln, recording by stream map: start recordings with "
     ":startRecord", "<FILE><StreamMap><Enable>false</Enable><Path>record_map.xml</Path></StreamMap></FILE>"),
    ("publishers", "<Push><StreamMap><Enable>true</Enable><Path>push_map.xml</Path></StreamMap></Push>",
     "Publishers.Push.StreamMap: not implemented by Kiln, pushing by stream map: start pushes with :startPush",
     "<Push/>"),
    ("publishers", "<RTMPPush><StreamMap><Enable>true</Enable><Path>push_map.xml</Path></StreamMap></RTMPPush>",
     "Publishers.RTMPPush.StreamMap: not implemented by Kiln, pushing by stream map: start pushes with :startPush",
     "<RTMPPush/>"),
]


def _check(tmp_path: Path, slot: str, fragment: str, name: str = "app") -> str:
    path = tmp_path / "Server.xml"
    path.write_text(BASE.format(name=name, **{s: fragment if s == slot else "" for s in SLOTS}))
    out = io.StringIO()
    assert run_check(str(path), out) == 0, out.getvalue()
    return out.getvalue()


@pytest.mark.parametrize(("slot", "fragment", "warning", "as_kiln_does"), CASES,
                         ids=[c[2].split(":")[0] for c in CASES])
def test_the_element_is_named_when_set_and_silent_otherwise(tmp_path: Path, slot: str, fragment: str, warning: str,
                                                           as_kiln_does: str) -> None:
    assert f"  {PREFIX}{warning}\n" in _check(tmp_path, slot, fragment)
    for other in {"", as_kiln_does}:
        text = _check(tmp_path, slot, other)
        assert "not implemented by Kiln" not in text, text


@pytest.mark.parametrize("provider", ["SRT", "MPEGTS"])
def test_an_audio_map_is_built_so_nothing_is_said_of_it(tmp_path: Path, provider: str) -> None:
    text = _check(tmp_path, "providers", f"<{provider}><AudioMap><Item><Name>English</Name><Language>en</Language>"
                                         f"<Characteristics>public.alternate</Characteristics></Item></AudioMap>"
                                         f"</{provider}>")
    assert "AudioMap" not in text and "error" not in text.lower(), text


def test_a_vhost_cross_domains_is_named(tmp_path: Path) -> None:
    warning = ("vhost default: VirtualHost.CrossDomains: not implemented by Kiln, no default CORS for the vhost's "
               "apps: set CrossDomains in each app's publishers")
    assert f"  {warning}\n" in _check(tmp_path, "vhost", "<CrossDomains><Url>*</Url></CrossDomains>")
    assert "not implemented by Kiln" not in _check(tmp_path, "vhost", "")


def test_an_app_named_star_is_described_as_the_template_for_dynamic_apps(tmp_path: Path) -> None:
    """OME makes an app for any name from an app named ``*`` when a player's stream is pulled; Kiln does the same
    and says so, and warns when the vhost has nothing to pull from (the template would never be used)."""
    origins = "<Origins><Origin><Location>/</Location><Pass><Scheme>ovt</Scheme><Urls><Url>127.0.0.1:9000</Url>" \
              "</Urls></Pass></Origin></Origins>"
    text = _check(tmp_path, "vhost", origins, name="*")
    assert "  * (live): template for dynamic applications: a player's pull (Origins/OriginMapStore) of a stream of " \
           "an app this vhost does not have makes that app from it\n" in text, text
    assert "app *" not in text and "not implemented by Kiln" not in text and "never used" not in text, text
    assert "dynamic app removal: off (dynamic applications stay until deleted)" in text
    unused = ("vhost default: its '*' application is never used: dynamic applications are made only for streams "
              "pulled on demand, and this vhost has no Origins or OriginMapStore")
    assert f"  {unused}\n" in _check(tmp_path, "app", "", name="*")
    assert "never used" not in _check(tmp_path, "app", "", name="live")
