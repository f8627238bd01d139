"""The Calrissian engine end to end on the offline Kubernetes harness: the real kubernetes
client and the real pycalrissian against a fake API server whose controller runs the CWL."""

from __future__ import annotations

import base64
import importlib
import json
import re
import sys
import time

import pytest
from harness.cluster import FakeCluster

from conftest import (
    DATA,
    EXAMPLE_APP,
    EXAMPLE_ITEM,
    ZOO_STATUS,
    bake_service,
    fake_zoo_module,
    kernel_conf,
    served_path,
)

USID = "0b8a7c4e-1d2f-4e5a-9b6c-7d8e9f0a1b2c"
JOB_ID = f"band-stats-{USID}"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def request_inputs(bands=("red", "nir")) -> dict:
    return {
        "item": {"xlink:href": EXAMPLE_ITEM.as_uri(), "value": ""},
        "bands": {"value": list(bands), "isArray": "true", "length": str(len(bands))},
    }


@pytest.fixture
def calrissian(example_service_dir, kernel_import, monkeypatch, fake_cluster):
    monkeypatch.setenv("EXECUTION_ENGINE", "calrissian")
    zoo = fake_zoo_module()
    return kernel_import(example_service_dir, zoo=zoo), zoo, fake_cluster.api


def execute(service, tmp_path, inputs=None, workflow_id="band-stats", usid=USID):
    conf = kernel_conf(tmp_path, workflow_id=workflow_id, usid=usid)
    outputs = {"results": {}}
    function = getattr(service, workflow_id.replace("-", "_"))
    status = function(conf, inputs if inputs is not None else request_inputs(), outputs)
    return status, conf, outputs


def job_namespaces(api) -> list[str]:
    return [n for n in api.namespaces() if not n.startswith("kube-") and n != "default"]


def links(conf: dict) -> dict[str, str]:
    section = conf["service_logs"]
    keys = ["url"] + [f"url_{i}" for i in range(1, int(section["length"]))]
    titles = ["title"] + [f"title_{i}" for i in range(1, int(section["length"]))]
    return {section[t]: section[u] for t, u in zip(titles, keys, strict=True)}


def assert_example_ran(conf: dict, outputs: dict, tmp_path, api) -> None:
    """The example's results, job files, links and clean-up, whichever Calrissian ran it."""
    job = tmp_path / "temp" / JOB_ID
    catalog = served_path(outputs["results"]["value"], tmp_path)
    assert catalog == job / "results" / "catalog.json"
    item_href = next(
        link["href"] for link in json.loads(catalog.read_text())["links"] if link["rel"] == "item"
    )
    red = json.loads((catalog.parent / item_href).parent.joinpath("red.json").read_text())
    assert red["count"] == 64 and red["item"] == "demo-item"
    for name in ("job.log", "output.json", "usage-report.json"):
        assert (job / name).is_file(), name
    report = json.loads((job / "usage-report.json").read_text())
    assert sorted(c["name"] for c in report["children"]) == [
        "measure",
        "measure_2",
        "publish",
        "stage_in_item",
    ]
    assert "red: mean" in (job / "tool-logs" / "measure.log").read_text()
    assert set(links(conf)) >= {"Job log", "Usage report", "Tool log publish"}
    assert JOB_ID not in api.namespaces()


