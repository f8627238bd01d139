"""The Calrissian engine on the harness with the real Calrissian (``calrissian_cluster``).

The job pod pycalrissian creates runs the real ``calrissian`` 0.18.1 (from its own virtual
environment) in a sandbox, and Calrissian's step pods run the tools: its option handling, its
step pods, its usage report and its tool logs are the real ones. Where this machine cannot run
it (no bubblewrap/proot, no Calrissian environment), the cwltool stand-in runs the tests that do
not look at step pods, and a warning says so.
"""

from __future__ import annotations

import json
import re

import pytest
from harness.fixtures import calrissian_cluster  # noqa: F401
from test_calrissian_engine import JOB_ID, assert_example_ran, execute, links, request_inputs

from conftest import DATA, ZOO_STATUS, bake_service, fake_zoo_module, kernel_conf


@pytest.fixture
def real(calrissian_cluster, example_service_dir, kernel_import, monkeypatch):  # noqa: F811
    monkeypatch.setenv("EXECUTION_ENGINE", "calrissian")
    monkeypatch.setenv("EXECUTION_WALL_TIME", "120")  # a hang fails the test instead
    zoo = fake_zoo_module()
    return kernel_import(example_service_dir, zoo=zoo), zoo, calrissian_cluster


def needs_real(cluster) -> None:
    if not cluster.real_calrissian:
        pytest.skip("the real Calrissian cannot run here (see the warning)")


def step_pods(cluster, namespace: str) -> list[dict]:
    """The pods Calrissian created: neither the Job's pod nor the helper pods."""
    return [
        pod
        for pod in cluster.kubelet.pods
        if pod["metadata"]["namespace"] == namespace
        and not pod["metadata"].get("ownerReferences")
        and "-pod-" in pod["metadata"]["name"]  # <step>-pod-<8 letters>
    ]


def test_the_example_runs_on_the_real_calrissian(real, tmp_path):
    service, zoo, cluster = real
    api = cluster.api

    status, conf, outputs = execute(service, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    assert cluster.errors == []
    assert_example_ran(conf, outputs, tmp_path, api)
    report = json.loads((tmp_path / "temp" / JOB_ID / "usage-report.json").read_text())
    assert (23, "execution submitted") in zoo.statuses
    if cluster.real_calrissian:  # Calrissian's own report and its step pods
        assert report["total_tasks"] == 4 and "max_parallel_tasks" in report
        assert all(child["exit_code"] == 0 for child in report["children"])
        names = sorted(
            p["metadata"]["name"].rsplit("-pod-", 1)[0] for p in step_pods(cluster, JOB_ID)
        )
        assert names == ["measure", "measure-2", "publish", "stage-in-item"]


def test_a_failing_tool_fails_cleanly_on_the_real_calrissian(real, tmp_path):
    service, _, cluster = real

    status, conf, _ = execute(service, tmp_path, request_inputs(bands=("red", "swir")))

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    message = conf["lenv"]["message"]
    job = tmp_path / "temp" / JOB_ID
    if cluster.real_calrissian:
        # Calrissian names the failed pod (0.18.1 writes no tool log for a failed step, and
        # ends either with permanentFail or with the missing output of the failed tool)
        assert message == (
            "Step 'measure' failed: band 'swir' is not an asset of item demo-item (red, nir, green)"
        ), message
        log = (job / "job.log").read_text()
        assert re.search(r"measure-2-pod-[a-z]{8}", log) and "swir" in log
    else:
        assert message.startswith("Step 'measure' failed")
        assert "band 'swir' is not an asset" in message
        assert "permanentFail" in (job / "job.log").read_text()
    assert links(conf)["Job log"].endswith(f"{JOB_ID}/job.log")
    assert JOB_ID not in cluster.api.namespaces()
    if cluster.real_calrissian:
        runs = cluster.kubelet.runs
        assert any(r.container == "measure-2-container" and r.exit_code == 1 for r in runs)


def test_step_pods_get_the_package_resources_and_the_handler_settings(real, tmp_path, monkeypatch):
    service, _, cluster = real
    needs_real(cluster)
    monkeypatch.setenv("KEEP_SESSION", "true")
    conf = kernel_conf(tmp_path)
    conf["pod_env_vars"] = {"STAC_API": "https://stac.example.org"}
    conf["pod_node_selector"] = {"node-role/processing": "true"}

    status = service.band_stats(conf, request_inputs(), {"results": {}})

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    pods = {p["metadata"]["name"].rsplit("-pod-", 1)[0]: p for p in step_pods(cluster, JOB_ID)}
    assert set(pods) == {"stage-in-item", "measure", "measure-2", "publish"}
    for name, pod in pods.items():
        [container] = pod["spec"]["containers"]
        requests = container["resources"]["requests"]
        # measure: the package's coresMax 1 / ramMax 256; the others: CWL's defaults (1, 256)
        assert requests == {"cpu": "1", "memory": "256Mi"}, name
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["STAC_API"] == "https://stac.example.org", name
        assert pod["spec"]["nodeSelector"] == {"node-role/processing": "true"}, name
        assert pod["spec"]["restartPolicy"] == "Never"
        inputs = [m for m in container["volumeMounts"] if m["mountPath"].startswith("/var/lib/cwl")]
        assert all(m["readOnly"] for m in inputs), name
        assert inputs or name == "stage-in-item"  # its input is a URL, not a File
        assert all(m.get("subPath") for m in inputs), name
    runs = {r.pod: r for r in cluster.kubelet.runs}
    measure = runs[pods["measure"]["metadata"]["name"]]
    staged = next(
        m["mountPath"]
        for m in pods["measure"]["spec"]["containers"][0]["volumeMounts"]
        if m["mountPath"].startswith("/var/lib/cwl")
    )
    assert measure.argv[measure.argv.index(staged) - 2] in ("--ro-bind", "-b")


def test_max_cores_two_runs_at_most_two_step_pods_at_once(
    calrissian_cluster,  # noqa: F811
    kernel_import,
    tmp_path,
    monkeypatch,
):
    cluster = calrissian_cluster
    needs_real(cluster)
    service = kernel_import(
        bake_service(tmp_path / "out", "scatter-four", DATA / "scatter-four.cwl"),
        zoo=fake_zoo_module(),
    )
    monkeypatch.setenv("EXECUTION_ENGINE", "calrissian")
    monkeypatch.setenv("EXECUTION_WALL_TIME", "120")
    monkeypatch.setenv("KEEP_SESSION", "true")
    words = ["one", "two", "three", "four"]
    inputs = {"words": {"value": words, "isArray": "true", "length": "4"}}

    status, conf, _ = execute(service, tmp_path, inputs=inputs, workflow_id="scatter-four")

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    [namespace] = [n for n in cluster.api.namespaces() if n.startswith("scatter-four")]
    [job] = cluster.api.objects("jobs", namespace)
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--max-cores") + 1] == "2"
    steps = [r for r in cluster.kubelet.runs if r.namespace == namespace and "-pod-" in r.pod]
    assert len([r for r in steps if r.container.startswith("note")]) == 4
    assert cluster.kubelet.max_running[namespace] - 1 == 2  # the job pod, plus two steps
    overlaps = max(sum(1 for o in steps if o.started < r.started < o.finished) for r in steps)
    assert overlaps <= 1
