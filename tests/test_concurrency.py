"""Twenty executions of the same service at once on the offline Kubernetes harness, each in a
process of its own as the ZOO kernel runs them. Run with `make soak` (about a minute)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import EXAMPLES

pytestmark = pytest.mark.soak
EXECUTIONS = 20


def test_twenty_concurrent_executions_stay_apart(example_service_dir, fake_cluster, tmp_path):
    api = fake_cluster.api
    environment = {**os.environ, "KUBECONFIG": str(api.kubeconfig_path)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                f"{example_service_dir.name}.service",
                str(EXAMPLES / "execute.json"),
                "--engine",
                "calrissian",
                "--workdir",
                str(tmp_path / "jobs"),
            ],
            cwd=example_service_dir.parent,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(EXECUTIONS)
    ]
    results = [process.communicate(timeout=600) for process in processes]

    assert [p.returncode for p in processes] == [0] * EXECUTIONS, [err for _, err in results]
    folders = sorted((tmp_path / "jobs").iterdir())
    assert len(folders) == EXECUTIONS
    namespaces = {r.namespace for r in api.requests.matching("create", "namespaces")}
    assert namespaces == {folder.name for folder in folders}  # one namespace per job, its id
    for folder in folders:
        assert (folder / "results" / "catalog.json").is_file()
        others = [f.name for f in folders if f != folder]
        texts = (folder / "job.log").read_text() + (folder / "output.json").read_text()
        assert not any(name in texts for name in others)
    assert [n for n in api.namespaces() if n in namespaces] == []
