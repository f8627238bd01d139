"""pytest fixtures: each test gets its own fake cluster, and nothing of it outlives the test.

Import them into a test module with ``from harness.fixtures import fake_cluster  # noqa: F401``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .cluster import FakeCluster

# Variables that would send the Kubernetes client elsewhere: pycalrissian even takes HTTP_PROXY
# as the API server's address.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture
def fake_cluster(tmp_path, monkeypatch) -> Iterator[FakeCluster]:
    """A running FakeCluster (``.api``: the FakeKube, ``.controller``: the local Calrissian).

    Its state lives under ``tmp_path``; ``KUBECONFIG`` points to it; proxy variables are unset.
    Servers, threads and local runs are stopped when the test ends.
    """
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    cluster = FakeCluster(tmp_path / "fake-cluster")
    try:
        cluster.start()
        monkeypatch.setenv("KUBECONFIG", str(cluster.api.kubeconfig_path))
        yield cluster
    finally:
        cluster.stop()
