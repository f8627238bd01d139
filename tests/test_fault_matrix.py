"""What the Calrissian engine does for each fault at each kind of Kubernetes API call it makes,
on the offline harness. Run with `make faults`, which also writes the table into the README;
the default test run leaves these out (they take about a minute)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from harness.cluster import FakeCluster

from conftest import EXAMPLE_ITEM, TEMPLATE, ZOO_STATUS, fake_zoo_module, kernel_conf

pytestmark = pytest.mark.faults

TRANSIENT = {
    "500": {"status": 500},
    "503": {"status": 503},
    "429": {"status": 429},
    "dropped": {"drop": True},
}
PERMANENT = {"403": {"status": 403, "times": 1000}, "409": {"status": 409, "times": 1000}}
TABLE = TEMPLATE / "build" / "fault-matrix.md"
INPUTS = {
    "item": {"xlink:href": EXAMPLE_ITEM.as_uri(), "value": ""},
    "bands": {"value": ["red"], "isArray": "true", "length": "1"},
}


def job_namespaces(api) -> list[str]:
    return [n for n in api.namespaces() if not n.startswith("kube-") and n != "default"]


def execute(service, tmp_path: Path, prepare) -> tuple[int, str, list[str], list]:
    with FakeCluster(tmp_path / "cluster") as cluster, pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(cluster.api.kubeconfig_path))
        injections = prepare(cluster.api)
        conf = kernel_conf(tmp_path)
        status = service.band_stats(conf, dict(INPUTS), {"results": {}})
        kinds = list(dict.fromkeys((r.verb, r.resource) for r in cluster.api.requests.snapshot()))
        return status, conf["lenv"]["message"], job_namespaces(cluster.api), kinds, injections


@pytest.fixture(scope="module")
def matrix(example_service_dir, tmp_path_factory):
    results: dict[str, dict[str, str]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXECUTION_ENGINE", "calrissian")
        patch.syspath_prepend(str(example_service_dir.parent))
        patch.setitem(sys.modules, "zoo", fake_zoo_module())
        service = importlib.import_module(f"{example_service_dir.name}.service")
        status, _, leaked, kinds, _ = execute(
            service, tmp_path_factory.mktemp("clean"), lambda api: []
        )
        assert status == ZOO_STATUS["SERVICE_SUCCEEDED"] and not leaked
        for name, fault in TRANSIENT.items():

            def inject_everywhere(api, fault=fault):
                return [api.inject(verb, resource, **fault) for verb, resource in kinds]

            status, message, leaked, _, injections = execute(
                service, tmp_path_factory.mktemp(name), inject_everywhere
            )
            for (verb, resource), injection in zip(kinds, injections, strict=True):
                outcome = (
                    "recovered"
                    if status == ZOO_STATUS["SERVICE_SUCCEEDED"]
                    else f"failed: {message}"
                )
                outcome += " (namespace left!)" if leaked else ""
                hit = "" if injection.fired else " (not reached)"
                results.setdefault(f"{verb} {resource}", {})[name] = outcome + hit
        for name, fault in PERMANENT.items():
            for verb, resource in kinds:
                status, message, leaked, _, _ = execute(
                    service,
                    tmp_path_factory.mktemp(f"{name}-{verb}"),
                    lambda api, v=verb, r=resource, f=fault: [api.inject(v, r, **f)],
                )
                outcome = (
                    "succeeded"
                    if status == ZOO_STATUS["SERVICE_SUCCEEDED"]
                    else f"failed: {message}"
                )
                outcome += " (namespace left!)" if leaked else ""
                results[f"{verb} {resource}"][name] = outcome
    faults = [*TRANSIENT, *PERMANENT]
    lines = ["| API call | " + " | ".join(faults) + " |", "|---|" + "---|" * len(faults)]
    lines += [
        f"| {kind} | " + " | ".join(outcomes[f].replace("|", "/") for f in faults) + " |"
        for kind, outcomes in results.items()
    ]
    TABLE.parent.mkdir(exist_ok=True)
    TABLE.write_text("\n".join(lines) + "\n")
    return results


def test_transient_faults_are_recovered_everywhere(matrix):
    for kind, outcomes in matrix.items():
        for fault in TRANSIENT:
            assert outcomes[fault].startswith("recovered"), (kind, fault, outcomes[fault])


def test_permanent_faults_end_cleanly_everywhere(matrix):
    for kind, outcomes in matrix.items():
        for fault in PERMANENT:
            assert "namespace left" not in outcomes[fault] or kind == "delete namespaces", (
                kind,
                fault,
            )
            if outcomes[fault].startswith("failed"):
                assert "\n" not in outcomes[fault]
