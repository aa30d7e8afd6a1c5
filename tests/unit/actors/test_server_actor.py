"""The server actor works from the vhosts its creator hands in: it journals what the domain decides
and starts or stops vhost actors, without reading any projection."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pykka
import pytest

from kiln.actors.base import ask_blocking
from kiln.actors.commands import CreateVhosts, DeleteVhost, ReloadCertificates
from kiln.actors.directory import Directory
from kiln.actors.server import ServerActor
from kiln.domain.batch import ItemResult
from kiln.domain.errors import Conflict, Failed, NotFound, ReadOnly
from kiln.domain.server import VhostState
from kiln.eventlog import Encoded, encode_events
from kiln.events import catalog as ce
from kiln.events.base import Event


@dataclass
class Journal:
    appended: list[list[Event]] = field(default_factory=list)

    def encode(self, events: Sequence[Event]) -> Encoded:
        return encode_events(events)

    def emit(self, events: Sequence[Event] | Encoded) -> Future[Any]:
        self.appended.append(list(events.events if isinstance(events, Encoded) else events))
        done: Future[Any] = Future()
        done.set_result(None)
        return done


@dataclass
class Stats:
    vhosts: list[str] = field(default_factory=list)

    def vhost_created(self, vhost: str) -> None:
        self.vhosts.append(vhost)

    def vhost_deleted(self, vhost: str) -> None:
        self.vhosts.remove(vhost)


class NoCatalog:
    def vhost_states(self) -> list[VhostState]:
        raise AssertionError("the server actor read the catalog although its vhosts were handed in")


@dataclass
class Deps:
    events: Journal = field(default_factory=Journal)
    directory: Directory = field(default_factory=Directory)
    stats: Stats = field(default_factory=Stats)
    catalog: NoCatalog = field(default_factory=NoCatalog)
    started: list[pykka.ActorRef[Any]] = field(default_factory=list)


@pytest.fixture
def deps() -> Iterator[Deps]:
    found = Deps()
    yield found
    for ref in found.started:  # the server actor stops its vhost actors
        ref.stop(block=True, timeout=30)


def start(deps: Deps, *vhosts: VhostState) -> Any:
    ref = ServerActor.start(deps, list(vhosts))
    deps.started.append(ref)
    return ref


def test_starts_the_vhosts_handed_in_and_refuses_to_delete_a_read_only_one(deps: Deps) -> None:
    ref = start(deps, VhostState("default", {"name": "default"}, True))
    assert ask_blocking(ref, ReloadCertificates(None)) is None  # the actor is up and answering
    assert deps.directory.vhost("default") is not None and deps.stats.vhosts == ["default"]
    with pytest.raises(ReadOnly, match=r"read-only: \[default\]"):
        ask_blocking(ref, DeleteVhost("default"))
    with pytest.raises(NotFound, match=r"virtual host: \[nope\]"):
        ask_blocking(ref, DeleteVhost("nope"))
    assert deps.events.appended == []


def test_create_journals_each_accepted_vhost_and_starts_its_actor(deps: Deps) -> None:
    ref = start(deps, VhostState("default", {"name": "default"}, True))
    results = ask_blocking(ref, CreateVhosts([{"name": "v"}, {"name": "default"}]))
    assert results[0] == ItemResult(response={"name": "v"})
    assert isinstance(results[1].error, Conflict)
    assert [type(ev) for batch in deps.events.appended for ev in batch] == [ce.VhostCreated]
    assert deps.directory.vhost("v") is not None and deps.stats.vhosts == ["default", "v"]
    assert ask_blocking(ref, DeleteVhost("v")) is None
    assert deps.events.appended[-1] == [ce.VhostDeleted("v")]
    assert deps.directory.vhost("v") is None


def test_one_request_creating_several_vhosts_is_one_append(deps: Deps) -> None:
    """One append is one commit: a request's vhosts wait for one fsync, not one each."""
    ref = start(deps)
    results = ask_blocking(ref, CreateVhosts([{"name": "a"}, {"name": "b"}, {"name": "c"}]))
    assert [r.error for r in results] == [None, None, None]
    [appended] = deps.events.appended
    assert [(type(ev), getattr(ev, "name", None)) for ev in appended] == [(ce.VhostCreated, n) for n in "abc"]
    assert [deps.directory.vhost(n) is not None for n in "abc"] == [True, True, True]


