"""The media TLS ports' certificates: one ``ssl.SSLContext`` per vhost with ``Host/TLS``, chosen by SNI.

A TLS client names the host it wants in its ClientHello (SNI); the listener's ``sni_callback``
matches that name against each vhost's Host/Names with Kiln's host matcher (the first vhost that
matches wins, as for routing) and hands the handshake that vhost's context. No name, or a name no
TLS vhost matches, gets the first vhost with TLS. The vhosts are read from the catalog at
handshake time, so vhosts created or deleted through the API are seen by the next connection;
contexts are cached per vhost and per certificate paths. The callback runs on the event loop, so it
never reads a file: a listener loads every vhost's chain when it opens, and the server actor loads a
vhost's (``preload``) when the API creates it, before the API answers. ``reload_certificate`` builds a new
context from the files and swaps it in only when it loads: new handshakes get the new chain, open
connections keep theirs, and a broken file leaves the old one serving.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kiln.config.hosts import ConfiguredVhost, host_matches, host_names
from kiln.regular_files import read_regular, require_regular, write_replacing

log = logging.getLogger(__name__)


class TlsVhosts(Protocol):
    """What certificate choice reads: the vhosts in match order and each one's OME JSON (the catalog)."""

    def vhost_names(self) -> Iterable[str]: ...

    def vhost(self, name: str) -> ConfiguredVhost | None: ...


@dataclass(frozen=True)
class CertificateFiles:
    """A vhost's ``Host/TLS`` files, resolved against Server.xml's directory."""

    cert_path: Path
    key_path: Path
    chain_path: Path | None = None

    @classmethod
    def of(cls, config: Mapping[str, Any], resolve: Callable[[str], Path]) -> CertificateFiles | None:
        """The files a vhost's OME JSON names; None without both a CertPath and a KeyPath."""
        host = config.get("host")
        tls = host.get("tls") if isinstance(host, Mapping) else None
        if not isinstance(tls, Mapping) or not tls.get("certPath") or not tls.get("keyPath"):
            return None
        chain = tls.get("chainCertPath")
        return cls(resolve(str(tls["certPath"])), resolve(str(tls["keyPath"])), resolve(str(chain)) if chain else None)

    def load_into(self, context: ssl.SSLContext) -> None:
        """Load the chain into ``context``; raises OSError/ssl.SSLError (``context`` keeps what it had).
        Paths that are not regular files are refused (OSError) before anything opens them."""
        load_chain(context, self.cert_path, self.key_path, self.chain_path)


def _no_passphrase() -> bytes:
    """An encrypted key: refused. Without a password callback OpenSSL asks for the passphrase on the
    terminal (or stdin) and waits for an answer, holding whichever thread or loop loads the key."""
    raise ssl.SSLError("the private key is encrypted: Kiln does not prompt for a passphrase")


def load_chain(context: ssl.SSLContext, cert: Path, key: Path | None, chain: Path | None = None) -> None:
    """Load ``cert`` (with ``chain`` appended after it, as clients expect the full chain) and ``key`` into
    ``context``; every path must be a regular file. Raises OSError or ssl.SSLError."""
    for path in (cert, key, chain):
        if path is not None:
            require_regular(path)
    if chain is None:
        context.load_cert_chain(cert, key, password=_no_passphrase)
        return
    combined = (key or cert).parent / f".{cert.name}.fullchain.pem"
    # replaces whatever stood there (a FIFO too) without opening it; a temporary name per thread: reloads may cross
    write_replacing(combined, read_regular(cert) + b"\n" + read_regular(chain))
    context.load_cert_chain(combined, key, password=_no_passphrase)


