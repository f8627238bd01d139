"""The offline Kubernetes harness, driven by the real kubernetes client and pycalrissian."""

from __future__ import annotations

import http.client
import io
import json
import shutil
import socket
import tarfile
import threading
import time
import types

import pytest
import urllib3
import yaml
from harness.cluster import FakeCluster
from harness.fixtures import fake_cluster  # noqa: F401
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream
from pycalrissian.context import CalrissianContext
from pycalrissian.execution import CalrissianExecution, JobStatus
from pycalrissian.job import CalrissianJob


def _workflow(tool: dict, inputs: dict | None = None, outputs: dict | None = None) -> dict:
    """A packed CWL document: a ``main`` Workflow with one step running ``tool``."""
    inputs, outputs = inputs or {}, outputs or {}
    return {
        "cwlVersion": "v1.2",
        "$graph": [
            {
                "class": "Workflow",
                "id": "main",
                "inputs": inputs,
                "outputs": {
                    name: {"type": "File", "outputSource": f"step/{name}"} for name in outputs
                },
                "steps": {
                    "step": {
                        "run": "#tool",
                        "in": {name: name for name in inputs},
                        "out": list(outputs),
                    }
                },
            },
            {
                "class": "CommandLineTool",
                "id": "tool",
                "requirements": {"DockerRequirement": {"dockerPull": "busybox:1.36"}},
                "inputs": inputs,
                "outputs": outputs,
                **tool,
            },
        ],
    }


HELLO = _workflow(
    {
        "baseCommand": ["sh", "-c"],
        "arguments": [
            "echo $0 > message.txt; echo to-stderr >&2; echo to-stdout",
            "$(inputs.message)",
        ],
    },
    inputs={"message": "string"},
    outputs={"out": {"type": "File", "outputBinding": {"glob": "message.txt"}}},
)
FAILING = _workflow({"baseCommand": ["sh", "-c", "echo failing >&2; exit 3"]})
SLEEPING = _workflow({"baseCommand": ["sleep", "30"]})
CALRISSIAN_WDIR = "calrissian-wdir"


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll until ``predicate()`` is truthy; its value, or an AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)


@pytest.fixture
def no_retry_sleep(monkeypatch):
    """pycalrissian sleeps 1 s before each existence check; nothing here needs that."""
    import pycalrissian.context

    monkeypatch.setattr(pycalrissian.context, "time", types.SimpleNamespace(sleep=lambda _: None))


@pytest.fixture
def calrissian(fake_cluster, no_retry_sleep, tmp_path, monkeypatch):  # noqa: F811
    """A fake cluster for pycalrissian: no retry sleeps, files copied out land in tmp_path."""
    monkeypatch.chdir(tmp_path)
    yield fake_cluster
    assert fake_cluster.errors == []


@pytest.fixture
def core(fake_cluster):  # noqa: F811
    """A CoreV1Api on the fake cluster, with its own ApiClient (no global configuration)."""
    api_client = config.new_client_from_config(config_file=str(fake_cluster.api.kubeconfig_path))
    with api_client:
        yield client.CoreV1Api(api_client)


def _execution(namespace: str, cwl: dict, params: dict, **job_options):
    context = CalrissianContext(namespace=namespace, storage_class="standard", volume_size="10Mi")
    context.initialise()
    job = CalrissianJob(
        cwl=cwl, params=params, runtime_context=context, cwl_entry_point="main", **job_options
    )
    execution = CalrissianExecution(job=job, runtime_context=context)
    execution.submit()
    return context, job, execution


def _pod(name: str, *, image: str = "busybox:1.36", volumes=(), mounts=(), env=()) -> dict:
    return {
        "metadata": {"name": name, "labels": {"app": "harness"}},
        "spec": {
            "volumes": list(volumes),
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "volumeMounts": list(mounts),
                    "env": list(env),
                }
            ],
        },
    }


def _pvc(name: str, storage_class: str = "standard") -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": "1Mi"}},
        },
    }


def _job(name: str, command: list[str]) -> dict:
    """A Job whose pod is not Calrissian: it goes Running and nothing executes."""
    return {
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36", "command": command}],
                }
            }
        },
    }


def _phase(core, namespace: str, name: str) -> str:
    return core.read_namespaced_pod(name, namespace).status.phase


def _waiting_reason(core, namespace: str, name: str) -> str | None:
    statuses = core.read_namespaced_pod(name, namespace).status.container_statuses or []
    return statuses[0].state.waiting.reason if statuses and statuses[0].state.waiting else None


