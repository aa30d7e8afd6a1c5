"""OME's SRT streamid grammar (media-spec §1.2) as resolve_streamid implements it."""

from __future__ import annotations

import pytest

from kiln.media.net.srt.streamid import SrtTarget, StreamIdError, resolve_streamid

NO_MAP: dict[int, str] = {}


def resolve(streamid: str, port: int = 9999, stream_map: dict[int, str] | None = None) -> SrtTarget:
    return resolve_streamid(streamid, local_port=port, stream_map=NO_MAP if stream_map is None else stream_map)


def test_plain_three_components() -> None:
    assert resolve("default/app/stream") == SrtTarget("default", "app", "stream", None, "")


def test_four_components_name_a_playlist() -> None:
    target = resolve("default/app/stream/master")
    assert (target.app, target.stream, target.playlist) == ("app", "stream", "master")


def test_percent_encoded_as_encoders_send_it() -> None:
    # ffmpeg 5.1 passes streamid=default%2Fapp%2Fstream through without decoding it
    assert resolve("default%2Fapp%2Fstream") == SrtTarget("default", "app", "stream", None, "")


def test_percent_decoding_of_names_and_lowercase_hex() -> None:
    target = resolve("default%2fmy%20app%2Fst%C3%A9ream")
    assert (target.app, target.stream) == ("my app", "stéream")


def test_plus_is_not_a_space_and_a_stray_percent_stays() -> None:
    target = resolve("default/a+b/100%")
    assert (target.app, target.stream) == ("a+b", "100%")


def test_invalid_utf8_after_decoding() -> None:
    with pytest.raises(StreamIdError, match="UTF-8"):
        resolve("default/app/%FF%FE")


def test_query_string_is_kept_raw_and_not_counted_as_components() -> None:
    target = resolve("default/app/stream?policy=abc&signature=x/y")
    assert target == SrtTarget("default", "app", "stream", None, "policy=abc&signature=x/y")


def test_encoded_query_is_decoded_with_the_rest() -> None:
    target = resolve("default%2Fapp%2Fstream%3Fpolicy%3Dabc")
    assert (target.stream, target.query) == ("stream", "policy=abc")


def test_playlist_and_query() -> None:
    target = resolve("default/app/stream/llhls?x=1")
    assert (target.playlist, target.query) == ("llhls", "x=1")


def test_domain_as_host_keeps_case() -> None:
    assert resolve("Live.Example.com/app/stream").host == "Live.Example.com"


def test_host_with_port_in_new_form() -> None:
    target = resolve("default:9999/app/stream")
    assert (target.host, target.port) == ("default", 9999)


def test_access_control_user_key() -> None:
    target = resolve("#!::u=default/app/stream,m=publish")
    assert target == SrtTarget("default", "app", "stream", None, "")


def test_access_control_u_not_first_and_r_ignored() -> None:
    target = resolve("#!::r=other/thing,m=publish,u=default/app/stream")
    assert (target.host, target.app, target.stream) == ("default", "app", "stream")


def test_access_control_first_u_wins() -> None:
    assert resolve("#!::u=default/app/one,u=default/app/two").stream == "one"


def test_access_control_u_value_is_percent_decoded() -> None:
    assert resolve("#!::u=default%2Fapp%2Fstream,m=publish").stream == "stream"


def test_access_control_with_only_r_is_refused_with_a_reason() -> None:
    with pytest.raises(StreamIdError, match="no u= key.*r="):
        resolve("#!::r=default/app/stream,m=publish")


def test_access_control_empty_user() -> None:
    with pytest.raises(StreamIdError, match="empty u="):
        resolve("#!::u=,m=publish")


def test_access_control_prefix_alone() -> None:
    with pytest.raises(StreamIdError, match="empty streamid"):
        resolve("#!::")


def test_access_control_body_without_keys_is_a_path_as_in_ome() -> None:
    assert resolve("#!::default/app/stream").stream == "stream"


def test_empty_streamid_uses_stream_map_by_local_port() -> None:
    target = resolve("", port=9001, stream_map={9001: "default/app/mapped", 9002: "default/app/other"})
    assert target == SrtTarget("default", "app", "mapped", None, "")


def test_empty_streamid_without_map_entry() -> None:
    with pytest.raises(StreamIdError, match="no StreamMap entry for port 9003"):
        resolve("", port=9003, stream_map={9001: "default/app/mapped"})


def test_stream_map_path_is_not_percent_decoded() -> None:
    assert resolve("", port=1, stream_map={1: "default/app/a%20b"}).stream == "a%20b"


def test_stream_map_bad_path() -> None:
    with pytest.raises(StreamIdError, match="3 or|components"):
        resolve("", port=1, stream_map={1: "app/stream"})


def test_deprecated_full_url_form() -> None:
    target = resolve("srt%3A%2F%2Fexample.com%3A9999%2Fapp%2Fstream%3Fpolicy%3Dp")
    assert target == SrtTarget("example.com", "app", "stream", None, "policy=p", 9999)
    assert target.url == "srt://example.com:9999/app/stream?policy=p"


def test_deprecated_form_without_port_and_with_playlist() -> None:
    target = resolve("srt://default/app/stream/master")
    assert target == SrtTarget("default", "app", "stream", "master", "", None)


def test_deprecated_form_ipv6_host() -> None:
    target = resolve("srt://[::1]:9000/app/stream")
    assert (target.host, target.port) == ("::1", 9000)


def test_deprecated_form_missing_stream() -> None:
    with pytest.raises(StreamIdError, match="srt://"):
        resolve("srt://host:9000/app")


def test_deprecated_form_bad_port() -> None:
    with pytest.raises(StreamIdError, match="bad host|port"):
        resolve("srt://host:99999999/app/stream")


@pytest.mark.parametrize("streamid", ["app/stream", "stream", "default/app/stream/playlist/extra", "a/b/c/d/e"])
def test_wrong_number_of_components(streamid: str) -> None:
    with pytest.raises(StreamIdError, match="components"):
        resolve(streamid)


@pytest.mark.parametrize("streamid", ["default//stream", "/app/stream", "default/app/", "default/app/stream/"])
def test_empty_components(streamid: str) -> None:
    with pytest.raises(StreamIdError, match="empty component"):
        resolve(streamid)


@pytest.mark.parametrize("streamid", ["user@host/app/stream", "host:port/app/stream", "a:1:2/app/stream"])
def test_garbage_host(streamid: str) -> None:
    with pytest.raises(StreamIdError, match="bad host"):
        resolve(streamid)


def test_port_out_of_range() -> None:
    with pytest.raises(StreamIdError, match="port out of range"):
        resolve("default:70000/app/stream")


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        resolve("garbage")


def test_target_url_round_trip() -> None:
    assert resolve("default/app/stream/llhls?a=1").url == "srt://default/app/stream/llhls?a=1"
