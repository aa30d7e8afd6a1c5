"""Writable roots: what counts as inside (``..``, symlinks and macros resolved as the file system will)."""

from __future__ import annotations

from pathlib import Path

from kiln.config.write_roots import OME_SAMPLE_ROOTS, WriteRoots, config_file_roots


def roots(tmp_path: Path, configured: list[str] | None = None, app_roots: tuple[str, ...] = ()) -> WriteRoots:
    return WriteRoots.build(configured or [], tmp_path / "data", app_roots, lambda p: tmp_path / p)


def test_defaults_are_the_data_dir_tmp_and_the_config_root_paths(tmp_path: Path) -> None:
    r = roots(tmp_path, app_roots=("/srv/recordings",))
    assert set(r.roots) >= {str((tmp_path / "data").resolve()), "/srv/recordings", *OME_SAMPLE_ROOTS}
    assert r.allows("/srv/recordings/a/b.mp4") and r.allows("/tmp/d1/") and r.allows(tmp_path / "data" / "x")
    assert not r.allows("/etc/passwd") and not r.allows("/srv/recordings2/x") and not r.allows("/srv")


def test_configured_roots_replace_the_defaults_and_resolve_against_the_config_dir(tmp_path: Path) -> None:
    r = roots(tmp_path, ["media", "/var/kiln"])
    assert r.allows(tmp_path / "media" / "x.ts") and r.allows("/var/kiln/a")
    assert not r.allows("/tmp/elsewhere") and not r.allows(tmp_path / "data" / "x")


def test_dot_dot_and_symlinks_are_resolved(tmp_path: Path) -> None:
    r = roots(tmp_path, ["media"])
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "escape").symlink_to("/etc")
    assert not r.allows(f"{tmp_path}/media/../outside.mp4")
    assert not r.allows(f"{tmp_path}/media/escape/cron.d/x")
    assert r.allows(f"{tmp_path}/media/a/../b.mp4")


def test_a_macro_stands_for_one_plain_name(tmp_path: Path) -> None:
    r = roots(tmp_path, ["media"])
    assert r.allows(f"{tmp_path}/media/${{Stream}}/${{Sequence}}.mp4")
    assert not r.allows(f"{tmp_path}/media/${{Stream}}/../../x.mp4")


def test_known_names_are_put_in_their_macros(tmp_path: Path) -> None:
    r = roots(tmp_path, ["media"])
    path = f"{tmp_path}/media/${{Stream}}/${{Sequence}}.mp4"
    assert r.allows(path, {"Stream": "cam"})
    assert not r.allows(path, {"Stream": "../../../etc"})  # a stream published as ../../../etc
    assert not r.allows(f"{tmp_path}/media/${{SourceStream}}.mp4", {"Stream": "../x"})  # any *Stream* macro


def test_record_paths_are_placed_as_the_recorder_places_them(tmp_path: Path) -> None:
    r = roots(tmp_path)
    assert r.record_path("/srv/rec", "/a/b.mp4") == "/srv/rec/a/b.mp4"
    assert r.record_path("", "a/b.mp4") == str(tmp_path / "data" / "records" / "a" / "b.mp4")
    assert r.record_path("", "/abs.mp4") == "/abs.mp4"
    assert not r.allows(r.record_path("", "../../../../../../../../etc/x.mp4"))


def test_config_file_roots_walks_every_application() -> None:
    vhosts = [{"name": "a", "applications": {"application": [
        {"name": "x", "publishers": {"file": {"rootPath": "/r1"}}}, {"name": "y", "publishers": {"push": {}}}]}},
        {"name": "b", "applications": {"application": {"name": "z", "publishers": {"file": {"rootPath": " /r2 "}}}}}]
    assert config_file_roots(vhosts) == ["/r1", "/r2"]


def test_config_file_roots_take_the_schedule_files_dirs() -> None:
    vhosts = [{"name": "a", "applications": {"application": [
        {"name": "x", "providers": {"schedule": {"mediaRootDir": "/m", "scheduleFilesDir": "/srv/sch"}}},
        {"name": "y", "providers": {"schedule": {}}}]}}]
    assert config_file_roots(vhosts) == ["/srv/sch"]


def test_config_file_roots_take_the_mux_files_dirs() -> None:
    vhosts = [{"name": "a", "applications": {"application": [
        {"name": "x", "providers": {"multiplex": {"muxFilesDir": "/srv/mux"}, "schedule": {"scheduleFilesDir": "s"}}},
        {"name": "y", "providers": {"multiplex": {}}}]}}]
    assert config_file_roots(vhosts) == ["s", "/srv/mux"]
