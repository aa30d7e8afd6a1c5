"""The table of known Server.xml elements and their JSON names.

One table serves both directions: the XML loader walks it to turn elements into OME's REST JSON
(and to report unknown elements), and the REST validator walks it to reject unknown keys. Keeping a
single table is what makes an app loaded from Server.xml and an app POSTed to the API look alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Element names whose JSON spelling is not "first letter lowercased" (rest-spec §1.12).
JSON_NAMES: dict[str, str] = {
    "RTMP": "rtmp", "SRT": "srt", "RTSPPull": "rtspPull", "RTSP": "rtsp", "RTSPC": "rtspc", "OVT": "ovt",
    "WebRTC": "webrtc", "MPEGTS": "mpegts", "LLHLS": "llhls", "HLS": "hls", "FILE": "file",
    "Thumbnail": "thumbnail", "Push": "push", "RTMPPush": "rtmpPush", "SRTPush": "srtPush",
    "MPEGTSPush": "mpegtsPush", "URL": "url", "Url": "url", "TLS": "tls", "IP": "ip", "ERTMP": "ertmp",
    "HTTP2": "http2", "P2P": "p2p", "HWAccels": "hwaccels", "Schedule": "schedule", "Multiplex": "multiplex",
    "API": "api", "DVR": "dvr", "DRM": "drm", "HLSChunklistPathDepth": "hlsChunklistPathDepth",
    "TLSPort": "tlsPort",
}


def json_key(tag: str) -> str:
    """JSON key OME uses for an element name."""
    if tag in JSON_NAMES:
        return JSON_NAMES[tag]
    return tag[:1].lower() + tag[1:]


@dataclass(frozen=True)
class Node:
    """What an element holds.

    kind: ``leaf`` (text), ``obj`` (known children), ``wrap`` (children that are all ``item`` and
    become a flat JSON list, e.g. ``<Names><Name>``), ``open`` (not modelled: converted generically,
    nothing inside is reported or rejected).
    """

    kind: str
    fields: tuple[Field, ...] = ()
    item: Field | None = None
    by_tag: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)
    by_key: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for f in self.fields:
            self.by_tag[f.tag] = f
            self.by_key[f.key] = f


@dataclass(frozen=True)
class Field:
    """One child element: its XML tag, JSON key, content, and whether it repeats or is required."""

    tag: str
    key: str
    node: Node
    many: bool = False
    required: bool = False


LEAF = Node("leaf")
OPEN = Node("open")


def f(tag: str, node: Node = LEAF, *, key: str | None = None, many: bool = False, required: bool = False) -> Field:
    return Field(tag, key or json_key(tag), node, many, required)


def obj(*fields: Field) -> Node:
    return Node("obj", tuple(fields))


def leaves(*tags: str) -> Node:
    return obj(*(f(t) for t in tags))


def wrap(item_tag: str, node: Node = LEAF) -> Node:
    return Node("wrap", item=f(item_tag, node, many=True))


# --- shared pieces ---------------------------------------------------------------------------
CROSS_DOMAINS = obj(f("Url", key="urls", many=True), f("Header", leaves("Key", "Value"), key="headers", many=True))
TLS = leaves("CertPath", "KeyPath", "ChainCertPath")
HOST = obj(f("Names", wrap("Name"), required=True), f("TLS", TLS))
ENABLES = leaves("Providers", "Publishers")
STREAM_MAP_FILE = leaves("Enable", "Path")
WORKERS = leaves("WorkerCount")

# --- application -----------------------------------------------------------------------------
BYPASS_IF_MATCH = leaves("Codec", "Bitrate", "Framerate", "Width", "Height", "SAR", "Samplerate", "Channel")
VIDEO = obj(*(f(t) for t in ("Name", "Bypass", "Codec", "Modules", "Bitrate", "Width", "Height", "Framerate",
                             "SkipFrames", "Preset", "ThreadCount", "KeyFrameIntervalType", "KeyFrameInterval",
                             "BFrames", "Profile", "Lookahead")), f("BypassIfMatch", BYPASS_IF_MATCH))
AUDIO = obj(*(f(t) for t in ("Name", "Bypass", "Codec", "Modules", "Bitrate", "Samplerate", "Channel")),
            f("BypassIfMatch", BYPASS_IF_MATCH))
IMAGE = obj(*(f(t) for t in ("Name", "Codec", "Modules", "Width", "Height", "Framerate", "SkipFrames")),
            f("BypassIfMatch", BYPASS_IF_MATCH))
ENCODES = obj(f("Video", VIDEO, key="videos", many=True), f("Audio", AUDIO, key="audios", many=True),
              f("Image", IMAGE, key="images", many=True))
RENDITION = obj(f("Name", required=True), f("Video"), f("Audio"), f("VideoIndexHint"), f("AudioIndexHint"))
VIDEO_TEMPLATE = leaves("EncodingType", "VariantName", "VideoIndexHint", "MaxWidth", "MinWidth", "MaxHeight",
                        "MinHeight", "MaxFPS", "MinFPS", "MaxBitrate", "MinBitrate")
AUDIO_TEMPLATE = leaves("EncodingType", "VariantName", "AudioIndexHint", "MaxBitrate", "MinBitrate",
                        "MaxSamplerate", "MinSamplerate", "MaxChannel", "MinChannel")
PLAYLIST = obj(
    f("Name", required=True), f("FileName", required=True),
    f("Options", leaves("WebRtcAutoAbr", "HLSChunklistPathDepth", "EnableTsPackaging", "EnableSubtitles")),
    f("Rendition", RENDITION, key="renditions", many=True),
    f("RenditionTemplate", obj(f("Name", required=True), f("VideoTemplate", VIDEO_TEMPLATE),
                               f("AudioTemplate", AUDIO_TEMPLATE)), key="renditionTemplates", many=True),
)
OUTPUT_PROFILE = obj(f("Name", required=True), f("OutputStreamName", required=True), f("Encodes", ENCODES),
                     f("Playlist", PLAYLIST, key="playlists", many=True))
OUTPUT_PROFILES = obj(
    f("HardwareAcceleration"),
    f("HWAccels", obj(f("Decoder", leaves("Enable", "Modules")), f("Encoder", leaves("Enable", "Modules")))),
    f("Decodes", leaves("ThreadCount", "OnlyKeyframes")),
    f("MediaOptions", OPEN),
    f("OutputProfile", OUTPUT_PROFILE, many=True),
)
STREAM_MAP_MPEGTS = obj(f("Stream", obj(f("Name", required=True), f("Port", required=True)), many=True))
AUDIO_MAP = obj(f("Item", leaves("Name", "Language", "Characteristics"), many=True))
PROVIDERS = obj(
    f("OVT", OPEN),
    f("RTMP", obj(f("BlockDuplicateStreamName"), f("PassthroughOutputProfile"), f("EventGenerator", OPEN))),
    f("SRT", obj(f("BlockDuplicateStreamName"), f("PassthroughOutputProfile"), f("AudioMap", AUDIO_MAP))),
    f("MPEGTS", obj(f("StreamMap", STREAM_MAP_MPEGTS), f("PassthroughOutputProfile"), f("AudioMap", AUDIO_MAP))),
    f("RTSPPull", obj(f("BlockDuplicateStreamName"))),
    f("RTSP", OPEN),
    f("WebRTC", obj(f("Timeout"), f("CrossDomains", CROSS_DOMAINS), f("PassthroughOutputProfile"))),
    f("File", obj(f("RootPath"), f("StreamMap", OPEN), f("PassthroughOutputProfile")), key="file"),
    f("Schedule", leaves("MediaRootDir", "ScheduleFilesDir")),
    f("Multiplex", leaves("MuxFilesDir")),
)
CACHE_CONTROL = leaves("MasterPlaylistMaxAge", "ChunklistMaxAge", "ChunklistWithDirectivesMaxAge", "SegmentMaxAge",
                       "PartialSegmentMaxAge")
DUMP = obj(f("Id"), f("Enable"), f("TargetStreamName"), f("Playlists", obj(f("Playlist", many=True))),
           f("OutputPath"), f("InfoFile"), f("UserData"))
LLHLS = obj(
    *(f(t) for t in ("ChunkDuration", "PartHoldBack", "SegmentDuration", "SegmentCount", "EnablePreloadHint",
                     "CreateDefaultPlaylist", "OriginMode", "ServerTimeBasedSegmentNumbering")),
    f("CacheControl", CACHE_CONTROL),
    f("DefaultQueryString", obj(f("Query", leaves("Key", "Value"), many=True))),
    f("DVR", leaves("Enable", "TempStoragePath", "MaxDuration", "EventPlaylistType")),
    f("DRM", leaves("Enable", "InfoFile")),
    f("Dumps", obj(f("Dump", DUMP, many=True))),
    f("CrossDomains", CROSS_DOMAINS),
)
HLS = obj(*(f(t) for t in ("SegmentDuration", "SegmentCount", "CreateDefaultPlaylist", "OriginMode")),
          f("CacheControl", CACHE_CONTROL), f("DVR", leaves("Enable", "TempStoragePath", "MaxDuration")),
          f("CrossDomains", CROSS_DOMAINS))
WEBRTC_PUB = obj(*(f(t) for t in ("Timeout", "Rtx", "Ulpfec", "JitterBuffer", "CreateDefaultPlaylist")),
                 f("PlayoutDelay", leaves("Min", "Max")), f("BandwidthEstimation"), f("CrossDomains", CROSS_DOMAINS))
PUSH = obj(f("ConnectionTimeout"), f("SendTimeout"), f("StreamMap", STREAM_MAP_FILE))
PUBLISHERS = obj(
    f("AppWorkerCount"), f("StreamWorkerCount"), f("DelayBufferTimeMs"),
    f("OVT", OPEN), f("WebRTC", WEBRTC_PUB), f("LLHLS", LLHLS), f("HLS", HLS), f("SRT", OPEN),
    f("Push", PUSH), f("RTMPPush", PUSH), f("SRTPush", PUSH), f("MPEGTSPush", PUSH),
    f("FILE", obj(f("RootPath"), f("FilePath"), f("InfoPath"), f("StreamMap", STREAM_MAP_FILE))),
    f("Thumbnail", obj(f("CrossDomains", CROSS_DOMAINS))),
)
APPLICATION = obj(
    f("Name", required=True), f("Type", required=True),
    f("OutputProfiles", OUTPUT_PROFILES), f("Providers", PROVIDERS), f("Publishers", PUBLISHERS),
    f("Decodes", leaves("ThreadCount", "OnlyKeyframes")),
    f("PersistentStreams", OPEN), f("TranscodeWebhook", OPEN), f("EventGenerator", OPEN),
)

# --- virtual host ----------------------------------------------------------------------------
ORIGIN = obj(
    f("Location", required=True),
    f("Pass", obj(f("Scheme", required=True), f("Urls", obj(f("Url", many=True)), required=True),
                  f("ForwardQueryParams")), required=True),
    *(f(t) for t in ("Persistent", "Failback", "StrictLocation", "Relay", "IgnoreRtcpSRTimestamp")),
)
VIRTUAL_HOST = obj(
    f("Name", required=True), f("Distribution"), f("Host", HOST),
    f("SignedPolicy", obj(f("PolicyQueryKeyName", required=True), f("SignatureQueryKeyName", required=True),
                          f("SecretKey", required=True), f("Enables", ENABLES))),
    f("AdmissionWebhooks", obj(f("ControlServerUrl"), f("SecretKey"), f("Timeout"), f("Enables", ENABLES))),
    f("Origins", obj(f("Properties", leaves("NoInputFailoverTimeout", "UnusedStreamDeletionTimeout",
                                           "StreamFailbackTimeout", "RetryCount")),
                     f("Origin", ORIGIN, many=True))),
    f("OriginMapStore", obj(f("RedisServer", obj(f("Host", required=True), f("Auth")), required=True),
                            f("OriginHostName"))),
    f("CrossDomains", CROSS_DOMAINS),
    f("Applications", obj(f("Application", APPLICATION, many=True))),
)

# --- server (only used by the XML loader) ----------------------------------------------------
SIGNALLING = leaves("Port", "TLSPort", "WorkerCount")
ICE = obj(f("IceCandidate", many=True), f("TcpRelay"), f("TcpForce"), f("TcpRelayWorkerCount"),
          f("EnableLinkLocalAddress"))
WEBRTC_BIND = obj(f("Signalling", SIGNALLING), f("IceCandidates", ICE))
OPTIONS = obj(f("Option", leaves("Key", "Value"), many=True))
BIND = obj(
    f("Managers", obj(f("API", leaves("Port", "TLSPort", "WorkerCount")))),
    f("Providers", obj(
        f("RTMP", leaves("Port", "WorkerCount")),
        f("SRT", obj(f("Port"), f("WorkerCount"), f("Options", OPTIONS),
                     f("StreamMap", obj(f("Stream", leaves("Port", "StreamPath"), many=True))))),
        f("MPEGTS", leaves("Port", "WorkerCount")),
        f("WebRTC", WEBRTC_BIND),
        f("RTSPC", WORKERS), f("OVT", leaves("Port", "WorkerCount")), f("File", WORKERS, key="file"),
        f("Schedule", WORKERS), f("Multiplex", WORKERS),
    )),
    f("Publishers", obj(
        f("OVT", leaves("Port", "WorkerCount")), f("LLHLS", leaves("Port", "TLSPort", "WorkerCount")),
        f("HLS", leaves("Port", "TLSPort", "WorkerCount")), f("WebRTC", WEBRTC_BIND),
        f("SRT", obj(f("Port"), f("WorkerCount"), f("Options", OPTIONS))),
        f("Thumbnail", leaves("Port", "TLSPort", "WorkerCount")),
    )),
)
SERVER = obj(
    f("Name"), f("Type"), f("IP", many=True), f("PrivacyProtection"), f("StunServer"),
    f("Modules", obj(f("HTTP2", leaves("Enable")), f("LLHLS", leaves("Enable")),
                     f("P2P", leaves("Enable", "MaxClientPeersPerHostPeer")), f("ERTMP", leaves("Enable")),
                     f("DynamicAppRemoval", leaves("Enable")))),
    f("Bind", BIND),
    f("Managers", obj(f("Host", HOST), f("API", obj(f("AccessToken"), f("CrossDomains", CROSS_DOMAINS),
                                                    f("Storage", leaves("Enable", "Path")),
                                                    # Kiln's own (README, "Where Kiln differs"): where API
                                                    # paths may write, and per-client request limits
                                                    f("WritableRoots", wrap("Root")),
                                                    f("Limits", leaves("MaxBodyBytes", "MaxHeaderBytes",
                                                                       "MaxConnectionsPerClient",
                                                                       "RequestTimeout")))),
                      # Kiln's own: /metrics without the token, and webhook subscriptions to the journal
                      f("Metrics", leaves("Auth")),
                      f("Subscriptions", obj(f("Subscription", leaves("Id", "Url", "SecretKey", "Entity", "Types",
                                                                       "From"), many=True))))),
    f("Alert", OPEN),
    f("Defaults", obj(f("CrossDomains", CROSS_DOMAINS))),
    f("VirtualHosts", obj(f("VirtualHost", VIRTUAL_HOST, many=True))),
)
