"""Socket options by name (OME's Bind/…/SRT/Options), checked before any socket exists."""

from __future__ import annotations

import pytest

from kiln.media.net.srt.abi import SockOpt
from kiln.media.net.srt.options import parse_options


def test_typed_values_in_order() -> None:
    parsed = parse_options({"SRTO_LATENCY": "200", "SRTO_PASSPHRASE": "0123456789", "SRTO_MAXBW": "5000000000",
                            "SRTO_TLPKTDROP": "false", "SRTO_TRANSTYPE": "live", "SRTO_LINGER": "0"})
    assert [(spec.opt, spec.kind, value) for spec, value in parsed] == [
        (SockOpt.LATENCY, "int32", 200),
        (SockOpt.PASSPHRASE, "string", "0123456789"),
        (SockOpt.MAXBW, "int64", 5_000_000_000),
        (SockOpt.TLPKTDROP, "bool", False),
        (SockOpt.TRANSTYPE, "transtype", 0),
        (SockOpt.LINGER, "linger", 0),
    ]


def test_numbers_tolerate_surrounding_whitespace() -> None:
    assert parse_options({" SRTO_PEERIDLETIMEO ": " 3000 "})[0][1] == 3000


@pytest.mark.parametrize(("options", "message"), [
    ({"SRTO_BOGUS": "1"}, "SRTO_BOGUS: no such SRT option"),
    ({"srto_latency": "1"}, "no such SRT option"),
    ({"SRTO_RCVSYN": "true"}, "blocking mode"),
    ({"SRTO_SNDSYN": "true"}, "blocking mode"),
    ({"SRTO_STATE": "1"}, "read-only"),
    ({"SRTO_LATENCY": "12ms"}, "SRTO_LATENCY: not an integer"),
    ({"SRTO_LATENCY": "-5"}, "must not be negative"),
    ({"SRTO_LATENCY": "99999999999"}, "out of range"),
    ({"SRTO_TLPKTDROP": "maybe"}, "not a boolean"),
    ({"SRTO_PASSPHRASE": "short"}, "10 to 79"),
    ({"SRTO_PASSPHRASE": "x" * 80}, "10 to 79"),
    ({"SRTO_PBKEYLEN": "8"}, "key length"),
    ({"SRTO_STREAMID": "x" * 513}, "512"),
    ({"SRTO_TRANSTYPE": "2"}, "transmission type"),
    ({"SRTO_PAYLOADSIZE": "2000"}, "1456"),
])
def test_bad_options_name_the_key(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_options(options)


def test_empty_passphrase_means_no_encryption() -> None:
    assert parse_options({"SRTO_PASSPHRASE": ""})[0][1] == ""
