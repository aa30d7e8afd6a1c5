"""The API server's TLS context: loaded at start, reloaded by ``POST /v1/managers/api:reloadCertificate``.

One ``ssl.SSLContext`` lives for the whole process and is handed to uvicorn; reloading loads the
new chain into that same context, so new handshakes use it and open connections are untouched.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.config.tls import load_chain

log = logging.getLogger(__name__)


@dataclass
class ApiTls:
    cert_path: Path
    key_path: Path
    chain_path: Path | None = None
    context: ssl.SSLContext = field(default_factory=lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    loaded: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_config(cls, managers_host: dict[str, Any], base_dir: Path) -> ApiTls | None:
        tls = managers_host.get("tls") if isinstance(managers_host, dict) else None
        if not isinstance(tls, dict) or not tls.get("certPath") or not tls.get("keyPath"):
            return None

        def path(value: Any) -> Path:
            p = Path(str(value))
            return p if p.is_absolute() else base_dir / p

        chain = tls.get("chainCertPath")
        return cls(path(tls["certPath"]), path(tls["keyPath"]), path(chain) if chain else None)

    def reload(self) -> None:
        """Load the files again; raises OSError/ssl.SSLError (the caller answers 500) and keeps the old chain.
        Blocking file work: ``POST /v1/managers/api:reloadCertificate`` runs it on a worker thread, one at a time."""
        with self._lock:
            load_chain(self.context, self.cert_path, self.key_path, self.chain_path)
            self.loaded = True
        log.info("api certificate loaded cert=%s", self.cert_path)

    def try_load(self) -> bool:
        try:
            self.reload()
        except (OSError, ssl.SSLError) as exc:
            log.error("api certificate could not be loaded cert=%s error=%s (TLS port not opened)", self.cert_path,
                      exc)
            return False
        return True
