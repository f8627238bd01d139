"""The Calrissian scenario on a real cluster, opt-in: set ZOO_K8S_E2E_KUBECONFIG to a kubeconfig
and ZOO_K8S_E2E_ITEM_URL to the URL of examples/data/catalog.json as the cluster can fetch it
(see the README for what the cluster needs). Skipped otherwise."""

from __future__ import annotations

import os
import uuid

import pytest

from conftest import ZOO_STATUS, fake_zoo_module, kernel_conf

KUBECONFIG = os.environ.get("ZOO_K8S_E2E_KUBECONFIG")
ITEM_URL = os.environ.get("ZOO_K8S_E2E_ITEM_URL")

pytestmark = [
    pytest.mark.k8s_e2e,
    pytest.mark.skipif(
        not (KUBECONFIG and ITEM_URL),
        reason="set ZOO_K8S_E2E_KUBECONFIG and ZOO_K8S_E2E_ITEM_URL to run on a real cluster",
    ),
]


def test_the_example_runs_on_a_real_cluster(
    example_service_dir, kernel_import, monkeypatch, tmp_path
):
    from kubernetes import client, config

    monkeypatch.setenv("KUBECONFIG", KUBECONFIG)
    monkeypatch.setenv("EXECUTION_ENGINE", "calrissian")
    monkeypatch.setenv("EXECUTION_WALL_TIME", os.environ.get("ZOO_K8S_E2E_WALL_TIME", "900"))
    service = kernel_import(example_service_dir, zoo=fake_zoo_module())
    usid = str(uuid.uuid4())
    conf = kernel_conf(tmp_path, usid=usid)
    outputs = {"results": {}}
    inputs = {
        "item": {"xlink:href": ITEM_URL, "value": ""},
        "bands": {"value": ["red", "nir"], "isArray": "true", "length": "2"},
    }

    status = service.band_stats(conf, inputs, outputs)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    assert outputs["results"]["value"].endswith("/catalog.json")
    config.load_kube_config(config_file=KUBECONFIG)
    namespace = service.job_id_for("band-stats", usid)
    try:
        phase = client.CoreV1Api().read_namespace(namespace).status.phase
    except client.exceptions.ApiException as error:
        assert error.status == 404
    else:
        assert phase == "Terminating"
