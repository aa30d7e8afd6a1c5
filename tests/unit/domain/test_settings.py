"""AppSettings reads an app's OME JSON the way OME does (XML text values, legacy push names)."""

from __future__ import annotations

from kiln.domain.settings import AppSettings, FileSettings, PushSettings


def test_defaults_when_sections_are_absent() -> None:
    s = AppSettings.parse({"name": "app"})
    assert s.providers == frozenset() and s.publishers == frozenset()
    assert s.block_duplicate_stream_name is True
    assert s.push == PushSettings(5000, 2000)
    assert s.file == FileSettings("", "", "")
    assert s.output_profiles == ()


def test_xml_text_values_and_legacy_push() -> None:
    s = AppSettings.parse({
        "providers": {"rtmp": {"blockDuplicateStreamName": "false"}, "srt": {}, "ovt": "yes"},
        "publishers": {"rtmpPush": {}, "file": {"rootPath": "/r", "filePath": "f", "infoPath": "i"},
                       "llhls": {}, "push": {"connectionTimeout": "7000", "sendTimeout": "x"}},
        "outputProfiles": {"outputProfile": {"name": "bypass"}},
    })
    assert s.providers == {"rtmp", "srt"}  # a provider must be an object to be enabled
    assert s.provider_enabled("srt") and not s.provider_enabled("ovt")
    assert s.publishers == {"rtmpPush", "push", "file", "llhls"}
    assert s.publisher_enabled("push")
    assert s.block_duplicate_stream_name is False
    assert s.push == PushSettings(7000, 2000)
    assert s.file == FileSettings("/r", "f", "i")
    assert s.output_profiles == ({"name": "bypass"},)


def test_legacy_push_alone_enables_push() -> None:
    assert AppSettings.parse({"publishers": {"srtPush": {}}}).publisher_enabled("push")
    assert not AppSettings.parse({"publishers": {"push": "on"}}).publisher_enabled("push")
