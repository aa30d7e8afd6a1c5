"""Media TLS certificates chosen by SNI among the vhosts: which vhost a server name gets, the
fallback, vhosts appearing and going at run time, ALPN, chains, and reloads that keep the old
chain when the new files are broken. Handshakes run in memory against real OpenSSL."""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kiln.config import tls as tls_module
from kiln.config.tls import CertificateFiles, SniCertificates, load_chain
from kiln.regular_files import read_regular

H2 = ["h2", "http/1.1"]


def make_cert(directory: Path, cn: str) -> tuple[Path, Path]:
    cert, key = directory / f"{cn}.crt", directory / f"{cn}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={cn}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    for cn in ("alpha", "beta", "gamma"):
        make_cert(directory, cn)
    return directory


def resolve_in(base: Path) -> Callable[[str], Path]:
    return lambda value: Path(value) if Path(value).is_absolute() else base / value


@dataclass
class View:
    name: str
    config: dict[str, Any]


@dataclass
class Catalog:
    """The vhosts in match order, editable as the API would."""

    views: list[View] = field(default_factory=list)

    def vhost_names(self) -> list[str]:
        return [view.name for view in self.views]

    def vhost(self, name: str) -> View | None:
        return next((view for view in self.views if view.name == name), None)

    def add(self, name: str, names: list[str], cn: str | None) -> None:
        host: dict[str, Any] = {"names": names}
        if cn is not None:
            host["tls"] = {"certPath": f"{cn}.crt", "keyPath": f"{cn}.key"}
        self.views.append(View(name, {"name": name, "host": host}))


def handshake(server: ssl.SSLContext, server_name: str | None,
              offered: list[str] | None = None) -> tuple[str | None, str]:
    """An in-memory TLS handshake; returns (the ALPN protocol chosen, the CN the server presented)."""
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    client.set_alpn_protocols(offered or H2)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_side=False, server_hostname=server_name)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (c, s):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if c.version() is not None and s.version() is not None:
            break
    der = c.getpeercert(binary_form=True)
    assert der is not None
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=ssl.DER_cert_to_PEM_cert(der),
                             capture_output=True, text=True, check=True, timeout=30).stdout
    return c.selected_alpn_protocol(), subject.strip().rsplit("=", 1)[-1].strip()


def cn_for(context: ssl.SSLContext, server_name: str | None) -> str:
    return handshake(context, server_name)[1]


def test_certificate_files_resolve_relative_paths_against_the_config_directory() -> None:
    config = {"host": {"tls": {"certPath": "tls/s.crt", "keyPath": "/abs/s.key", "chainCertPath": "tls/c.crt"}}}
    assert CertificateFiles.of(config, resolve_in(Path("/etc/kiln"))) == \
        CertificateFiles(Path("/etc/kiln/tls/s.crt"), Path("/abs/s.key"), Path("/etc/kiln/tls/c.crt"))
    for config in ({}, {"host": "odd"}, {"host": {"tls": {"certPath": "c.crt"}}}, {"host": {"tls": {}}}):
        assert CertificateFiles.of(config, resolve_in(Path("/"))) is None


def test_the_server_name_chooses_the_vhost_certificate_and_others_get_the_first_tls_vhost(cert_dir: Path) -> None:
    catalog = Catalog()
    catalog.add("plain", ["plain.example.com"], None)
    catalog.add("a", ["a.example.com", "*.a.example.com"], "alpha")
    catalog.add("b", ["b.example.com"], "beta")
    context = SniCertificates(catalog, resolve_in(cert_dir)).listener_context(H2)
    assert context is not None
    assert cn_for(context, "a.example.com") == "alpha"
    assert cn_for(context, "live.a.example.com") == "alpha"
    assert cn_for(context, "B.Example.com") == "beta"
    assert cn_for(context, "plain.example.com") == "alpha"  # its vhost has no TLS: the first TLS vhost's
    assert cn_for(context, "unknown.example.org") == "alpha"
    assert cn_for(context, None) == "alpha"


def test_alpn_is_answered_by_the_chosen_vhost_context(cert_dir: Path) -> None:
    catalog = Catalog()
    catalog.add("a", ["a.example.com"], "alpha")
    catalog.add("b", ["b.example.com"], "beta")
    certificates = SniCertificates(catalog, resolve_in(cert_dir))
    h2, http11 = certificates.listener_context(H2), certificates.listener_context(["http/1.1"])
    assert h2 is not None and http11 is not None
    assert handshake(h2, "b.example.com") == ("h2", "beta")
    assert handshake(h2, "b.example.com", ["http/1.1"]) == ("http/1.1", "beta")
    assert handshake(http11, "b.example.com") == ("http/1.1", "beta")  # never h2 on an HTTP/1.1-only port