def test_certificate_reload_reads_the_vhost_config_the_actor_owns(deps: Deps, tmp_path: Any) -> None:
    tls = {"certPath": str(tmp_path / "missing.crt"), "keyPath": str(tmp_path / "missing.key")}
    ref = start(deps, VhostState("secure", {"name": "secure", "host": {"names": ["*"], "tls": tls}}, True),
                VhostState("plain", {"name": "plain"}, True))
    assert ask_blocking(ref, ReloadCertificates("plain")) is None
    with pytest.raises(Failed, match="Failed to reload certificate"):
        ask_blocking(ref, ReloadCertificates(None))


@dataclass
class Listeners:
    """A listener serving some vhosts' certificates: records each reload, fails for ``broken``."""

    broken: set[str] = field(default_factory=set)
    reloaded: list[str] = field(default_factory=list)
    preloaded: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def reload_certificate(self, vhost: str) -> bool:
        self.reloaded.append(vhost)
        return vhost not in self.broken

    def preload(self, vhost: str, config: dict[str, Any]) -> None:
        self.preloaded.append((vhost, config))


def test_a_vhost_created_through_the_api_has_its_certificate_loaded_before_the_answer(deps: Deps) -> None:
    """The listeners' SNI callback runs on the event loop and reads no file: the actor loads the chain."""
    listeners = Listeners()
    ref = ServerActor.start(deps, [], listeners)
    deps.started.append(ref)
    tls = {"certPath": "/x/c.crt", "keyPath": "/x/c.key"}
    ask_blocking(ref, CreateVhosts([{"name": "c", "host": {"names": ["c.test"], "tls": tls}}]))
    assert [(name, config["host"]["tls"]) for name, config in listeners.preloaded] == [("c", tls)]


def test_certificate_reload_reloads_the_listeners_serving_the_vhost(deps: Deps, tmp_path: Any) -> None:
    cert, key = tmp_path / "v.crt", tmp_path / "v.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=v",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    tls = {"certPath": str(cert), "keyPath": str(key)}
    listeners = Listeners()
    ref = ServerActor.start(deps, [VhostState("secure", {"name": "secure", "host": {"names": ["*"], "tls": tls}}),
                                   VhostState("plain", {"name": "plain"})], listeners)
    deps.started.append(ref)
    assert ask_blocking(ref, ReloadCertificates("secure")) is None
    assert ask_blocking(ref, ReloadCertificates(None)) is None
    assert listeners.reloaded == ["secure", "secure", "plain"]
    listeners.broken.add("secure")  # the files load, the listener refuses them: the reload failed
    with pytest.raises(Failed, match="Failed to reload certificate"):
        ask_blocking(ref, ReloadCertificates("secure"))
    cert.write_text("not a certificate")  # unreadable files never reach the listener
    listeners.reloaded.clear()
    with pytest.raises(Failed, match="Failed to reload certificate"):
        ask_blocking(ref, ReloadCertificates("secure"))
    assert listeners.reloaded == []


def test_creating_or_starting_a_shadowed_vhost_warns_naming_the_vhost_that_takes_its_hosts(
        deps: Deps, caplog: pytest.LogCaptureFixture) -> None:
    star = {"name": "default", "host": {"names": ["*"]}}
    with caplog.at_level(logging.WARNING, logger="kiln.actors.server"):
        ref = start(deps, VhostState("default", star, True),
                    VhostState("old", {"name": "old", "host": {"names": ["old.example.com"]}}, True))
        ask_blocking(ref, CreateVhosts([{"name": "tv", "host": {"names": ["tv.example.com", "*.tv.example.com"]}},
                                        {"name": "free"}]))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("vhost shadowed vhost=old shadowed_by=default host_names=old.example.com:")
    assert warnings[1].startswith("vhost shadowed vhost=tv shadowed_by=default "
                                  "host_names=tv.example.com,*.tv.example.com:")


def test_certificate_reload_reads_relative_paths_against_the_config_directory(deps: Deps, tmp_path: Any,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=v",
                    "-keyout", str(config_dir / "v.key"), "-out", str(config_dir / "v.crt")],
                   check=True, capture_output=True, timeout=60)
    monkeypatch.chdir(tmp_path)  # the working directory has no v.crt: only Server.xml's directory does
    tls = {"certPath": "v.crt", "keyPath": "v.key"}
    vhosts = [VhostState("secure", {"name": "secure", "host": {"names": ["*"], "tls": tls}})]
    ref = ServerActor.start(deps, vhosts, None, resolve_path=lambda value: config_dir / value)
    deps.started.append(ref)
    assert ask_blocking(ref, ReloadCertificates("secure")) is None
    unresolved = ServerActor.start(deps, vhosts)  # paths read against the working directory: not found
    deps.started.append(unresolved)
    with pytest.raises(Failed, match="Failed to reload certificate"):
        ask_blocking(unresolved, ReloadCertificates("secure"))
