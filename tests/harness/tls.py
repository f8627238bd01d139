"""TLS for the fake API server, and the service-account files a pod finds in a cluster.

Programs that run inside a pod (Calrissian) use the in-cluster configuration: ``https`` to
``KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT``, verified against ``ca.crt``, with the
``token`` and the ``namespace`` files of ``/var/run/secrets/kubernetes.io/serviceaccount``.
The certificate is self-signed (SAN 127.0.0.1 and localhost), made by the ``openssl`` program
when the server starts; no Python package beyond the standard library is needed.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

SERVICE_ACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN = "fake-service-account-token"


def available() -> bool:
    """Whether certificates can be made here (the ``openssl`` program is on PATH)."""
    return shutil.which("openssl") is not None


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key: (cert.pem, key.pem) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    if not cert.exists():
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(key), "-out", str(cert), "-days", "2",
                "-subj", "/CN=fake-kube",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def write_service_account(folder: Path, cert: Path, namespace: str) -> Path:
    """The three files the kubelet mounts for a pod's service account; ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "token").write_text(TOKEN)  # no trailing newline: it goes into a header as is
    (folder / "namespace").write_text(namespace)
    shutil.copyfile(cert, folder / "ca.crt")
    return folder