def server_context(alpn: list[str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # HTTP/2 requires TLS 1.2 or later (RFC 9113 9.2)
    context.set_alpn_protocols(alpn)
    return context


@dataclass
class SniCertificates:
    """Per-vhost contexts for the media TLS ports, reloadable from any thread (the server actor calls
    ``reload_certificate`` on ``:reloadCertificate``). Each listener asks with its ALPN protocols (the
    context a handshake is switched to answers ALPN), so contexts are cached per vhost and ALPN."""

    vhosts: TlsVhosts
    resolve: Callable[[str], Path]
    _loaded: dict[tuple[str, tuple[str, ...]], tuple[CertificateFiles, ssl.SSLContext]] = field(default_factory=dict)
    _failed: set[tuple[str, CertificateFiles]] = field(default_factory=set)  # tried again on a reload only
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _alpns: set[tuple[str, ...]] = field(default_factory=set)  # what each open listener asks with

    def _tls_vhosts(self) -> list[tuple[str, Mapping[str, Any], CertificateFiles]]:
        found: list[tuple[str, Mapping[str, Any], CertificateFiles]] = []
        for name in list(self.vhosts.vhost_names()):
            view = self.vhosts.vhost(name)
            files = CertificateFiles.of(view.config, self.resolve) if view is not None else None
            if view is not None and files is not None:
                found.append((name, view.config, files))
        return found

    def _context(self, vhost: str, files: CertificateFiles, alpn: tuple[str, ...],
                 load: bool = True) -> ssl.SSLContext | None:
        """The cached context of ``vhost`` for these files, loaded on first use (only the cached one, or
        the one these files replaced, when ``load`` is False); None when they cannot be loaded."""
        with self._lock:
            cached = self._loaded.get((vhost, alpn))
        if cached is not None and cached[0] == files:
            return cached[1]
        previous = cached[1] if cached is not None else None
        if (vhost, files) in self._failed or not load:
            return previous
        try:
            return self._load(vhost, files, alpn)
        except (OSError, ssl.SSLError) as exc:
            log.error("tls certificate could not be loaded vhost=%s cert=%s error=%s", vhost, files.cert_path, exc)
            with self._lock:
                self._failed.add((vhost, files))
            return previous

    def _load(self, vhost: str, files: CertificateFiles, alpn: tuple[str, ...]) -> ssl.SSLContext:
        context = server_context(list(alpn))
        files.load_into(context)
        with self._lock:
            self._loaded[(vhost, alpn)] = (files, context)
        log.info("tls certificate loaded vhost=%s cert=%s alpn=%s", vhost, files.cert_path, ",".join(alpn))
        return context

    def context_for(self, server_name: str | None, alpn: tuple[str, ...], load: bool = True) -> ssl.SSLContext | None:
        """The context of the first TLS vhost whose Host/Names match ``server_name``, else of the first TLS vhost
        (with ``load`` False, as a handshake asks: only contexts already loaded, no file is read)."""
        candidates = self._tls_vhosts()
        if server_name:
            for name, config, files in candidates:
                if any(host_matches(pattern, server_name) for pattern in host_names(dict(config))):
                    return self._context(name, files, alpn, load)
        for name, _config, files in candidates:
            context = self._context(name, files, alpn, load)
            if context is not None:
                return context
        return None

    def preload(self, vhost: str, config: Mapping[str, Any]) -> None:
        """Load the chain ``config`` (a vhost's OME JSON) names for every open listener: the server actor, as the
        API creates the vhost (before the catalog shows it), so that no handshake, on the event loop, has to
        read a file. Failures are logged and kept until a reload."""
        files = CertificateFiles.of(config, self.resolve)
        if files is None:
            return
        with self._lock:
            alpns = list(self._alpns)
        for alpn in alpns:
            self._context(vhost, files, alpn)

    def listener_context(self, alpn: list[str]) -> ssl.SSLContext | None:
        """The context a TLS listener is opened with: every TLS vhost's chain loaded now (what serves until
        a reload), SNI choosing per handshake; None when no vhost has a certificate that loads."""
        protocols = tuple(alpn)
        with self._lock:
            self._alpns.add(protocols)
        for name, _config, files in self._tls_vhosts():  # each vhost's chain as it is now, before any handshake
            self._context(name, files, protocols)
        fallback = self.context_for(None, protocols)
        if fallback is None:
            return None
        listener = server_context(alpn)
        for _name, _config, files in self._tls_vhosts():
            try:
                files.load_into(listener)  # what a handshake gets if the callback keeps the listener's own context
                break
            except (OSError, ssl.SSLError):
                continue

        def choose(sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _listener: ssl.SSLContext) -> None:
            context = self.context_for(server_name, protocols, load=False)  # on the event loop: no file read
            if context is not None:
                sock.context = context

        listener.sni_callback = choose
        return listener

    def reload_certificate(self, vhost: str) -> bool:
        """Load ``vhost``'s files again into new contexts and serve them; False (logged) when they cannot
        be loaded, and the old contexts keep serving; True when the vhost has no Host/TLS."""
        for name, _config, files in self._tls_vhosts():
            if name != vhost:
                continue
            with self._lock:  # every open listener's (a vhost that failed to load serves none yet)
                serving = {alpn for (loaded, alpn) in self._loaded if loaded == vhost} | self._alpns
            try:
                files.load_into(server_context(["http/1.1"]))  # the files must load before anything is swapped
                with self._lock:
                    self._failed.discard((name, files))
                for alpn in serving:
                    self._load(name, files, alpn)
            except (OSError, ssl.SSLError) as exc:
                log.error("tls certificate reload failed vhost=%s cert=%s error=%s (the old chain keeps serving)",
                          vhost, files.cert_path, exc)
                return False
            return True
        return True
