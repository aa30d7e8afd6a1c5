"""Validation of vhost/app JSON with OME's messages, shared by Server.xml loading and the REST API.

The walk follows the element table in ``schema``: per object, unknown keys first, then each known
key in OME's registration order (required check, then its value), so the first error reported is
the one OME would report for the same input.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from kiln.config.schema import APPLICATION, AUDIO, IMAGE, VIDEO, VIRTUAL_HOST, Node
from kiln.config.values import is_true, number


class ConfigError(Exception):
    """A config that OME would refuse; ``str(exc)`` is the text without the ``[Config] `` prefix."""


# What OME fills in on POST apps when the key is absent (rest-spec §6.2; seeds show the same).
_DEFAULT_AUDIO = {"samplerate": 48000, "bitrate": 128000, "channel": 2, "bypassIfMatch": {"codec": "eq"}}
DEFAULT_APP_SECTIONS: dict[str, dict[str, Any]] = {
    "outputProfiles": {"outputProfile": [{
        "name": "default",
        "outputStreamName": "${OriginStreamName}",
        "encodes": {
            "videos": [{"name": "bypass_video", "bypass": True}],
            "audios": [{"name": "opus", "codec": "opus", **_DEFAULT_AUDIO},
                       {"name": "aac", "codec": "aac", **_DEFAULT_AUDIO}],
        },
    }]},
    "providers": {"ovt": {}, "rtspPull": {}, "webrtc": {}, "srt": {}, "rtmp": {}},
    "publishers": {"llhls": {}, "webrtc": {}, "ovt": {}},
}

APP_TYPES = ("live", "vod")
IMAGE_CODECS = ("jpeg", "png", "webp")


def fill_app_defaults(app: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``app`` with OME's POST-apps defaults for absent sections (given ones are not merged)."""
    out = copy.deepcopy(app)
    for key, default in DEFAULT_APP_SECTIONS.items():
        if key not in out:
            out[key] = copy.deepcopy(default)
    return out



def parse_bitrate(value: object) -> int | None:
    """Bitrate as OME reads it: a number, optionally ending in K (×1024) or M (×1048576)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    text = str(value).strip()
    scale = 1
    if text[-1:] in ("K", "k"):
        scale, text = 1024, text[:-1]
    elif text[-1:] in ("M", "m"):
        scale, text = 1024 * 1024, text[:-1]
    try:
        found = float(text) * scale
    except ValueError:
        return None
    return int(found) if math.isfinite(found) else None  # int() of 'inf' or '1e400' raised OverflowError: a 500


def validate_app_json(app: dict[str, Any]) -> None:
    _walk(app, APPLICATION, "application")


def validate_vhost_json(vhost: dict[str, Any]) -> None:
    """Validate a vhost and the apps inside it (apps are reported under the ``application`` root)."""
    _walk(vhost, VIRTUAL_HOST, "virtualHost")


def _walk(value: object, node: Node, path: str) -> None:
    if node.kind == "open":
        return
    if node.kind == "leaf":
        if isinstance(value, dict | list):
            raise ConfigError(f"{path} must be a string, number or boolean")
        return
    if node.kind == "wrap":
        if not isinstance(value, list):
            raise ConfigError(f"{path} must be an array")
        assert node.item is not None
        for item in value:
            _walk(item, node.item.node, path)
        return
    if not isinstance(value, dict):
        raise ConfigError(f"{path} must be an object")
    for key in value:
        if key not in node.by_key:
            raise ConfigError(f"Unknown item found: {path}.{key}")
    for spec in node.fields:
        child = value.get(spec.key)
        child_path = f"{path}.{spec.key}"
        if child is None:
            if spec.required:
                raise ConfigError(f"{child_path} is not optional")
            continue
        if spec.node is APPLICATION:
            child_path = "application"
        if spec.many:
            if not isinstance(child, list):
                raise ConfigError(f"{child_path} must be an array")
            for item in child:
                _walk(item, spec.node, child_path)
        else:
            _walk(child, spec.node, child_path)
        if node is APPLICATION and spec.key == "type" and child not in APP_TYPES:
            raise ConfigError(f"Unknown type: {child}")
    if node is VIDEO or node is AUDIO:
        _check_encode(value)
    elif node is IMAGE:
        _check_image_encode(value)


def _check_encode(encode: dict[str, Any]) -> None:
    if is_true(encode.get("bypass")):
        return
    bitrate = parse_bitrate(encode.get("bitrate"))
    if not bitrate or bitrate <= 0:
        raise ConfigError("Bitrate must be specified when bypass is false")



def _check_image_encode(encode: dict[str, Any]) -> None:
    """An image (thumbnail) encode, in OME's style: ``<Key> must be …`` (media-spec §9)."""
    codec = encode.get("codec")
    name = codec.strip().lower() if isinstance(codec, str) else ""
    if not name:
        raise ConfigError("Codec must be specified for an image encode")
    if name.split("_", 1)[0] not in IMAGE_CODECS:
        raise ConfigError(f"Codec must be jpeg, png or webp for an image encode: {codec}")
    for key, label in (("width", "Width"), ("height", "Height"), ("framerate", "Framerate")):
        value = encode.get(key)
        if value is None or value == "":
            continue
        found = number(value)
        if found is None:
            raise ConfigError(f"{label} must be a number: {value}")
        if found < 0:
            raise ConfigError(f"{label} must be 0 or greater: {value}")
    skip = encode.get("skipFrames")
    if skip is not None and skip != "":
        found = number(skip)
        if found is None or not 0 <= found <= 120:
            raise ConfigError("SkipFrames must be between 0 and 120")
