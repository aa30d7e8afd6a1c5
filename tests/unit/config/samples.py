"""A Server.xml that uses every section Kiln models, and the JSON OME would show for its vhost."""

from __future__ import annotations

FULL_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>EdgeOne</Name>
  <Type>edge</Type>
  <IP>*</IP>
  <IP>::</IP>
  <PrivacyProtection>true</PrivacyProtection>
  <StunServer>stun.example.org:3478</StunServer>
  <Modules>
    <HTTP2><Enable>false</Enable></HTTP2>
    <ERTMP><Enable>true</Enable></ERTMP>
  </Modules>
  <Bind>
    <Managers><API><Port>18081</Port><TLSPort>18082</TLSPort><WorkerCount>1</WorkerCount></API></Managers>
    <Providers>
      <RTMP><Port>11935/tcp</Port></RTMP>
      <SRT>
        <Port>19999/udp</Port>
        <Options><Option><Key>SRTO_PASSPHRASE</Key><Value>secret-pass</Value></Option></Options>
        <StreamMap><Stream><Port>19999</Port><StreamPath>default/app/cam</StreamPath></Stream></StreamMap>
      </SRT>
      <MPEGTS><Port>14000-14002,14005/udp</Port></MPEGTS>
      <WebRTC><Signalling><Port>13333</Port></Signalling></WebRTC>
      <OVT><WorkerCount>1</WorkerCount></OVT>
    </Providers>
    <Publishers>
      <OVT><Port>19000</Port></OVT>
      <LLHLS><Port>13333</Port><TLSPort>13334</TLSPort></LLHLS>
      <WebRTC>
        <Signalling><Port>13333</Port><TLSPort>13334</TLSPort></Signalling>
        <IceCandidates><IceCandidate>*:10000-10004/udp</IceCandidate><TcpRelay>*:3478</TcpRelay></IceCandidates>
      </WebRTC>
      <Thumbnail><Port>0</Port></Thumbnail>
    </Publishers>
  </Bind>
  <Managers>
    <Host><Names><Name>api.example.org</Name></Names></Host>
    <API>
      <AccessToken>admin:s3cret</AccessToken>
      <CrossDomains>
        <Url>*.example.org</Url>
        <Url>http://tools.example.net</Url>
        <Header><Key>Access-Control-Max-Age</Key><Value>600</Value></Header>
      </CrossDomains>
    </API>
  </Managers>
  <VirtualHosts>
    <VirtualHost>
      <Name>default</Name>
      <Distribution>ovenmediaengine.com</Distribution>
      <Host>
        <Names><Name>live.example.org</Name><Name>*</Name></Names>
        <TLS><CertPath>cert.pem</CertPath><KeyPath>key.pem</KeyPath><ChainCertPath>chain.pem</ChainCertPath></TLS>
      </Host>
      <SignedPolicy>
        <PolicyQueryKeyName>policy</PolicyQueryKeyName>
        <SignatureQueryKeyName>signature</SignatureQueryKeyName>
        <SecretKey>aKq#1kj</SecretKey>
        <Enables><Providers>rtmp,webrtc,srt</Providers><Publishers>webrtc,llhls</Publishers></Enables>
      </SignedPolicy>
      <AdmissionWebhooks>
        <ControlServerUrl>https://control.example.org/admission</ControlServerUrl>
        <SecretKey>hook-key</SecretKey>
        <Timeout>3000</Timeout>
        <Enables><Providers>rtmp</Providers><Publishers>llhls</Publishers></Enables>
      </AdmissionWebhooks>
      <Origins>
        <Properties><NoInputFailoverTimeout>3000</NoInputFailoverTimeout><RetryCount>2</RetryCount></Properties>
        <Origin>
          <Location>/app/stream</Location>
          <Pass>
            <Scheme>ovt</Scheme>
            <Urls><Url>origin1.example.org:9000/app/stream</Url><Url>origin2.example.org:9000/app/stream</Url></Urls>
            <ForwardQueryParams>false</ForwardQueryParams>
          </Pass>
          <Persistent>true</Persistent>
        </Origin>
        <Origin>
          <Location>/cams/</Location>
          <Pass><Scheme>rtsp</Scheme><Urls><Url>cam.example.org:554/</Url></Urls></Pass>
        </Origin>
      </Origins>
      <OriginMapStore>
        <RedisServer><Host>redis.example.org:6379</Host><Auth>redis-pass</Auth></RedisServer>
        <OriginHostName>edge1.example.org</OriginHostName>
      </OriginMapStore>
      <Applications>
        <Application>
          <Name>app</Name>
          <Type>live</Type>
          <OutputProfiles>
            <HardwareAcceleration>false</HardwareAcceleration>
            <OutputProfile>
              <Name>bypass</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
                <Video><Name>video_360</Name><Codec>h264</Codec><Bitrate>500K</Bitrate><Width>640</Width>
                  <Height>360</Height><Framerate>30</Framerate><Preset>faster</Preset></Video>
                <Audio><Name>aac_audio</Name><Codec>aac</Codec><Bitrate>128000</Bitrate><Samplerate>48000</Samplerate>
                  <Channel>2</Channel><BypassIfMatch><Codec>eq</Codec></BypassIfMatch></Audio>
                <Image><Name>thumb</Name><Codec>jpeg</Codec><Width>320</Width><Framerate>1</Framerate></Image>
              </Encodes>
              <Playlist>
                <Name>default</Name>
                <FileName>master</FileName>
                <Options><WebRtcAutoAbr>true</WebRtcAutoAbr><HLSChunklistPathDepth>-1</HLSChunklistPathDepth></Options>
                <Rendition><Name>source</Name><Video>bypass_video</Video><Audio>aac_audio</Audio></Rendition>
                <Rendition><Name>360p</Name><Video>video_360</Video><Audio>aac_audio</Audio></Rendition>
              </Playlist>
            </OutputProfile>
          </OutputProfiles>
          <Providers>
            <RTMP><BlockDuplicateStreamName>false</BlockDuplicateStreamName></RTMP>
            <SRT><AudioMap><Item><Name>English</Name><Language>en</Language></Item>
              <Item><Name>Korean</Name><Language>ko</Language></Item></AudioMap></SRT>
            <RTSPPull/>
            <OVT/>
            <WebRTC><Timeout>30000</Timeout></WebRTC>
            <MPEGTS><StreamMap><Stream><Name>stream_${Port}</Name><Port>14000-14002</Port></Stream></StreamMap></MPEGTS>
          </Providers>
          <Publishers>
            <AppWorkerCount>1</AppWorkerCount>
            <StreamWorkerCount>8</StreamWorkerCount>
            <LLHLS>
              <ChunkDuration>0.5</ChunkDuration>
              <SegmentDuration>6</SegmentDuration>
              <SegmentCount>10</SegmentCount>
              <DVR><Enable>true</Enable><MaxDuration>600</MaxDuration></DVR>
              <Dumps><Dump><Enable>true</Enable><TargetStreamName>stream*</TargetStreamName>
                <Playlists><Playlist>llhls.m3u8</Playlist></Playlists><OutputPath>/tmp/dump</OutputPath></Dump></Dumps>
              <CrossDomains><Url>*</Url></CrossDomains>
            </LLHLS>
            <WebRTC><Timeout>30000</Timeout></WebRTC>
            <OVT/>
            <Push><StreamMap><Enable>true</Enable><Path>push.xml</Path></StreamMap></Push>
            <FILE><RootPath>rec</RootPath><FilePath>/${Stream}.ts</FilePath><InfoPath>/${Stream}.xml</InfoPath></FILE>
            <Thumbnail><CrossDomains><Url>*</Url></CrossDomains></Thumbnail>
          </Publishers>
        </Application>
      </Applications>
    </VirtualHost>
  </VirtualHosts>
