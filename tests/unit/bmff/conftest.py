"""Encoded media shared by the ISO-BMFF tests (encoded once per session; about 0.5 s in all)."""

from __future__ import annotations

import pytest

from tests.unit.bmff.media import Encoded, encode_audio, encode_video


@pytest.fixture(scope="session")
def h264_bframes() -> Encoded:
    return encode_video("libx264", bframes=2)


@pytest.fixture(scope="session")
def h264_no_bframes() -> Encoded:
    return encode_video("libx264", bframes=0)


@pytest.fixture(scope="session")
def h265() -> Encoded:
    return encode_video("libx265", bframes=2)


@pytest.fixture(scope="session")
def aac() -> Encoded:
    return encode_audio("aac")


@pytest.fixture(scope="session")
def opus() -> Encoded:
    return encode_audio("libopus")


@pytest.fixture(scope="session")
def mp3() -> Encoded:
    return encode_audio("libmp3lame")
