"""A scheduled channel's items are files under MediaRootDir, whatever their file:// URL spells."""

from __future__ import annotations

from pathlib import Path

from kiln.events.schedules import Item
from kiln.media.ingest.schedule.worker import _Lengths


def test_an_absolute_file_url_names_a_file_under_the_media_root(tmp_path: Path) -> None:
    lengths = _Lengths(tmp_path / "media")
    assert lengths.path(Item("file://a/b.mp4")) == tmp_path / "media" / "a" / "b.mp4"
    # OME appends the URL's path to MediaRootDir: file:///etc/passwd is <root>/etc/passwd, never /etc/passwd
    assert lengths.path(Item("file:///etc/passwd")) == tmp_path / "media" / "etc" / "passwd"
    (tmp_path / "outside.mp4").write_bytes(b"not media")
    assert lengths(Item(f"file://{tmp_path}/outside.mp4")) == 0  # looked for under the root: not there
