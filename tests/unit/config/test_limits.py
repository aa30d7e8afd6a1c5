"""Managers/API/Limits as written in Server.xml: values, defaults, and what a bad value does."""

from __future__ import annotations

from kiln.config.limits import API_DEFAULTS, ConnectionLimits


def test_values_override_the_defaults() -> None:
    limits, problems = ConnectionLimits.parse({"maxConnectionsPerClient": "8", "requestTimeout": "2.5",
                                               "maxHeaderBytes": "4096", "maxBodyBytes": "1000"}, API_DEFAULTS)
    assert problems == []
    assert limits == ConnectionLimits(max_per_client=8, request_timeout=2.5, max_header_bytes=4096,
                                      max_body_bytes=1000)


def test_absent_values_keep_the_defaults() -> None:
    assert ConnectionLimits.parse({}, API_DEFAULTS) == (API_DEFAULTS, [])
    assert API_DEFAULTS.max_per_client == 64 and API_DEFAULTS.max_body_bytes == 1 << 20


def test_a_bad_value_keeps_its_default_and_is_reported() -> None:
    limits, problems = ConnectionLimits.parse({"requestTimeout": "soon", "maxBodyBytes": "-1"}, API_DEFAULTS)
    assert limits == API_DEFAULTS
    assert len(problems) == 2 and "Managers.API.Limits.RequestTimeout='soon'" in problems[0]