# --- pycalrissian's whole flow -------------------------------------------------------------


def test_a_calrissian_job_runs_end_to_end(calrissian, tmp_path):
    api, namespace = calrissian.api, "harness-ok"
    context, job, execution = _execution(namespace, HELLO, {"message": "hello"}, tool_logs=True)

    execution.monitor(interval=1)

    assert execution.get_status() is JobStatus.SUCCEEDED
    output = execution.get_output()
    assert output["out"]["location"] == "file:///calrissian/message.txt"  # the container view
    assert output["out"]["path"] == "/calrissian/message.txt"
    volume = api.pvc_dir(namespace, CALRISSIAN_WDIR)
    assert (volume / "message.txt").read_text() == "hello\n"
    assert json.loads((volume / "output.json").read_text()) == output
    assert "Final process status is success" in (volume / "stderr.log").read_text()
    report = execution.get_usage_report()
    assert report["total_tasks"] == 1
    [child] = report["children"]
    assert child["name"] == "step" and child["exit_code"] == 0
    assert child["elapsed_seconds"] >= 0 and report["elapsed_seconds"] >= child["elapsed_seconds"]
    assert execution.get_tool_logs() == ["./step.log"]
    assert (tmp_path / "step.log").read_text() == "to-stderr\nto-stdout\n"
    log = execution.get_log()
    assert "/workflow-input/workflow.cwl#main" in log and "[job step] completed success" in log
    assert str(api.state_dir) not in log  # paths are shown as the container sees them
    assert execution.get_start_time() is not None and execution.get_completion_time() is not None

    # What pycalrissian asked the cluster for.
    pvc = api.get("persistentvolumeclaims", namespace, CALRISSIAN_WDIR)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"] and pvc["status"]["phase"] == "Bound"
    params = api.get("configmaps", namespace, "params")
    assert yaml.safe_load(params["data"]["params"]) == {"message": "hello"}
    [pod] = api.objects("pods", namespace)
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["calrissian"]
    assert "/workflow-input/workflow.cwl#main" in container["args"]
    assert pod["metadata"]["labels"]["job-name"] == job.job_name
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    [run] = calrissian.controller.runs
    assert run.returncode == 0 and not run.killed and run.pod == pod["metadata"]["name"]
    assert "--no-container" in run.argv and "--max-ram" not in run.argv
    assert api.requests.matching(verb="create", resource="jobs", namespace=namespace)

    context.dispose()
    assert namespace not in api.namespaces()
    assert api.objects("pods", namespace) == [] and api.objects("jobs", namespace) == []