def test_vhosts_created_and_deleted_at_run_time_are_seen_by_the_next_handshake(cert_dir: Path) -> None:
    catalog = Catalog()
    catalog.add("a", ["a.example.com"], "alpha")
    certificates = SniCertificates(catalog, resolve_in(cert_dir))
    context = certificates.listener_context(H2)
    assert context is not None
    assert cn_for(context, "c.example.com") == "alpha"
    catalog.add("c", ["c.example.com"], "gamma")
    certificates.preload("c", catalog.views[-1].config)  # the server actor, as the API creates the vhost
    assert cn_for(context, "c.example.com") == "gamma"
    catalog.views = [view for view in catalog.views if view.name != "a"]
    assert cn_for(context, "a.example.com") == "gamma"  # a is gone: the first TLS vhost now is c


def test_no_vhost_with_a_loadable_certificate_opens_no_listener(cert_dir: Path, tmp_path: Path) -> None:
    catalog = Catalog()
    catalog.add("plain", ["*"], None)
    assert SniCertificates(catalog, resolve_in(cert_dir)).listener_context(H2) is None
    catalog.add("broken", ["*"], "missing")
    assert SniCertificates(catalog, resolve_in(tmp_path)).listener_context(H2) is None


def test_a_vhost_whose_files_do_not_load_falls_back_to_the_first_that_does(cert_dir: Path) -> None:
    catalog = Catalog()
    catalog.add("broken", ["broken.example.com"], "missing")
    catalog.add("b", ["b.example.com"], "beta")
    context = SniCertificates(catalog, resolve_in(cert_dir)).listener_context(H2)
    assert context is not None
    assert cn_for(context, None) == "beta"


def test_a_chain_file_is_sent_after_the_certificate(cert_dir: Path) -> None:
    catalog = Catalog([View("a", {"name": "a", "host": {"names": ["*"], "tls": {
        "certPath": "alpha.crt", "keyPath": "alpha.key", "chainCertPath": "beta.crt"}}})])
    context = SniCertificates(catalog, resolve_in(cert_dir)).listener_context(H2)
    assert context is not None
    assert cn_for(context, "x") == "alpha"


def test_reload_swaps_the_chain_for_new_handshakes_and_a_broken_file_keeps_the_old(cert_dir: Path,
                                                                                  tmp_path: Path) -> None:
    for suffix in ("crt", "key"):
        (tmp_path / f"live.{suffix}").write_bytes((cert_dir / f"alpha.{suffix}").read_bytes())
    catalog = Catalog()
    catalog.add("plain", ["plain.example.com"], None)
    catalog.add("v", ["v.example.com"], "live")
    certificates = SniCertificates(catalog, resolve_in(tmp_path))
    context = certificates.listener_context(H2)
    assert context is not None
    assert cn_for(context, "v.example.com") == "alpha"
    for suffix in ("crt", "key"):
        (tmp_path / f"live.{suffix}").write_bytes((cert_dir / f"beta.{suffix}").read_bytes())
    assert cn_for(context, "v.example.com") == "alpha"  # the files changed, but nothing reloaded yet
    assert certificates.reload_certificate("plain")  # no Host/TLS: nothing to reload
    assert certificates.reload_certificate("unknown")
    assert cn_for(context, "v.example.com") == "alpha"
    assert certificates.reload_certificate("v")
    assert cn_for(context, "v.example.com") == "beta"
    assert cn_for(context, None) == "beta"
    (tmp_path / "live.crt").write_text("not a certificate")
    assert not certificates.reload_certificate("v")
    assert cn_for(context, "v.example.com") == "beta"


def test_opening_a_listener_loads_every_vhost_chain_so_a_file_changed_later_waits_for_a_reload(
        cert_dir: Path, tmp_path: Path) -> None:
    for suffix in ("crt", "key"):
        (tmp_path / f"live.{suffix}").write_bytes((cert_dir / f"alpha.{suffix}").read_bytes())
        (tmp_path / f"other.{suffix}").write_bytes((cert_dir / f"gamma.{suffix}").read_bytes())
    catalog = Catalog()
    catalog.add("first", ["first.example.com"], "other")
    catalog.add("v", ["v.example.com"], "live")
    certificates = SniCertificates(catalog, resolve_in(tmp_path))
    context = certificates.listener_context(H2)
    assert context is not None
    for suffix in ("crt", "key"):
        (tmp_path / f"live.{suffix}").write_bytes((cert_dir / f"beta.{suffix}").read_bytes())
    assert cn_for(context, "v.example.com") == "alpha"  # v's first handshake: the chain loaded at open
    assert certificates.reload_certificate("v")
    assert cn_for(context, "v.example.com") == "beta"


