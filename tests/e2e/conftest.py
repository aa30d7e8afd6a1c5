"""Fixtures that start a real ``kiln serve`` on free ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml


@pytest.fixture
def kiln_factory(tmp_path: Path) -> Iterator[Callable[..., KilnProcess]]:
    started: list[KilnProcess] = []

    def make(xml: str | None = None, ports: Ports | None = None, workdir: Path | None = None,
             **xml_options: object) -> KilnProcess:
        ports = ports or Ports()
        workdir = workdir or tmp_path / f"kiln{len(started)}"
        workdir.mkdir(parents=True, exist_ok=True)
        proc = KilnProcess(workdir, xml or server_xml(ports, workdir / "records", **xml_options), ports)
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.close()


@pytest.fixture
def kiln(kiln_factory: Callable[..., KilnProcess]) -> KilnProcess:
    return kiln_factory()
