"""OME's Bypass / BypassIfMatch decision for one encode over one input track (media-spec §9).

``bypassIfMatch`` bypasses only when every listed condition holds: ``codec`` (eq), video
``width``/``height``/``framerate`` (eq|lte|gte: input compared with the profile value), ``sAR``
(eq: same width/height ratio), audio ``samplerate``/``channel`` (eq|lte|gte). An empty
``bypassIfMatch`` never bypasses.
"""

from __future__ import annotations

from typing import Any

from kiln.config.values import is_true, number
from kiln.media.model import Codec, MediaKind, Track

_CODEC_NAMES = {"h264": Codec.H264, "h265": Codec.H265, "hevc": Codec.H265, "vp8": Codec.VP8, "vp9": Codec.VP9,
                "av1": Codec.AV1, "aac": Codec.AAC, "opus": Codec.OPUS, "mp3": Codec.MP3,
                "jpeg": Codec.JPEG, "png": Codec.PNG, "webp": Codec.WEBP}


def codec_of(name: Any) -> Codec | None:
    """The codec an encode's ``codec`` value names (``h264_nvenc`` style module suffixes allowed)."""
    if not isinstance(name, str) or not name:
        return None
    key = name.strip().lower()
    return _CODEC_NAMES.get(key) or _CODEC_NAMES.get(key.split("_", 1)[0])




def _compare(op: Any, have: float, want: float | None) -> bool:
    if want is None:
        return False
    op = str(op).strip().lower()
    if op == "eq":
        return abs(have - want) < 1e-6
    if op == "lte":
        return have <= want
    if op == "gte":
        return have >= want
    return False


def should_bypass(encode: dict[str, Any], track: Track, input_framerate: float = 0.0) -> bool:
    if is_true(encode.get("bypass")):
        return True
    rules = encode.get("bypassIfMatch")
    if not isinstance(rules, dict) or not rules:
        return False
    for key, op in rules.items():
        k = key.lower()
        if k == "codec":
            if str(op).lower() != "eq" or codec_of(encode.get("codec")) is not track.codec:
                return False
        elif k == "width" and track.kind is MediaKind.VIDEO:
            if not _compare(op, track.width, number(encode.get("width"))):
                return False
        elif k == "height" and track.kind is MediaKind.VIDEO:
            if not _compare(op, track.height, number(encode.get("height"))):
                return False
        elif k == "framerate" and track.kind is MediaKind.VIDEO:
            if not _compare(op, input_framerate, number(encode.get("framerate"))):
                return False
        elif k == "sar" and track.kind is MediaKind.VIDEO:
            w, h = number(encode.get("width")), number(encode.get("height"))
            if not (w and h and track.width and track.height) or abs(w / h - track.width / track.height) > 1e-3:
                return False
        elif k == "samplerate" and track.kind is MediaKind.AUDIO:
            if not _compare(op, track.sample_rate, number(encode.get("samplerate"))):
                return False
        elif k == "channel" and track.kind is MediaKind.AUDIO:
            if not _compare(op, track.channels, number(encode.get("channel"))):
                return False
        else:
            return False
    return True