</Server>
"""

FULL_VHOST = {
    "name": "default",
    "distribution": "ovenmediaengine.com",
    "host": {"names": ["live.example.org", "*"],
             "tls": {"certPath": "cert.pem", "keyPath": "key.pem", "chainCertPath": "chain.pem"}},
    "signedPolicy": {"policyQueryKeyName": "policy", "signatureQueryKeyName": "signature", "secretKey": "aKq#1kj",
                     "enables": {"providers": "rtmp,webrtc,srt", "publishers": "webrtc,llhls"}},
    "admissionWebhooks": {"controlServerUrl": "https://control.example.org/admission", "secretKey": "hook-key",
                          "timeout": "3000", "enables": {"providers": "rtmp", "publishers": "llhls"}},
    "origins": {
        "properties": {"noInputFailoverTimeout": "3000", "retryCount": "2"},
        "origin": [
            {"location": "/app/stream",
             "pass": {"scheme": "ovt",
                      "urls": {"url": ["origin1.example.org:9000/app/stream", "origin2.example.org:9000/app/stream"]},
                      "forwardQueryParams": "false"},
             "persistent": "true"},
            {"location": "/cams/", "pass": {"scheme": "rtsp", "urls": {"url": ["cam.example.org:554/"]}}},
        ],
    },
    "originMapStore": {"redisServer": {"host": "redis.example.org:6379", "auth": "redis-pass"},
                       "originHostName": "edge1.example.org"},
    "applications": {"application": [{
        "name": "app",
        "type": "live",
        "outputProfiles": {
            "hardwareAcceleration": "false",
            "outputProfile": [{
                "name": "bypass",
                "outputStreamName": "${OriginStreamName}",
                "encodes": {
                    "videos": [
                        {"name": "bypass_video", "bypass": "true"},
                        {"name": "video_360", "codec": "h264", "bitrate": "500K", "width": "640", "height": "360",
                         "framerate": "30", "preset": "faster"},
                    ],
                    "audios": [{"name": "aac_audio", "codec": "aac", "bitrate": "128000", "samplerate": "48000",
                                "channel": "2", "bypassIfMatch": {"codec": "eq"}}],
                    "images": [{"name": "thumb", "codec": "jpeg", "width": "320", "framerate": "1"}],
                },
                "playlists": [{
                    "name": "default",
                    "fileName": "master",
                    "options": {"webRtcAutoAbr": "true", "hlsChunklistPathDepth": "-1"},
                    "renditions": [{"name": "source", "video": "bypass_video", "audio": "aac_audio"},
                                   {"name": "360p", "video": "video_360", "audio": "aac_audio"}],
                }],
            }],
        },
        "providers": {
            "rtmp": {"blockDuplicateStreamName": "false"},
            "srt": {"audioMap": {"item": [{"name": "English", "language": "en"},
                                          {"name": "Korean", "language": "ko"}]}},
            "rtspPull": {},
            "ovt": {},
            "webrtc": {"timeout": "30000"},
            "mpegts": {"streamMap": {"stream": [{"name": "stream_${Port}", "port": "14000-14002"}]}},
        },
        "publishers": {
            "appWorkerCount": "1",
            "streamWorkerCount": "8",
            "llhls": {"chunkDuration": "0.5", "segmentDuration": "6", "segmentCount": "10",
                      "dvr": {"enable": "true", "maxDuration": "600"},
                      "dumps": {"dump": [{"enable": "true", "targetStreamName": "stream*",
                                          "playlists": {"playlist": ["llhls.m3u8"]}, "outputPath": "/tmp/dump"}]},
                      "crossDomains": {"urls": ["*"]}},
            "webrtc": {"timeout": "30000"},
            "ovt": {},
            "push": {"streamMap": {"enable": "true", "path": "push.xml"}},
            "file": {"rootPath": "rec", "filePath": "/${Stream}.ts", "infoPath": "/${Stream}.xml"},
            "thumbnail": {"crossDomains": {"urls": ["*"]}},
        },
    }]},
}


def server_xml(vhost_body: str = "", *, bind: str = "", top: str = "") -> str:
    """A small Server.xml: one vhost ``default`` whose inner XML is ``vhost_body``."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>T</Name>
  <Type>origin</Type>
  {top}
  <Bind>{bind}</Bind>
  <VirtualHosts>
    <VirtualHost>
      <Name>default</Name>
      <Host><Names><Name>*</Name></Names></Host>
      {vhost_body}
    </VirtualHost>
  </VirtualHosts>
</Server>
"""


def app_xml(inner: str = "", *, name: str = "app", type_: str = "live") -> str:
    return f"<Applications><Application><Name>{name}</Name><Type>{type_}</Type>{inner}</Application></Applications>"