def test_a_failing_tool_is_retried_until_the_backoff_limit(calrissian):
    api, namespace = calrissian.api, "harness-fail"
    context, job, execution = _execution(namespace, FAILING, {}, backoff_limit=1)

    execution.monitor(interval=1)

    assert execution.get_status() is JobStatus.FAILED
    assert execution.get_output() is None
    assert execution.get_completion_time() is not None
    status = api.get("jobs", namespace, job.job_name)["status"]
    assert status["failed"] == 2 and "active" not in status and "completionTime" not in status
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        ("FailureTarget", "BackoffLimitExceeded"),
        ("Failed", "BackoffLimitExceeded"),
    ]
    assert [run.returncode for run in calrissian.controller.runs] == [1, 1]
    pods = api.objects("pods", namespace)
    assert [p["status"]["phase"] for p in pods] == ["Failed", "Failed"]
    assert {p["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] for p in pods} == {
        "Error"
    }
    [child] = execution.get_usage_report()["children"]
    assert child["exit_code"] == 3
    assert "exited with status: 3" in execution.get_log()
    context.dispose()


def test_the_wall_time_kills_a_sleeping_tool(calrissian):
    api, controller, namespace = calrissian.api, calrissian.controller, "harness-slow"
    context, job, execution = _execution(namespace, SLEEPING, {})

    started = time.monotonic()
    execution.monitor(interval=1, wall_time=2)

    assert time.monotonic() - started < 10
    assert execution.get_status() is JobStatus.KILLED
    assert api.get("jobs", namespace, job.job_name) is None
    # Deleting a Job without a propagation policy orphans its pod, as on a cluster.
    [pod] = api.objects("pods", namespace)
    assert pod["metadata"]["labels"]["job-name"] == job.job_name
    assert "ownerReferences" not in pod["metadata"] and pod["status"]["phase"] == "Running"
    assert controller.busy()

    context.dispose()

    assert controller.wait_idle(timeout=5)
    [run] = controller.runs
    assert run.killed and run.returncode < 0


def test_a_calrissian_pod_that_cannot_pull_its_image_is_killed_after_the_grace_period(
    calrissian, monkeypatch
):
    api, namespace = calrissian.api, "harness-pull"
    monkeypatch.setenv("CALRISSIAN_IMAGE", "registry.example/calrissian:missing")
    api.unpullable_images.add("registry.example/calrissian:missing")
    _, job, execution = _execution(namespace, HELLO, {"message": "never"})

    execution.monitor(interval=1, grace_period=0)

    assert execution.get_status() is JobStatus.KILLED
    [pod] = execution.get_waiting_pods()
    assert pod.metadata.labels["job-name"] == job.job_name
    assert pod.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"
    assert calrissian.controller.runs == []


# --- The API server ------------------------------------------------------------------------


def test_label_and_field_selectors(fake_cluster, core):  # noqa: F811
    for name, labels in (
        ("a", {"app": "web", "tier": "front"}),
        ("b", {"app": "web", "tier": "back"}),
        ("c", {"app": "db"}),
    ):
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})

    def names(**selectors):
        return [
            cm.metadata.name for cm in core.list_namespaced_config_map("default", **selectors).items
        ]

    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app==web,tier!=front") == ["b"]
    assert names(label_selector="tier in (front, back)") == ["a", "b"]
    assert names(label_selector="app notin (web)") == ["c"]
    assert names(label_selector="tier") == ["a", "b"]
    assert names(label_selector="!tier") == ["c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b,metadata.namespace=default") == ["a", "c"]
    with pytest.raises(ApiException) as refused:
        names(label_selector="app in web")
    assert refused.value.status == 400

    core.create_namespaced_pod("default", _pod("runner"))
    wait_for(lambda: _phase(core, "default", "runner") == "Running")
    running = core.list_pod_for_all_namespaces(field_selector="status.phase=Running").items
    assert [pod.metadata.name for pod in running] == ["runner"]


def test_watch_honours_timeout_and_resource_version(fake_cluster, core):  # noqa: F811
    started = time.monotonic()
    events = list(
        watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=1)
    )
    assert events == [] and 0.9 < time.monotonic() - started < 3

    first = core.create_namespaced_config_map("default", {"metadata": {"name": "first"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "second"}})
    replay, seen = watch.Watch(), []
    for event in replay.stream(
        core.list_namespaced_config_map,
        "default",
        resource_version=first.metadata.resource_version,
        timeout_seconds=5,
    ):
        seen.append((event["type"], event["object"].metadata.name))
        replay.stop()  # events come in order: "first" would have come before
    assert seen == [("ADDED", "second")]

    # A watch sees a change as it happens, then stops when asked.
    threading.Timer(0.2, core.delete_namespaced_config_map, ("first", "default")).start()
    stream_ = watch.Watch()
    started = time.monotonic()
    for event in stream_.stream(core.list_namespaced_config_map, "default", timeout_seconds=5):
        if event["type"] == "DELETED":
            stream_.stop()
    assert event["object"].metadata.name == "first" and time.monotonic() - started < 2


