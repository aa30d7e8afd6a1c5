"""An app's OME JSON, read once into the frozen settings that decisions and effects use.

The API echoes the OME JSON as given (``AppSettings.config``); everything else reads these typed
fields, so no actor digs through nested dicts or re-reads a projection to find a timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiln.config.values import AudioLabel, as_int, audio_labels, is_true

# OME's older publisher names that also enable the push publisher
_LEGACY_PUSH = ("rtmpPush", "srtPush", "mpegtsPush")
# the providers whose AudioMap OME applies (srt_provider.cpp, mpegts_provider.cpp: AddAudioMapItems)
AUDIO_MAP_PROVIDERS = ("srt", "mpegts")


@dataclass(frozen=True)
class PushSettings:
    """``publishers.push``: how long a destination may take to connect and to accept data."""

    connection_timeout_ms: int = 5000
    send_timeout_ms: int = 2000


@dataclass(frozen=True)
class FileSettings:
    """``publishers.file``: where recordings go when a task names no path of its own."""

    root_path: str = ""
    file_path: str = ""
    info_path: str = ""


@dataclass(frozen=True)
class AppSettings:
    config: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    providers: frozenset[str] = frozenset()
    publishers: frozenset[str] = frozenset()  # "push" also when only a legacy push name is present
    block_duplicate_stream_name: bool = True
    push: PushSettings = PushSettings()
    file: FileSettings = FileSettings()
    output_profiles: tuple[dict[str, Any], ...] = ()
    # provider key ("srt", "mpegts") -> its AudioMap: labels for the input's audio tracks, by order
    audio_maps: dict[str, tuple[AudioLabel, ...]] = field(default_factory=dict, compare=False, hash=False)

    def provider_enabled(self, name: str) -> bool:
        return name in self.providers

    def publisher_enabled(self, name: str) -> bool:
        return name in self.publishers

    @classmethod
    def parse(cls, config: dict[str, Any]) -> AppSettings:
        providers = _section(config, "providers")
        publishers = _section(config, "publishers")
        enabled = {name for name, value in publishers.items() if isinstance(value, dict)}
        if enabled & set(_LEGACY_PUSH):
            enabled.add("push")
        rtmp = providers.get("rtmp")
        block = rtmp.get("blockDuplicateStreamName") if isinstance(rtmp, dict) else None
        push = _section(publishers, "push")
        file = _section(publishers, "file")
        return cls(
            config=config,
            providers=frozenset(name for name, value in providers.items() if isinstance(value, dict)),
            publishers=frozenset(enabled),
            block_duplicate_stream_name=True if block is None else is_true(block),
            push=PushSettings(as_int(push.get("connectionTimeout"), 5000), as_int(push.get("sendTimeout"), 2000)),
            file=FileSettings(str(file.get("rootPath") or ""), str(file.get("filePath") or ""),
                              str(file.get("infoPath") or "")),
            output_profiles=tuple(profiles_of(config)),
            audio_maps={key: labels for key in AUDIO_MAP_PROVIDERS
                        if (labels := audio_labels(_section(providers, key).get("audioMap")))},
        )


def profiles_of(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The app's output profiles in config order ([] when the section is absent)."""
    section = config.get("outputProfiles")
    if not isinstance(section, dict):
        return []
    profiles = section.get("outputProfile")
    if isinstance(profiles, dict):
        return [profiles]
    return list(profiles) if isinstance(profiles, list) else []


def _section(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}
