"""Which codec Kiln receives, chosen on the server (aiortc would take VP8 by its own order).

H.264 wins when the publisher offers a profile aiortc negotiates (constrained baseline 42e01f, baseline
42001f, packetization-mode 1): LL-HLS, RTMP push and MP4 carry it without transcoding. VP8 is the
fallback; audio is Opus. Preferences are set on each transceiver before the remote description, which
is the only moment aiortc reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc import RTCRtpReceiver
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.sdp import SessionDescription


class NoUsableCodec(ValueError):
    """An offer whose media Kiln cannot receive; the text names the m-line and what was offered."""


@dataclass(frozen=True)
class MediaPlan:
    kind: str                                   # "audio" | "video"
    preferences: list[RTCRtpCodecCapability]    # for setCodecPreferences (codec, then its rtx)
    codec: str                                  # what we expect to receive, for logs


def _capabilities(kind: str) -> list[RTCRtpCodecCapability]:
    caps = RTCRtpReceiver.getCapabilities(kind)
    return list(caps.codecs) if caps is not None else []


def _as_params(cap: RTCRtpCodecCapability) -> RTCRtpCodecParameters:
    return RTCRtpCodecParameters(mimeType=cap.mimeType, clockRate=cap.clockRate, channels=cap.channels,
                                 parameters=dict(cap.parameters))


def _rtx(kind: str) -> list[RTCRtpCodecCapability]:
    return [c for c in _capabilities(kind) if c.mimeType.lower().endswith("/rtx")][:1]


def receive_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    """Kiln's own offer (OME signalling ``direction=send``): H.264 first, VP8 next; Opus for audio."""
    caps = _capabilities(kind)
    if kind == "audio":
        return [c for c in caps if c.mimeType.lower() == "audio/opus"]
    h264 = sorted((c for c in caps if c.mimeType.lower() == "video/h264"),
                  key=lambda c: str(c.parameters.get("profile-level-id", "")) != "42e01f")
    vp8 = [c for c in caps if c.mimeType.lower() == "video/vp8"]
    return h264 + vp8 + _rtx(kind)


def plan_for_offer(sdp: str) -> list[MediaPlan]:
    """One plan per audio/video m-line of a publisher's offer (WHIP), or NoUsableCodec / ValueError."""
    description = SessionDescription.parse(sdp)
    plans = []
    for media in description.media:
        if media.kind not in ("audio", "video"):
            continue
        if media.direction not in (None, "sendonly", "sendrecv"):
            raise NoUsableCodec(f"{media.kind} m-line is {media.direction}: a publisher must send")
        offered = [c for c in media.rtp.codecs if not c.mimeType.lower().endswith("/rtx")]
        caps = [c for c in _capabilities(media.kind) if not c.mimeType.lower().endswith("/rtx")]
        if media.kind == "video":
            order = [c for c in offered if c.mimeType.lower() == "video/h264"] + \
                    [c for c in offered if c.mimeType.lower() == "video/vp8"]
        else:
            order = [c for c in offered if c.mimeType.lower() == "audio/opus"]
        chosen = next((cap for codec in order for cap in caps if is_codec_compatible(_as_params(cap), codec)), None)
        if chosen is None:
            names = ", ".join(sorted({c.mimeType.split("/")[-1] for c in offered})) or "none"
            want = "H.264 (packetization-mode 1, baseline) or VP8" if media.kind == "video" else "Opus"
            raise NoUsableCodec(f"no {media.kind} codec Kiln can receive (offered: {names}; wanted {want})")
        prefs = [chosen] + (_rtx(media.kind) if media.kind == "video" else [])
        plans.append(MediaPlan(media.kind, prefs, chosen.mimeType.split("/")[-1]))
    if not plans:
        raise NoUsableCodec("the offer has no audio or video m-line")
    return plans