def test_exec_runs_tar_test_and_cat_against_the_volumes(fake_cluster, core):  # noqa: F811
    api = fake_cluster.api
    core.create_namespaced_persistent_volume_claim("default", _pvc("data"))
    volume = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
    mounts = [
        {"name": "data", "mountPath": "/data"},
        {"name": "data", "mountPath": "/sub", "subPath": "nested"},
    ]
    core.create_namespaced_pod("default", _pod("shell", volumes=[volume], mounts=mounts))
    wait_for(lambda: _phase(core, "default", "shell") == "Running")
    folder = api.pvc_dir("default", "data")
    (folder / "hello.txt").write_text("hello\n")
    (folder / "nested" / "inner.txt").write_text("inner\n")

    def run(command, stdin: bytes | None = None):
        session = stream(
            core.connect_get_namespaced_pod_exec,
            "shell",
            "default",
            command=command,
            stdin=stdin is not None,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
            binary=True,
        )
        if stdin is not None:  # v4 has no half-close: the client closes the websocket
            session.write_stdin(stdin)
            session.close()
            return None, b"", b""
        session.run_forever(timeout=5)
        return session.returncode, session.read_stdout() or b"", session.read_stderr() or b""

    code, out, err = run(["tar", "cf", "-", "/data/hello.txt"])
    assert code == 0 and b"Removing leading" in err
    with tarfile.open(fileobj=io.BytesIO(out)) as archive:
        assert archive.getnames() == ["data/hello.txt"]
        assert archive.extractfile("data/hello.txt").read() == b"hello\n"
    assert run(["tar", "cf", "-", "/data/missing"])[0] == 2
    assert run(["test", "-d", "/sub"])[0] == 0
    assert run(["test", "-f", "/sub/missing"])[0] == 1
    assert run(["cat", "/sub/inner.txt"])[:2] == (0, b"inner\n")
    assert run(["ls", "/"])[0] == 127

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("copied.txt")
        info.size = 7
        archive.addfile(info, io.BytesIO(b"copied\n"))
    run(["tar", "xmf", "-", "-C", "/sub"], stdin=buffer.getvalue())
    copied = folder / "nested" / "copied.txt"
    wait_for(lambda: copied.exists() and copied.read_text() == "copied\n")

    api.unpullable_images.add("registry.invalid/none")
    core.create_namespaced_pod("default", _pod("pending", image="registry.invalid/none:1"))
    with pytest.raises(ApiException):  # the handshake is refused: the pod is not running
        stream(core.connect_get_namespaced_pod_exec, "pending", "default", command=["cat", "/x"])
    api.inject("exec", "pods/exec", status=500)
    with pytest.raises(ApiException):  # refused before the websocket handshake
        run(["cat", "/data/hello.txt"])
    api.inject("log", "pods/log", status=503)
    with pytest.raises(ApiException) as error:
        core.read_namespaced_pod_log("shell", "default")
    assert error.value.status == 503
    assert core.read_namespaced_pod_log("shell", "default") == ""  # nothing ran in it

    plain = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    plain.request("GET", "/api/v1/namespaces/default/pods/shell/exec?command=ls")
    answer = plain.getresponse()
    assert answer.status == 400 and b"Upgrade request required" in answer.read()
    plain.close()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_copies_files_in_and_out(calrissian, tmp_path):
    from pycalrissian.utils import copy_to_volume

    api, namespace = calrissian.api, "harness-copy"
    context = CalrissianContext(namespace=namespace, storage_class="standard", volume_size="1Mi")
    context.initialise()
    source = tmp_path / "input.json"
    source.write_text('{"x": 1}\n')
    volume = {"name": "wdir", "persistentVolumeClaim": {"claimName": CALRISSIAN_WDIR}}
    mount = {"name": "wdir", "mountPath": "/calrissian"}

    copy_to_volume(context, volume, mount, [str(source)], "/calrissian")  # kubectl cp, v5

    assert (api.pvc_dir(namespace, CALRISSIAN_WDIR) / "input.json").read_text() == '{"x": 1}\n'
    assert api.objects("pods", namespace) == []  # the copy pod is gone
    context.dispose()


def test_faults_injected_are_seen_by_the_client(calrissian, core):
    api = calrissian.api
    failing = api.inject("get", "namespaces", status=500)
    with pytest.raises(ApiException) as error:
        core.read_namespace("default")
    assert error.value.status == 500 and json.loads(error.value.body)["reason"] == "InternalError"
    assert failing.fired == 1 and core.read_namespace("default").metadata.name == "default"

    api.inject("list", "pods", status=403, nth=2)
    core.list_namespaced_pod("default")
    with pytest.raises(ApiException) as error:
        core.list_namespaced_pod("default")
    assert error.value.status == 403 and json.loads(error.value.body)["reason"] == "Forbidden"

    # A 429 carries Retry-After: 0, which urllib3 honours by itself (3 retries).
    throttled = api.inject("get", "namespaces", status=429)
    before = len(api.requests)
    assert core.read_namespace("default").metadata.name == "default"
    assert throttled.fired == 1 and len(api.requests) - before == 2
    api.inject("get", "namespaces", status=429, times=4)
    with pytest.raises(ApiException) as error:
        core.read_namespace("default")
    assert error.value.status == 429 and error.value.headers["Retry-After"] == "0"

    api.inject("create", "configmaps", drop=True)
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.MaxRetryError)):
        core.create_namespaced_config_map("default", {"metadata": {"name": "lost"}})
    assert api.get("configmaps", "default", "lost") is None

    dropped = api.inject("get", "namespaces", drop=True, times=4)  # urllib3 retries a GET 3 times
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        core.read_namespace("default")
    assert dropped.fired == 4

    api.inject("create", "namespaces", status=503)
    with pytest.raises(ApiException) as error:
        CalrissianContext(
            namespace="harness-503", storage_class="x", volume_size="1Mi"
        ).initialise()
    assert error.value.status == 503 and "harness-503" not in api.namespaces()

    before = len(api.requests)
    core.list_namespaced_pod("default", label_selector="app=none")
    assert api.requests[before:] == [("list", "pods", "default", None)]


