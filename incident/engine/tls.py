"""Prefect's client over plain ``http://`` builds a TLS context it never uses, at 28 ms of CPU each.

Why this exists: every client Prefect makes, several per flow run (the run's client context, two
reads of the server's default result storage, the concurrency-lease service), calls
``ssl.create_default_context(cafile=certifi.where())``, which parses certifi's whole bundle: 27.8 ms
each on this machine, 38 % of the worker's CPU in a storm (py-spy, 2026-12-06). An ``http://`` API has
no TLS to verify, so the processes talking to one point Prefect's own setting
``PREFECT_API_SSL_CERT_FILE`` at a file holding one certificate of that bundle (0.5 ms). Nothing is
changed when the API is ``https://`` or when the operator has set that setting or
``PREFECT_API_TLS_INSECURE_SKIP_VERIFY``: then the operator's choice holds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from incident.environ import write_whole

FILE = "prefect-http-api.pem"


def skip_unused_bundle(home: Path) -> None:
    """Set ``PREFECT_API_SSL_CERT_FILE`` (this process and its children) when the API is plain http."""
    if not os.environ.get("PREFECT_API_URL", "").startswith("http://"):
        return
    if os.environ.get("PREFECT_API_SSL_CERT_FILE") or os.environ.get("PREFECT_API_TLS_INSECURE_SKIP_VERIFY"):
        return
    path = home / FILE
    if not path.exists():
        import certifi

        bundle = Path(certifi.where()).read_text()
        first = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", bundle, re.S)
        if first is None:  # an unexpected bundle: leave Prefect as it is
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_whole(path, first.group(0))  # whoever writes it last
        except OSError:  # a home we cannot write: Prefect's default, only slower
            return
    os.environ["PREFECT_API_SSL_CERT_FILE"] = str(path)
