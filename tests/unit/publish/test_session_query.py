"""A player's query values and file names are the player's to choose: ``_HLS_msn``, ``_HLS_part`` and
``session`` with digits ``int`` refuses (``²`` is ``isdigit`` but no number; 5,000 digits are more than ``int``
reads) are a 400 or a 401 like any other malformed value, never a ValueError: that was a 500 with a traceback in
the log (two: the fast lane's, then Starlette's), and the lease of such a session made every later prune raise,
so one request left a 500 every 5 s and leases no prune could end. A number in a file name longer than ``int``
reads is a 404 (no such file), not a 500."""

from __future__ import annotations

import asyncio

from kiln.media.publish.llhls.leases import PRUNE_EVERY_S
from kiln.media.publish.session_query import parse_session
from tests.unit.publish.test_llhls_fast_lane import Live

NOT_NUMBERS = ("%C2%B2", "%D9%A3%C2%B2", "9" * 5000)


def test_hls_directives_in_digits_int_refuses_are_a_400() -> None:
    async def run() -> None:
        live = Live()
        live.feed(2.5)
        session = await live.session()
        chunklist = f"/app/cam/chunklist_1_audio_{live.stream.key}_llhls.m3u8?session={session}"
        for bad in NOT_NUMBERS:
            for query in (f"_HLS_msn={bad}&_HLS_part=0", f"_HLS_msn=1&_HLS_part={bad}", f"_HLS_msn={bad}"):
                assert live.fast(f"{chunklist}&{query}") is None, query  # left to Starlette, which says why
                r = await live.client.get(f"{chunklist}&{query}")
                assert r.status_code == 400 and "must be a non-negative integer" in r.text, (query, r.text)
        await live.client.aclose()

    asyncio.run(run())


def test_a_session_id_int_refuses_is_a_401_and_leases_are_pruned_after_it() -> None:
    async def run() -> None:
        live = Live()
        live.feed(2.5)
        session = await live.session()
        key = live.stream.key
        bad_sessions = [f"{bad}_abcdefgh" for bad in NOT_NUMBERS]
        for bad in bad_sessions:
            for path in (f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?session={bad}",
                         f"/app/cam/init_1_audio_{key}_llhls.m4s?session={bad}"):
                assert live.fast(path) is None, path
                r = await live.client.get(path)
                assert (r.status_code, r.text) == (401, "session is required"), path
        leases = live.server.leases
        leases._pruned -= PRUNE_EVERY_S + 1  # the next request prunes
        r = await live.client.get(f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?session={session}")
        assert r.status_code == 200, r.text
        left = set(leases._leases)
        assert not left & {s.replace("%C2%B2", "²").replace("%D9%A3", "٣") for s in bad_sessions}, left
        await live.client.aclose()

    asyncio.run(run())


def test_parse_session_takes_only_ascii_digits_of_a_bounded_length() -> None:
    assert parse_session("12_abc") == (12, "abc")
    for bad in (None, "", "12", "12_", "_abc", "²_abc", "٣_abc", "1" * 19 + "_abc", "-1_abc", " 1_abc"):
        assert parse_session(bad) is None, bad


def test_numbers_in_file_names_longer_than_int_reads_are_a_404() -> None:
    async def run() -> None:
        live = Live()
        live.feed(2.5)
        session = await live.session()
        key = live.stream.key
        big = "9" * 5000
        for name in (f"chunklist_{big}_audio_{key}_llhls.m3u8", f"init_{big}_audio_{key}_llhls.m4s",
                     f"seg_1_{big}_audio_{key}_llhls.m4s", f"part_1_{big}_0_audio_{key}_llhls.m4s",
                     f"part_1_0_{big}_audio_{key}_llhls.m4s"):
            path = f"/app/cam/{name}?session={session}"
            assert live.fast(path) is None, name
            assert (await live.client.get(path)).status_code == 404, name
        await live.client.aclose()

    asyncio.run(run())


def test_a_new_session_never_takes_the_id_of_one_a_player_brought() -> None:
    async def run() -> None:
        live = Live()
        publisher = live.publisher
        first = publisher.new_session(live.stream)
        adopted = publisher.touch(f"{first.id + 1}_abcdefgh", live.stream)  # an id from before a restart
        assert adopted is not None
        made = publisher.new_session(live.stream)
        assert made.id == first.id + 2 and publisher.sessions[adopted.id] is adopted
        await live.client.aclose()

    asyncio.run(run())