def test_the_example_runs_on_kubernetes_like_on_cwltool(calrissian, tmp_path):
    service, zoo, api = calrissian

    status, conf, outputs = execute(service, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    assert_example_ran(conf, outputs, tmp_path, api)
    assert (23, "execution submitted") in zoo.statuses


def test_one_helper_pod_collects_everything(calrissian, tmp_path):
    service, _, api = calrissian

    status, conf, _ = execute(service, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    created_pods = api.requests.matching("create", "pods")
    assert len(created_pods) == 1  # the job pod comes from the Job controller


def test_keep_session_keeps_the_namespace(calrissian, tmp_path, monkeypatch):
    service, _, api = calrissian
    monkeypatch.setenv("KEEP_SESSION", "true")

    status, conf, _ = execute(service, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    assert JOB_ID in api.namespaces()


@pytest.mark.parametrize(
    "workflow_id",
    ["band_stats_underscored", "band-stats-with-a-rather-long-identifier-x", "Band-Stats"],
)
def test_the_namespace_is_the_one_zoo_dismisses(
    workflow_id, kernel_import, tmp_path, fake_cluster, monkeypatch
):
    package = tmp_path / "package.cwl"
    package.write_text(EXAMPLE_APP.read_text().replace("id: band-stats", f"id: {workflow_id}"))
    service = kernel_import(
        bake_service(tmp_path / "out", workflow_id, package), zoo=fake_zoo_module()
    )
    monkeypatch.setenv("EXECUTION_ENGINE", "calrissian")
    monkeypatch.setenv("KEEP_SESSION", "true")

    status, conf, _ = execute(service, tmp_path, workflow_id=workflow_id)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    zoo_name = workflow_id.replace("_", "-") + "-" + USID
    while len(zoo_name) > 63:
        zoo_name = zoo_name[:-1].rstrip("-")
    [namespace] = job_namespaces(fake_cluster.api)
    assert DNS_LABEL.fullmatch(namespace)
    assert namespace == zoo_name.lower()


def test_a_failing_tool_fails_cleanly(calrissian, tmp_path):
    service, _, api = calrissian

    status, conf, _ = execute(service, tmp_path, request_inputs(bands=("red", "swir")))

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    assert conf["lenv"]["message"].startswith("Step 'measure' failed")
    assert "band 'swir' is not an asset" in conf["lenv"]["message"]
    job = tmp_path / "temp" / JOB_ID
    assert "permanentFail" in (job / "job.log").read_text()
    assert links(conf)["Job log"].endswith(f"{JOB_ID}/job.log")
    assert JOB_ID not in api.namespaces()


def test_the_wall_time_stops_the_job(kernel_import, tmp_path, fake_cluster, monkeypatch):
    service = kernel_import(
        bake_service(tmp_path / "out", "sleeper", DATA / "sleeper.cwl"), zoo=fake_zoo_module()
    )
    monkeypatch.setenv("EXECUTION_ENGINE", "calrissian")
    monkeypatch.setenv("EXECUTION_WALL_TIME", "2")
    started = time.monotonic()

    status, conf, _ = execute(
        service, tmp_path, inputs={"seconds": {"value": "60"}}, workflow_id="sleeper"
    )

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    assert conf["lenv"]["message"] == (
        "The execution ran longer than its wall time of 2 s (EXECUTION_WALL_TIME) and was stopped."
    )
    assert time.monotonic() - started < 30
    assert job_namespaces(fake_cluster.api) == []


def test_an_image_that_cannot_be_pulled_stops_the_job(calrissian, tmp_path, monkeypatch):
    service, _, api = calrissian
    monkeypatch.setenv("CALRISSIAN_IMAGE", "registry.invalid/calrissian:missing")
    api.unpullable_images.add("registry.invalid/calrissian:missing")
    started = time.monotonic()

    status, conf, _ = execute(service, tmp_path)

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    message = conf["lenv"]["message"]
    assert "cannot start: its image cannot be pulled" in message
    assert "registry.invalid/calrissian:missing" in message
    assert time.monotonic() - started < 30
    assert JOB_ID not in api.namespaces()


def test_a_volume_that_cannot_be_bound_stops_the_job(calrissian, tmp_path, monkeypatch):
    service, _, api = calrissian
    monkeypatch.setenv("STORAGE_CLASS", "local-path")
    api.unschedulable_storage_classes.add("local-path")

    status, conf, _ = execute(service, tmp_path)

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    assert "its volume is not bound" in conf["lenv"]["message"]
    assert "'local-path'" in conf["lenv"]["message"]
    assert JOB_ID not in api.namespaces()


def test_registry_credentials_appear_nowhere(calrissian, tmp_path, monkeypatch, capfd):
    service, zoo, api = calrissian
    password = "hunter2-registry-password"
    secrets = tmp_path / "pull.yaml"
    auth = "dXNlcjpodW50ZXIyLXJlZ2lzdHJ5LXBhc3N3b3Jk"  # user:hunter2-registry-password
    secrets.write_text(
        json.dumps({"auths": {"registry.example.com": {"auth": auth, "password": password}}})
    )
    monkeypatch.setenv("IMAGE_PULL_SECRETS_FILE", str(secrets))
    monkeypatch.setenv("KEEP_SESSION", "true")

    status, conf, outputs = execute(service, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    secrets_by_name = {
        secret["metadata"]["name"]: secret for secret in api.objects("secrets", JOB_ID)
    }
    assert secrets_by_name["container-rg"]["type"] == "kubernetes.io/dockerconfigjson"
    assert "params" in secrets_by_name  # the job's parameters too: they may hold keys
    config_maps = api.objects("configmaps", JOB_ID)
    assert "params" not in {config_map["metadata"]["name"] for config_map in config_maps}
    for config_map in config_maps:
        assert password not in json.dumps(config_map) and auth not in json.dumps(config_map)
    job = tmp_path / "temp" / JOB_ID
    for path in job.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    seen = json.dumps(conf) + json.dumps(outputs) + json.dumps(zoo.statuses)
    captured = capfd.readouterr()
    seen += captured.out + captured.err
    assert password not in seen and auth not in seen


def flow_kinds(api) -> list[tuple[str, str]]:
    """The (verb, resource) kinds of API request one execution makes, in order of first use."""
    return list(dict.fromkeys((r.verb, r.resource) for r in api.requests.snapshot()))


@pytest.fixture(scope="module")
def recorded_flow(tmp_path_factory, example_service_dir):
    """The kinds of request of a successful execution, recorded once on a cluster of its own."""
    tmp_path = tmp_path_factory.mktemp("flow")
    with FakeCluster(tmp_path / "cluster") as cluster, pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(cluster.api.kubeconfig_path))
        patch.setenv("EXECUTION_ENGINE", "calrissian")
        patch.syspath_prepend(str(example_service_dir.parent))
        patch.setitem(sys.modules, "zoo", fake_zoo_module())
        service = importlib.import_module(f"{example_service_dir.name}.service")
        status, conf, _ = execute(service, tmp_path)
        for name in [n for n in sys.modules if n.startswith(example_service_dir.name)]:
            del sys.modules[name]
        assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
        return flow_kinds(cluster.api)


def test_transient_faults_at_every_kind_of_call_are_recovered(calrissian, tmp_path, recorded_flow):
    service, _, api = calrissian
    for verb, resource in recorded_flow:
        api.inject(verb, resource, status=503)

    status, conf, _ = execute(service, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    assert job_namespaces(api) == []


def test_dropped_connections_at_every_kind_of_call_are_recovered(
    calrissian, tmp_path, recorded_flow
):
    service, _, api = calrissian
    for verb, resource in recorded_flow:
        api.inject(verb, resource, drop=True)

    status, conf, _ = execute(service, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    assert job_namespaces(api) == []


def test_permanent_faults_fail_cleanly_at_every_kind_of_call(
    example_service_dir, kernel_import, tmp_path_factory, recorded_flow, monkeypatch
):
    monkeypatch.setenv("EXECUTION_ENGINE", "calrissian")
    service = kernel_import(example_service_dir, zoo=fake_zoo_module())
    # Deleting the namespace is what cleans up (a refusal there is reported, see below); a
    # refused deletion of the helper pod is left to the namespace's deletion.
    kinds = [k for k in recorded_flow if k not in {("delete", "namespaces"), ("delete", "pods")}]
    for verb, resource in kinds:
        tmp_path = tmp_path_factory.mktemp(f"{verb}-{resource.replace('/', '-')}")
        with FakeCluster(tmp_path / "cluster") as cluster:
            monkeypatch.setenv("KUBECONFIG", str(cluster.api.kubeconfig_path))
            cluster.api.inject(verb, resource, status=403, times=100)

            status, conf, _ = execute(service, tmp_path)

            assert status == ZOO_STATUS["SERVICE_FAILED"], (verb, resource)
            message = conf["lenv"]["message"]
            assert "403" in message and "\n" not in message, (verb, resource, message)
            assert job_namespaces(cluster.api) == [], (verb, resource)


def test_the_job_gets_the_package_resources_and_the_handler_settings(
    calrissian, tmp_path, monkeypatch
):
    service, _, api = calrissian
    monkeypatch.setenv("KEEP_SESSION", "true")
    monkeypatch.setenv("DEFAULT_VOLUME_SIZE", "500")
    conf = kernel_conf(tmp_path)
    conf["pod_annotations"] = {"example.org/team": "eo"}
    conf["pod_env_vars"] = {"STAC_API": "https://stac.example.org"}
    conf["pod_node_selector"] = {"node-role/processing": "true"}

    status = service.band_stats(conf, request_inputs(), {"results": {}})

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    namespace = api.get("namespaces", None, JOB_ID)
    assert namespace["metadata"]["annotations"] == {"example.org/team": "eo"}
    [claim] = api.objects("persistentvolumeclaims", JOB_ID)
    assert claim["spec"]["resources"]["requests"]["storage"] == "500Mi"  # a plain number is MiB
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    [job] = api.objects("jobs", JOB_ID)
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--max-cores") + 1] == "1"  # the package's coresMax
    assert args[args.index("--max-ram") + 1] == "256Mi"  # the package's ramMax
    config_maps = {c["metadata"]["name"]: c["data"] for c in api.objects("configmaps", JOB_ID)}
    assert json.loads(next(iter(config_maps["pod-env-vars"].values()))) == conf["pod_env_vars"]
    assert (
        json.loads(next(iter(config_maps["pod-node-selector"].values())))
        == conf["pod_node_selector"]
    )


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("2048", "2048Mi"), ("2Gi", "2Gi"), ("10Mi", "10Mi"), ("1.5Gi", "1.5Gi")],
)
def test_the_default_volume_size_takes_a_unit_or_mib(setting, expected, service, monkeypatch):
    monkeypatch.setenv("DEFAULT_VOLUME_SIZE", setting)

    assert service.CalrissianSettings.read(service.Resources()).volume_size == expected


def test_a_volume_size_that_is_not_one_is_refused(service, monkeypatch):
    monkeypatch.setenv("DEFAULT_VOLUME_SIZE", "ten gigs")

    with pytest.raises(service.EngineUnavailable, match="DEFAULT_VOLUME_SIZE is 'ten gigs'"):
        service.CalrissianSettings.read(service.Resources())


def test_a_namespace_that_cannot_be_deleted_is_reported(calrissian, tmp_path, caplog):
    service, _, api = calrissian
    api.inject("delete", "namespaces", status=403, times=100)

    status, conf, _ = execute(service, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    assert f"The Kubernetes API refused to delete the namespace {JOB_ID} (403" in caplog.text


def test_both_engines_give_the_same_results(
    example_service_dir, kernel_import, tmp_path, fake_cluster, monkeypatch
):
    service = kernel_import(example_service_dir, zoo=fake_zoo_module())
    results = {}
    for engine in ("cwltool", "calrissian"):
        monkeypatch.setenv("EXECUTION_ENGINE", engine)
        status, conf, outputs = execute(service, tmp_path / engine)
        assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], (engine, conf["lenv"]["message"])
        catalog = served_path(outputs["results"]["value"], tmp_path / engine)
        results[engine] = {
            str(path.relative_to(catalog.parent)): path.read_text()
            for path in sorted(catalog.parent.rglob("*.json"))
        }
        assert outputs["results"]["value"].endswith(f"/{JOB_ID}/results/catalog.json")

    assert results["cwltool"] == results["calrissian"]


def test_stage_out_keys_go_to_a_secret_and_no_log(calrissian, tmp_path, monkeypatch):
    service, _, api = calrissian
    key = "S3-secret-key-0123456789"
    stage_out = tmp_path / "stageout.yaml"
    stage_out.write_text(
        (service.ASSETS_DIR / "stageout.yaml")
        .read_text()
        .replace(
            "  process:\n    type: string\n    inputBinding: {position: 3}\n",
            "  process:\n    type: string\n    inputBinding: {position: 3}\n"
            "  STAGEOUT_AWS_SECRET_ACCESS_KEY:\n    type: string\n"
            "    inputBinding: {position: 4}\n",
        )
    )
    monkeypatch.setenv("WRAPPER_STAGE_OUT", str(stage_out))
    monkeypatch.setenv("KEEP_SESSION", "true")
    conf = kernel_conf(tmp_path)
    conf["additional_parameters"] = {"STAGEOUT_AWS_SECRET_ACCESS_KEY": key}
    outputs = {"results": {}}

    status = service.band_stats(conf, request_inputs(), outputs)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    [params] = [s for s in api.objects("secrets", JOB_ID) if s["metadata"]["name"] == "params"]
    assert key in base64.b64decode(params["data"]["params"]).decode()
    assert key not in json.dumps(api.objects("configmaps", JOB_ID))
    job = tmp_path / "temp" / JOB_ID
    assert "(secret-" in (job / "job.log").read_text()  # a placeholder in Calrissian's log
    for pod in api.objects("pods", JOB_ID):
        assert key not in api.pod_log(JOB_ID, pod["metadata"]["name"])
    for path in job.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    assert key not in json.dumps(conf["lenv"]) + json.dumps(outputs)
