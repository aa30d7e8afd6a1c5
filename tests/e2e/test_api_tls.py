"""The API over TLS (Bind/Managers/API/TLSPort + Managers/Host/TLS) and reloadCertificate."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ports import free_tcp_port

pytestmark = pytest.mark.e2e


def make_cert(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def served_cn(port: int) -> str:
    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=10)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return out.strip().rsplit("=", 1)[-1].strip()


def test_api_serves_tls_and_reloads_its_certificate(kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path, "first")
    ports, tls_port = Ports(), free_tcp_port()
    xml = server_xml(ports, tmp_path / "rec")
    xml = xml.replace(f"<API><Port>{ports.api}</Port></API>",
                      f"<API><Port>{ports.api}</Port><TLSPort>{tls_port}</TLSPort></API>", 1)
    xml = xml.replace("<Managers><API><AccessToken>", f"<Managers><Host><Names><Name>*</Name></Names><TLS><CertPath>"
                      f"{cert}</CertPath><KeyPath>{key}</KeyPath></TLS></Host><API><AccessToken>", 1)
    k = kiln_factory(xml=xml, ports=ports)
    with httpx.Client(base_url=f"https://127.0.0.1:{tls_port}", headers=k.api.headers, verify=False) as tls:
        assert tls.get("/v1/vhosts").json()["response"] == ["default"]
        assert served_cn(tls_port) == "first"
        new_cert, new_key = make_cert(tmp_path, "second")
        cert.write_bytes(new_cert.read_bytes())
        key.write_bytes(new_key.read_bytes())
        assert tls.post("/v1/managers/api:reloadCertificate").json() == {"message": "OK", "statusCode": 200}
        assert served_cn(tls_port) == "second"
        cert.write_text("not a certificate")
        r = tls.post("/v1/managers/api:reloadCertificate")
        assert r.json() == {"message": "[HTTP] Failed to create a certificate for the API Server (500)",
                            "statusCode": 500}
        assert served_cn(tls_port) == "second"  # the old chain keeps serving
