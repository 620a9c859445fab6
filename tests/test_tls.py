"""Prefect's clients over a plain-http API skip certifi's bundle (incident/engine/tls.py), and only then.

Real ``ssl`` contexts built from what the function leaves in the environment, as Prefect's client builds
them (``ssl.create_default_context(cafile=PREFECT_API_SSL_CERT_FILE)``).
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import certifi
import pytest

from incident.engine import tls


def _certificates(cafile: str) -> int:
    """How many certificates the context Prefect would build parses (its cost: 27.8 ms for the bundle)."""
    return int(ssl.create_default_context(cafile=cafile).cert_store_stats()["x509"])


def test_a_plain_http_api_gets_one_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    monkeypatch.delenv("PREFECT_API_SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", raising=False)
    tls.skip_unused_bundle(tmp_path / "home")

    given = os.environ["PREFECT_API_SSL_CERT_FILE"]
    assert Path(given) == tmp_path / "home" / tls.FILE
    assert Path(given).read_text().count("BEGIN CERTIFICATE") == 1
    assert _certificates(given) == 1 < _certificates(certifi.where())  # the point of it (1 against ~117)


@pytest.mark.parametrize(
    "env",
    [
        {"PREFECT_API_URL": "https://prefect.example.com/api"},
        {"PREFECT_API_URL": "http://127.0.0.1:4200/api", "PREFECT_API_SSL_CERT_FILE": "/etc/our-ca.pem"},
        {"PREFECT_API_URL": "http://127.0.0.1:4200/api", "PREFECT_API_TLS_INSECURE_SKIP_VERIFY": "true"},
        {},
    ],
)
def test_tls_and_the_operators_settings_are_left_alone(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PREFECT_API_URL", "PREFECT_API_SSL_CERT_FILE", "PREFECT_API_TLS_INSECURE_SKIP_VERIFY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tls.skip_unused_bundle(tmp_path)

    assert os.environ.get("PREFECT_API_SSL_CERT_FILE") == env.get("PREFECT_API_SSL_CERT_FILE")
    assert not (tmp_path / tls.FILE).exists()