def test_deleting_a_namespace_deletes_everything_in_it(calrissian, core):
    api, namespace = calrissian.api, "harness-gone"
    _execution(namespace, SLEEPING, {})
    core.create_namespaced_pod(namespace, _pod("standalone"))
    core.create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    [job_pod] = wait_for(
        lambda: [p for p in api.objects("pods", namespace) if "job-name" in p["metadata"]["labels"]]
    )
    # Delete while the tool runs: the local process must be stopped.
    wait_for(lambda: "[job step]" in api.pod_log(namespace, job_pod["metadata"]["name"]))

    answer = core.delete_namespace(namespace, grace_period_seconds=0, _preload_content=False)

    assert json.loads(answer.data)["status"]["phase"] == "Terminating"  # as a cluster answers
    assert namespace not in api.namespaces()
    for resource in (
        "pods",
        "jobs",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "persistentvolumeclaims",
        "roles",
        "rolebindings",
    ):
        assert api.objects(resource, namespace) == [], resource
    with pytest.raises(ApiException) as error:
        core.read_namespace(namespace)
    assert error.value.status == 404
    assert calrissian.controller.wait_idle(timeout=5)
    [run] = calrissian.controller.runs
    assert run.killed


def test_deleting_a_job_cascades_only_with_a_propagation_policy(fake_cluster, core):  # noqa: F811
    api = fake_cluster.api
    batch = client.BatchV1Api(core.api_client)
    for name in ("background", "orphan"):
        batch.create_namespaced_job("default", _job(name, ["sleep", "60"]))
    pods = {}
    for name in ("background", "orphan"):
        pods[name] = wait_for(
            lambda n=name: core.list_namespaced_pod("default", label_selector=f"job-name={n}").items
        )[0]
        wait_for(lambda n=name: _phase(core, "default", pods[n].metadata.name) == "Running")
        assert pods[name].metadata.owner_references[0].kind == "Job"
    assert batch.read_namespaced_job_status("orphan", "default").status.active == 1

    batch.delete_namespaced_job("background", "default", propagation_policy="Background")
    batch.delete_namespaced_job("orphan", "default")

    assert api.get("pods", "default", pods["background"].metadata.name) is None
    orphan = api.get("pods", "default", pods["orphan"].metadata.name)
    assert orphan is not None and "ownerReferences" not in orphan["metadata"]


def test_pods_that_cannot_start_wait_with_the_reason_a_cluster_gives(fake_cluster, core):  # noqa: F811
    api = fake_cluster.api
    api.unpullable_images.add("registry.example/missing:1.0")
    reasons = []
    watcher = watch.Watch()
    core.create_namespaced_pod("default", _pod("pull", image="registry.example/missing:1.0"))
    for event in watcher.stream(
        core.list_namespaced_pod, "default", field_selector="metadata.name=pull", timeout_seconds=5
    ):
        statuses = event["object"].status.container_statuses or []
        if statuses and statuses[0].state.waiting:
            reasons.append(statuses[0].state.waiting.reason)
        if reasons[-1:] == ["ImagePullBackOff"]:
            watcher.stop()
    assert reasons == ["ErrImagePull", "ImagePullBackOff"]

    secret_env = {
        "name": "TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "absent", "key": "token"}},
    }
    core.create_namespaced_pod("default", _pod("config", env=[secret_env]))
    wait_for(lambda: _waiting_reason(core, "default", "config") == "CreateContainerConfigError")
    state = core.read_namespaced_pod("config", "default").status.container_statuses[0].state
    assert state.waiting.message == 'secret "absent" not found'
    core.create_namespaced_secret(
        "default", {"metadata": {"name": "absent"}, "stringData": {"token": "t"}}
    )
    wait_for(lambda: _phase(core, "default", "config") == "Running")  # retried, as a kubelet does

    volume = {"name": "cfg", "configMap": {"name": "not-there"}}
    core.create_namespaced_pod(
        "default", _pod("mount", volumes=[volume], mounts=[{"name": "cfg", "mountPath": "/cfg"}])
    )
    wait_for(lambda: _waiting_reason(core, "default", "mount") == "ContainerCreating")

    api.unschedulable_storage_classes.add("slow")
    core.create_namespaced_persistent_volume_claim("default", _pvc("slow-claim", "slow"))
    assert (
        core.read_namespaced_persistent_volume_claim("slow-claim", "default").status.phase
        == "Pending"
    )
    claim = {"name": "v", "persistentVolumeClaim": {"claimName": "slow-claim"}}
    core.create_namespaced_pod(
        "default", _pod("unbound", volumes=[claim], mounts=[{"name": "v", "mountPath": "/v"}])
    )

    def scheduling():
        conditions = core.read_namespaced_pod("unbound", "default").status.conditions or []
        return next((c for c in conditions if c.type == "PodScheduled"), None)

    condition = wait_for(scheduling)
    assert condition.status == "False" and condition.reason == "Unschedulable"
    assert "pod has unbound immediate PersistentVolumeClaims" in condition.message
    assert _phase(core, "default", "unbound") == "Pending"


