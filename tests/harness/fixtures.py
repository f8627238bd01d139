"""pytest fixtures: each test gets its own fake cluster, and nothing of it outlives the test.

Import them into a test module with ``from harness.fixtures import fake_cluster  # noqa: F401``.

``fake_cluster`` plays Calrissian with cwltool. ``calrissian_cluster`` runs the real Calrissian
when this machine can (bubblewrap or proot, openssl, and the Calrissian environment, which it
creates on first use unless ``HARNESS_CALRISSIAN_VENV_CREATE=0``) and otherwise falls back to
the cwltool mode with a warning saying why (tests that need the real mode skip then).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterator

import pytest

from . import calrissian_venv, node, tls
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
    yield from running(FakeCluster(tmp_path / "fake-cluster"), monkeypatch)


@functools.cache
def real_calrissian() -> tuple[str | None, calrissian_venv.CalrissianVenv | None, str]:
    """(sandbox tool, Calrissian environment, why not) for the real-Calrissian mode."""
    tool = node.sandbox_tool()
    if tool is None:
        return None, None, "neither bwrap nor proot works here (apt-get install bubblewrap)"
    if not tls.available():
        return None, None, "no openssl program to make the API server's certificate"
    venv = calrissian_venv.find()
    if venv is None and os.environ.get("HARNESS_CALRISSIAN_VENV_CREATE", "1") != "0":
        try:
            venv = calrissian_venv.ensure()
        except Exception as error:  # offline, no pip: fall back
            return None, None, f"cannot create the Calrissian environment: {error}"
    if venv is None:
        return None, None, f"no Calrissian environment in {calrissian_venv.location()}"
    return tool, venv, ""


@pytest.fixture
def calrissian_cluster(tmp_path, monkeypatch) -> Iterator[FakeCluster]:
    """A running FakeCluster with the real Calrissian (``.real_calrissian``) when possible."""
    tool, venv, reason = real_calrissian()
    if reason:
        warnings.warn(
            f"real Calrissian unavailable ({reason}): the cwltool stand-in runs instead",
            stacklevel=2,
        )
    cluster = FakeCluster(
        tmp_path / "fake-cluster",
        calrissian_venv=venv,
        sandbox=tool,
        shared=(calrissian_venv.PROJECT,),  # test inputs are file:// URLs into the project
    )
    yield from running(cluster, monkeypatch)


def running(cluster: FakeCluster, monkeypatch) -> Iterator[FakeCluster]:
    """The cluster started, KUBECONFIG pointing to it, no proxy; stopped afterwards."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    try:
        cluster.start()
        monkeypatch.setenv("KUBECONFIG", str(cluster.api.kubeconfig_path))
        yield cluster
    finally:
        cluster.stop()