def test_files_that_failed_are_tried_again_on_a_reload_not_on_every_handshake(cert_dir: Path, tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    for suffix in ("crt", "key"):
        (tmp_path / f"first.{suffix}").write_bytes((cert_dir / f"gamma.{suffix}").read_bytes())
    catalog = Catalog()
    catalog.add("first", ["first.example.com"], "first")
    catalog.add("v", ["v.example.com"], "late")
    certificates = SniCertificates(catalog, resolve_in(tmp_path))
    context = certificates.listener_context(H2)
    assert context is not None
    assert [cn_for(context, "v.example.com") for _ in range(3)] == ["gamma"] * 3  # v's files are missing
    assert sum("could not be loaded vhost=v" in r.getMessage() for r in caplog.records) == 1
    for suffix in ("crt", "key"):
        (tmp_path / f"late.{suffix}").write_bytes((cert_dir / f"beta.{suffix}").read_bytes())
    assert cn_for(context, "v.example.com") == "gamma"  # until a reload
    assert certificates.reload_certificate("v")
    assert cn_for(context, "v.example.com") == "beta"


def test_a_fifo_in_place_of_a_certificate_key_or_chain_is_refused_without_opening_it(cert_dir: Path,
                                                                                    tmp_path: Path) -> None:
    """open() of a FIFO waits for a writer: nothing may open one (the SNI callback runs on the event loop)."""
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    cert, key = cert_dir / "alpha.crt", cert_dir / "alpha.key"
    for files in ((fifo, key, None), (cert, fifo, None), (cert, key, fifo)):
        with pytest.raises(OSError, match=f"not a regular file: {fifo}"):
            load_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), *files)
    with pytest.raises(OSError, match="not a regular file"):
        read_regular(fifo)


def test_a_fifo_where_the_combined_chain_is_written_is_replaced_not_opened(cert_dir: Path, tmp_path: Path) -> None:
    for name in ("alpha.crt", "alpha.key", "beta.crt"):
        (tmp_path / name).write_bytes((cert_dir / name).read_bytes())
    combined = tmp_path / ".alpha.crt.fullchain.pem"
    os.mkfifo(combined)
    load_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), tmp_path / "alpha.crt", tmp_path / "alpha.key",
               tmp_path / "beta.crt")
    assert stat.S_ISREG(combined.stat().st_mode)
    assert combined.read_bytes() == (cert_dir / "alpha.crt").read_bytes() + b"\n" + (cert_dir / "beta.crt").read_bytes()


def test_an_encrypted_key_is_refused_at_once_instead_of_prompting_for_a_passphrase(cert_dir: Path,
                                                                                   tmp_path: Path) -> None:
    """Without a password callback OpenSSL asks on the terminal, or on stdin without one, and waits."""
    key = tmp_path / "locked.key"
    subprocess.run(["openssl", "pkey", "-in", str(cert_dir / "alpha.key"), "-aes256", "-passout", "pass:secret",
                    "-out", str(key)], check=True, capture_output=True, timeout=60)
    script = ("import ssl, sys; from pathlib import Path; from kiln.config.tls import load_chain\n"
              "try:\n    load_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), Path(sys.argv[1]), Path(sys.argv[2]))\n"
              "except ssl.SSLError as exc:\n    print('refused', exc)\n")
    # stdin a pipe nobody writes to, no controlling terminal: a prompt would wait here until the timeout
    with subprocess.Popen([sys.executable, "-c", script, str(cert_dir / "alpha.crt"), str(key)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True) as child:
        assert child.stdout is not None and child.stderr is not None
        try:
            child.wait(timeout=10)  # stdin stays open: a prompt would wait here
        finally:
            child.kill()
            out, err = child.stdout.read().decode(), child.stderr.read().decode()
    assert child.returncode == 0 and out.startswith("refused") and "encrypted" in out, (out, err)


def test_a_handshake_reads_no_file_a_vhost_not_loaded_yet_gets_the_first_tls_vhost(
        cert_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SNI callback runs on the event loop: reading a certificate there (a FIFO, a hung disk) held the
    whole server. A vhost the server actor has not loaded yet is served the first TLS vhost's chain."""
    catalog = Catalog()
    catalog.add("a", ["a.example.com"], "alpha")
    certificates = SniCertificates(catalog, resolve_in(cert_dir))
    context = certificates.listener_context(H2)
    assert context is not None
    reads: list[Path] = []
    monkeypatch.setattr(tls_module, "load_chain", lambda _ctx, cert, *_: reads.append(cert))
    catalog.add("c", ["c.example.com"], "gamma")
    assert cn_for(context, "c.example.com") == "alpha"
    assert reads == []