def test_admission_refuses_what_a_cluster_refuses(fake_cluster, core):  # noqa: F811
    def status_of(call, *args):
        with pytest.raises(ApiException) as error:
            call(*args)
        return error.value.status, json.loads(error.value.body)["reason"]

    assert status_of(core.create_namespace, {"metadata": {"name": "Not_Valid"}}) == (422, "Invalid")
    assert status_of(core.create_namespace, {"metadata": {"name": "default"}}) == (
        409,
        "AlreadyExists",
    )
    assert status_of(core.create_namespaced_config_map, "nowhere", {"metadata": {"name": "x"}}) == (
        404,
        "NotFound",
    )
    too_long = {"metadata": {"name": "x", "labels": {"k": "v" * 64}}}
    assert status_of(core.create_namespaced_config_map, "default", too_long) == (422, "Invalid")
    bad_secret = {"metadata": {"name": "s"}, "data": {"k": "not base64!"}}
    assert status_of(core.create_namespaced_secret, "default", bad_secret) == (400, "BadRequest")
    ghost = _pod("ghost")
    ghost["spec"]["serviceAccountName"] = "ghost"
    assert status_of(core.create_namespaced_pod, "default", ghost) == (403, "Forbidden")
    assert status_of(core.delete_namespace, "default") == (403, "Forbidden")

    created = core.create_namespaced_config_map(
        "default", {"metadata": {"generateName": "gen-"}, "data": {"a": "1"}}
    )
    name = created.metadata.name
    assert name.startswith("gen-") and len(name) == 9 and created.metadata.uid
    stale = core.replace_namespaced_config_map(
        name, "default", created.to_dict() | {"data": {"a": "2"}}
    )
    assert int(stale.metadata.resource_version) > int(created.metadata.resource_version)
    assert status_of(core.replace_namespaced_config_map, name, "default", created) == (
        409,
        "Conflict",
    )
    merged = core.patch_namespaced_config_map(name, "default", {"metadata": {"labels": {"m": "1"}}})
    assert merged.metadata.labels == {"m": "1"} and merged.data == {"a": "2"}
    patched = core.patch_namespaced_config_map(
        name, "default", [{"op": "add", "path": "/data/b", "value": "3"}]
    )
    assert patched.data == {"a": "2", "b": "3"}
    sa = core.read_namespaced_service_account("default", "default")
    assert sa.metadata.name == "default"  # the ServiceAccount controller's work


def test_discovery_endpoints(fake_cluster, core):  # noqa: F811
    assert client.CoreApi(core.api_client).get_api_versions().versions == ["v1"]
    groups = client.ApisApi(core.api_client).get_api_versions().groups
    assert {group.name for group in groups} == {"batch", "rbac.authorization.k8s.io"}
    assert client.VersionApi(core.api_client).get_code().major == "1"
    resources = client.BatchV1Api(core.api_client).get_api_resources().resources
    assert "jobs" in {resource.name for resource in resources}


def test_stopping_a_cluster_leaves_nothing_running(tmp_path):
    before = set(threading.enumerate())
    cluster = FakeCluster(tmp_path / "cluster").start()
    port = cluster.api.port
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    idle.request("GET", "/version")
    assert idle.getresponse().read()  # a keep-alive connection left open
    watching = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    watching.request("GET", "/api/v1/namespaces?watch=true&timeoutSeconds=60")
    assert watching.getresponse().status == 200  # a watch left running

    started = time.monotonic()
    cluster.stop()

    assert time.monotonic() - started < 3
    wait_for(lambda: set(threading.enumerate()) <= before, timeout=3)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    idle.close()
    watching.close()
