"""How often the SRT listener reads its callers: 80 ms apart by default, every half latency when a short SRT
latency is configured (so a caller that asked for 20 ms does not wait 80 ms more in Kiln)."""

from __future__ import annotations

import pytest

from kiln.media.net.srt.listener import MIN_PASS_INTERVAL_S, PASS_INTERVAL_S, SrtListener


def listener(**kwargs: object) -> SrtListener:
    return SrtListener("127.0.0.1", 0, on_accept=lambda streamid, peer: None, **kwargs)  # type: ignore[arg-type]


def test_default_is_the_pass_interval() -> None:
    assert PASS_INTERVAL_S == 0.08
    assert listener().pass_interval == PASS_INTERVAL_S
    assert listener(options={"SRTO_LATENCY": "500"}).pass_interval == PASS_INTERVAL_S


@pytest.mark.parametrize(("kwargs", "seconds"), [
    ({"latency_ms": 40}, 0.02),
    ({"options": {"SRTO_RCVLATENCY": "120"}}, 0.06),
    ({"latency_ms": 300, "options": {"SRTO_LATENCY": "50"}}, 0.025),  # Server.xml options win, as libsrt applies them
    ({"options": {"SRTO_LATENCY": "0"}}, MIN_PASS_INTERVAL_S),
])
def test_a_short_configured_latency_shortens_the_passes(kwargs: dict[str, object], seconds: float) -> None:
    assert listener(**kwargs).pass_interval == pytest.approx(seconds)
