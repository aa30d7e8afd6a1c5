"""How SrtSender cuts data into live messages: whole TS packets, never more than 1316 bytes."""

from __future__ import annotations

import pytest

from kiln.media.net.srt.sender import message_size, split_messages


@pytest.mark.parametrize(("payload", "size"), [(1316, 1316), (1456, 1316), (1000, 940), (188, 188), (100, 100)])
def test_message_size_is_whole_ts_packets(payload: int, size: int) -> None:
    assert message_size(payload) == size


def test_split_keeps_ts_alignment() -> None:
    data = bytes(range(188)) * 20  # 20 TS packets
    parts = split_messages(data, 1316)
    assert [len(p) for p in parts] == [1316, 1316, 188 * 6]
    assert b"".join(parts) == data
    assert all(len(p) % 188 == 0 for p in parts)


def test_split_of_unaligned_data_sends_the_remainder_last() -> None:
    parts = split_messages(b"x" * 2000, 1316)
    assert [len(p) for p in parts] == [1316, 684]


def test_split_of_nothing() -> None:
    assert split_messages(b"", 1316) == []
