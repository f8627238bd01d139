"""Controllers that make a FakeKube behave like a one-node cluster running Calrissian.

- ``Kubelet``: pods that no Job owns go Running (nothing executes), so that exec and logs work
  on them (pycalrissian's busybox copy pods).
- ``JobController``: a Job gets a pod and its status follows its pods as with the real Job
  controller, a new pod per failure until ``backoffLimit`` is exceeded.
- ``LocalCalrissianController``: the node for Job pods. A pod that would run Calrissian runs the
  same workflow with cwltool on this machine instead, and writes what Calrissian writes where
  Calrissian writes it (output, stderr log, usage report, tool logs) in the PVC folder.
- ``FakeCluster``: the API server and the three controllers, started and stopped together.

Pods that cannot start stay Pending with the reason a cluster gives: an image listed in
``api.unpullable_images`` (ErrImagePull, then ImagePullBackOff), an env reference to a missing
Secret or ConfigMap (CreateContainerConfigError), a missing configMap volume
(ContainerCreating), a claim that is not bound (PodScheduled False, reason Unschedulable).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote

import yaml

from .fake_kube import ApiError, FakeKube, Obj, PodFiles, now_rfc3339

NODE_NAME = "fake-node"
HOST_IP = "10.0.0.10"
UNSCHEDULABLE_CLAIMS = (
    "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: "
    "0/1 nodes are available: 1 Preemption is not helpful for scheduling."
)


# --- Pod status, as a kubelet writes it ------------------------------------------------------


def _condition(kind: str, status: str, reason: str = "", message: str = "") -> Obj:
    condition: Obj = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now_rfc3339(),
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _container_status(container: Obj, state: Obj, *, ready: bool = False) -> Obj:
    status = {
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "ready": ready,
        "restartCount": 0,
        "started": ready,
        "state": state,
        "lastState": {},
    }
    if "waiting" not in state:
        status["containerID"] = f"containerd://{container['name']}"
    return status


def _scheduled_status(pod: Obj, ready: bool, unready_reason: str = "ContainersNotReady") -> Obj:
    """Conditions, addresses and start time of a pod placed on the node."""
    ip = f"10.244.0.{int(pod['metadata']['uid'][:2], 16) % 250 + 2}"
    flag = "True" if ready else "False"
    names = " ".join(c["name"] for c in pod["spec"]["containers"])
    reason, message = (
        ("", "") if ready else (unready_reason, f"containers with unready status: [{names}]")
    )
    previous = pod.get("status") or {}
    return {
        "phase": "Pending",
        "conditions": [
            _condition("PodReadyToStartContainers", "True"),
            _condition("Initialized", "True"),
            _condition("Ready", flag, reason, message),
            _condition("ContainersReady", flag, reason, message),
            _condition("PodScheduled", "True"),
        ],
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": previous.get("startTime") or now_rfc3339(),
        "qosClass": previous.get("qosClass", "BestEffort"),
    }


def _set_running(pod: Obj) -> None:
    started = now_rfc3339()
    status = _scheduled_status(pod, ready=True)
    status["phase"] = "Running"
    status["containerStatuses"] = [
        _container_status(c, {"running": {"startedAt": started}}, ready=True)
        for c in pod["spec"]["containers"]
    ]
    pod["spec"]["nodeName"] = NODE_NAME
    pod["status"] = status


def _set_terminated(pod: Obj, exit_code: int, started_at: str, finished_at: str) -> None:
    status = _scheduled_status(pod, ready=False, unready_reason="PodCompleted")
    status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
    state = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": started_at,
        "finishedAt": finished_at,
    }
    status["containerStatuses"] = [
        _container_status(c, {"terminated": dict(state, containerID=f"containerd://{c['name']}")})
        for c in pod["spec"]["containers"]
    ]
    pod["status"] = status


def _signature(status: Obj) -> tuple:
    """What a status says, without its timestamps (so unchanged states are not rewritten)."""
    return (
        status.get("phase"),
        tuple((c["type"], c["status"], c.get("reason")) for c in status.get("conditions") or []),
        tuple(
            (s["name"], json.dumps(s.get("state"), sort_keys=True))
            for s in status.get("containerStatuses") or []
        ),
    )


def job_owner(pod: Obj) -> str | None:
    """The uid of the Job controlling a pod, if any."""
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "Job" and ref.get("controller"):
            return ref.get("uid")
    return None


# --- Why a pod cannot start ------------------------------------------------------------------


def _unschedulable(api: FakeKube, pod: Obj) -> str | None:
    namespace = pod["metadata"]["namespace"]
    for volume in pod["spec"].get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim is None:
            continue
        found = api.get("persistentvolumeclaims", namespace, claim)
        if found is None:
            return f'0/1 nodes are available: persistentvolumeclaim "{claim}" not found.'
        if found.get("status", {}).get("phase") != "Bound":
            return UNSCHEDULABLE_CLAIMS
    return None


def _unpullable(api: FakeKube, image: str) -> bool:
    repository = image.split("@")[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return image in api.unpullable_images or repository in api.unpullable_images


_REFERENCES = (
    ("secretKeyRef", "secretRef", "secrets", "Secret"),
    ("configMapKeyRef", "configMapRef", "configmaps", "ConfigMap"),
)


def _config_problem(api: FakeKube, namespace: str, container: Obj) -> str | None:
    """The kubelet's CreateContainerConfigError message for a missing env source."""
    for env in container.get("env") or []:
        source = env.get("valueFrom") or {}
        for key_ref, _, resource, label in _REFERENCES:
            ref = source.get(key_ref)
            if not ref or ref.get("optional"):
                continue
            found = api.get(resource, namespace, ref.get("name", ""))
            if found is None:
                return f'{label.lower()} "{ref.get("name")}" not found'
            keys = {**(found.get("data") or {}), **(found.get("binaryData") or {})}
            if ref.get("key") not in keys:
                return (
                    f"couldn't find key {ref.get('key')} in {label} {namespace}/{ref.get('name')}"
                )
    for env_from in container.get("envFrom") or []:
        for _, ref_name, resource, label in _REFERENCES:
            ref = env_from.get(ref_name)
            if (
                ref
                and not ref.get("optional")
                and api.get(resource, namespace, ref["name"]) is None
            ):
                return f'{label.lower()} "{ref["name"]}" not found'
    return None


def _blocked_status(api: FakeKube, pod: Obj) -> Obj | None:
    """The Pending status of a pod that cannot start yet, or None when it can."""
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    unschedulable = _unschedulable(api, pod)
    if unschedulable is not None:
        previous = pod.get("status") or {}
        condition = _condition("PodScheduled", "False", "Unschedulable", unschedulable)
        return {"phase": "Pending", "conditions": [condition], "qosClass": previous.get("qosClass")}
    mount_problems = api.mount_volumes(namespace, name)
    before = {
        s["name"]: ((s.get("state") or {}).get("waiting") or {}).get("reason")
        for s in (pod.get("status") or {}).get("containerStatuses") or []
    }
    waiting: dict[str, tuple[str, str]] = {}
    for container in pod["spec"]["containers"]:
        image = container["image"]
        problem = _config_problem(api, namespace, container)
        if mount_problems:
            waiting[container["name"]] = ("ContainerCreating", "")
        elif _unpullable(api, image):
            if before.get(container["name"]) in ("ErrImagePull", "ImagePullBackOff"):
                waiting[container["name"]] = (
                    "ImagePullBackOff",
                    f'Back-off pulling image "{image}"',
                )
            else:
                message = f'failed to pull and unpack image "{image}": not found'
                waiting[container["name"]] = (
                    "ErrImagePull",
                    f"rpc error: code = NotFound desc = {message}",
                )
        elif problem is not None:
            waiting[container["name"]] = ("CreateContainerConfigError", problem)
    if not waiting:
        return None
    status = _scheduled_status(pod, ready=False)
    status["containerStatuses"] = []
    for container in pod["spec"]["containers"]:
        reason, message = waiting.get(container["name"], ("ContainerCreating", ""))
        state = {"reason": reason, **({"message": message} if message else {})}
        status["containerStatuses"].append(_container_status(container, {"waiting": state}))
    return status


# --- Control loops ---------------------------------------------------------------------------


class _Controller:
    """A control loop fed by the API server's change notifications, plus a periodic resync."""

    watched: ClassVar[tuple[str, ...]] = ()
    period = 0.05  # seconds between resyncs

    def __init__(self, api: FakeKube):
        self.api = api
        self.errors: list[str] = []  # tracebacks of failures inside the loop, for tests
        self._events: queue.Queue[tuple[str, str, Obj]] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self.api.subscribe(self._notify)
        self._thread = threading.Thread(target=self._loop, name=type(self).__name__, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.api.unsubscribe(self._notify)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def handle(self, event_type: str, resource: str, obj: Obj) -> None:
        """React to one change notification."""

    def resync(self) -> None:
        """Periodic work (timers, retries, reconciliation)."""

    def _notify(self, event_type: str, resource: str, obj: Obj) -> None:
        if resource in self.watched:
            self._events.put((event_type, resource, obj))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                events = [self._events.get(timeout=self.period)]
            except queue.Empty:
                events = []
            while not self._events.empty():  # this thread is the only consumer
                events.append(self._events.get_nowait())
            try:
                for event in events:
                    self.handle(*event)
                self.resync()
            except Exception:
                self.errors.append(traceback.format_exc())
                traceback.print_exc()


class _NodeAgent(_Controller):
    """Starts the pods it owns once nothing blocks them; subclasses decide what runs."""

    watched = ("pods",)
    retry = 0.1  # seconds between attempts for a blocked pod

    def __init__(self, api: FakeKube, *, start_delay: float = 0.05):
        super().__init__(api)
        self.start_delay = start_delay
        self._pending: dict[str, tuple[str, str, float]] = {}  # uid: namespace, name, due

    def owns(self, pod: Obj) -> bool:
        raise NotImplementedError

    def started(self, pod: Obj) -> None:
        """The pod is now Running."""

    def deleted(self, pod: Obj) -> None:
        """The pod was deleted."""

    def handle(self, event_type: str, resource: str, obj: Obj) -> None:
        uid = obj["metadata"]["uid"]
        if event_type == "ADDED" and obj["status"].get("phase") == "Pending" and self.owns(obj):
            due = time.monotonic() + self.start_delay
            self._pending[uid] = (obj["metadata"]["namespace"], obj["metadata"]["name"], due)
        elif event_type == "DELETED":
            self._pending.pop(uid, None)
            self.deleted(obj)

    def resync(self) -> None:
        now = time.monotonic()
        for uid, (namespace, name, due) in list(self._pending.items()):
            if now < due:
                continue
            pod = self.api.get("pods", namespace, name)
            if pod is None or pod["metadata"]["uid"] != uid:
                del self._pending[uid]
                continue
            blocked = _blocked_status(self.api, pod)
            if blocked is None:
                del self._pending[uid]
                running = self.api.modify("pods", namespace, name, _set_running)
                if running is not None:
                    self.started(running)
                continue
            self._pending[uid] = (namespace, name, now + self.retry)
            if _signature(blocked) != _signature(pod.get("status") or {}):

                def show(obj: Obj, status: Obj = blocked) -> None:
                    obj["status"] = status
                    if "containerStatuses" in status:  # scheduled, waiting on the node
                        obj["spec"]["nodeName"] = NODE_NAME

                self.api.modify("pods", namespace, name, show)


class Kubelet(_NodeAgent):
    """Pods no Job owns: Pending, then Running about 50 ms later. Nothing executes.

    Enough for helper pods (pycalrissian's busybox copy pod) that are used through exec.
    """

    def owns(self, pod: Obj) -> bool:
        return job_owner(pod) is None


@dataclass
class _JobRecord:
    """What the Job controller remembers of a Job: the outcome of each pod it created."""

    namespace: str
    name: str
    outcomes: dict[str, str] = field(default_factory=dict)  # pod uid: Succeeded | Failed
    live: set[str] = field(default_factory=set)  # uids of pods not finished yet
    finished_at: float | None = None
    next_attempt: float = 0.0
    last_error: str = ""


class JobController(_Controller):
    """batch/v1 Jobs: one pod at a time, retried until success or backoffLimit is exceeded.

    Status as the real controller writes it: ``status: {}`` at first, then ``active``,
    ``startTime`` and ``ready``; on success ``succeeded``, ``completionTime`` and conditions
    SuccessCriteriaMet + Complete; on failure ``failed`` (a new pod while failures do not exceed
    ``backoffLimit``, no back-off delay), then conditions FailureTarget + Failed with reason
    BackoffLimitExceeded. A pod deleted before it ended counts as failed. Also honours
    ``ttlSecondsAfterFinished``.
    """

    watched = ("jobs",)

    def __init__(self, api: FakeKube):
        super().__init__(api)
        self._jobs: dict[str, _JobRecord] = {}

    def handle(self, event_type: str, resource: str, obj: Obj) -> None:
        uid = obj["metadata"]["uid"]
        if event_type == "DELETED":
            self._jobs.pop(uid, None)
        elif uid not in self._jobs:
            self._jobs[uid] = _JobRecord(obj["metadata"]["namespace"], obj["metadata"]["name"])

    def resync(self) -> None:
        for uid, record in list(self._jobs.items()):
            job = self.api.get("jobs", record.namespace, record.name)
            if job is None or job["metadata"]["uid"] != uid:
                self._jobs.pop(uid, None)
            else:
                self._reconcile(job, record)

    def _reconcile(self, job: Obj, record: _JobRecord) -> None:
        status, spec, uid = job.get("status") or {}, job["spec"], job["metadata"]["uid"]
        if _job_finished(status):
            self._expire(job, record)
            return
        pods = [p for p in self.api.objects("pods", record.namespace) if job_owner(p) == uid]
        present = set()
        for pod in pods:
            pod_uid, phase = pod["metadata"]["uid"], pod["status"].get("phase")
            present.add(pod_uid)
            if phase in ("Succeeded", "Failed"):
                record.outcomes.setdefault(pod_uid, phase)
                record.live.discard(pod_uid)
            else:
                record.live.add(pod_uid)
        for gone in record.live - present:  # deleted before it ended: a failure
            record.outcomes.setdefault(gone, "Failed")
        record.live &= present
        succeeded = sum(outcome == "Succeeded" for outcome in record.outcomes.values())
        failed = sum(outcome == "Failed" for outcome in record.outcomes.values())
        new = {key: value for key, value in status.items() if key not in ("active", "ready")}
        if succeeded >= (spec.get("completions") or 1):
            message = "Reached expected number of succeeded pods"
            new["completionTime"] = now_rfc3339()
            new["conditions"] = [
                _job_condition("SuccessCriteriaMet", "CompletionsReached", message),
                _job_condition("Complete", "CompletionsReached", message),
            ]
        elif failed > spec.get("backoffLimit", 6):
            message = "Job has reached the specified backoff limit"
            new["conditions"] = [
                _job_condition("FailureTarget", "BackoffLimitExceeded", message),
                _job_condition("Failed", "BackoffLimitExceeded", message),
            ]
            for pod in pods:
                if pod["metadata"]["uid"] in record.live:
                    self.api.delete("pods", record.namespace, pod["metadata"]["name"])
            record.live.clear()
        elif not record.live and time.monotonic() >= record.next_attempt:
            created = self._create_pod(job, record)
            if created is not None:
                record.live.add(created["metadata"]["uid"])
                pods.append(created)
                new.setdefault("startTime", now_rfc3339())
        ready = sum(
            p["metadata"]["uid"] in record.live and p["status"].get("phase") == "Running"
            for p in pods
        )
        for key, count in (
            ("active", len(record.live)),
            ("succeeded", succeeded),
            ("failed", failed),
        ):
            if count:
                new[key] = count
            else:
                new.pop(key, None)
        new.update(ready=ready, terminating=0, uncountedTerminatedPods={})
        if new != status:
            self.api.modify("jobs", record.namespace, record.name, lambda j: j.update(status=new))

    def _create_pod(self, job: Obj, record: _JobRecord) -> Obj | None:
        template, meta = job["spec"]["template"], job["metadata"]
        template_meta = template.get("metadata") or {}
        pod_meta: Obj = {
            "generateName": f"{meta['name']}-",
            "labels": dict(template_meta.get("labels") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if template_meta.get("annotations"):
            pod_meta["annotations"] = dict(template_meta["annotations"])
        pod = {"metadata": pod_meta, "spec": copy.deepcopy(template["spec"])}
        try:
            return self.api.create("pods", record.namespace, pod)
        except ApiError as error:  # e.g. a missing service account: retried, as a cluster does
            record.next_attempt = time.monotonic() + 0.5
            if error.message != record.last_error:
                record.last_error = error.message
                _warn(self.api, job, "FailedCreate", f"Error creating: {error.message}")
            return None

    def _expire(self, job: Obj, record: _JobRecord) -> None:
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        if record.finished_at is None:
            record.finished_at = time.monotonic()
        if time.monotonic() - record.finished_at >= ttl:
            self.api.delete("jobs", record.namespace, record.name, propagation="Background")


def _warn(api: FakeKube, involved: Obj, reason: str, message: str) -> None:
    """Record a Warning Event about an object, as controllers do (``kubectl get events``)."""
    meta, now = involved["metadata"], now_rfc3339()
    event = {
        "metadata": {"generateName": f"{meta['name']}."},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        },
        "reason": reason,
        "message": message,
        "type": "Warning",
        "source": {"component": "job-controller"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    with contextlib.suppress(ApiError):  # the namespace may be going away
        api.create("events", meta["namespace"], event)


def _job_condition(kind: str, reason: str, message: str) -> Obj:
    return _condition(kind, "True", reason, message)


def _job_finished(status: Obj) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


# --- Calrissian, played by cwltool -----------------------------------------------------------

# Calrissian options cwltool does not know (dropped, with their value).
CALRISSIAN_ONLY_OPTIONS = frozenset(
    {
        "--max-ram",
        "--max-cores",
        "--pod-labels",
        "--pod-env-vars",
        "--pod-nodeselectors",
        "--pod-serviceaccount",
        "--dask-gateway-url",
        "--dask-script-configmap",
        "--conf",
        "--pod-priority-class",
        "--gpus",
    }
)
CALRISSIAN_ONLY_FLAGS = frozenset({"--no-read-only", "--keep-pods"})
# Options whose targets the controller writes itself, where Calrissian would.
CAPTURED_OPTIONS = frozenset({"--stdout", "--stderr", "--usage-report", "--tool-logs-basepath"})
# cwltool options kept, with their container path rewritten to the host path.
PATH_OPTIONS = frozenset(
    {"--outdir", "--tmp-outdir-prefix", "--tmpdir-prefix", "--basedir", "--cachedir"}
)
# File names given to the streams of each CommandLineTool when tool logs are asked for.
TOOL_STDOUT, TOOL_STDERR = "calrissian-tool.stdout", "calrissian-tool.stderr"

RUN_CWLTOOL = "import sys, cwltool.main; sys.exit(cwltool.main.run())"
# The same, but the per-tool stream files stay in --log-dir instead of being copied into the
# tool's output folder, where a glob could pick them up and change the workflow's outputs.
RUN_CWLTOOL_WITH_TOOL_LOGS = f"""\
import os, sys, cwltool.context, cwltool.main
copy_logs = cwltool.context.log_handler
own = {{{TOOL_STDOUT!r}, {TOOL_STDERR!r}}}
def log_handler(outdir, base_path_logs, stdout_path, stderr_path):
    def keep(path):
        return None if path and os.path.basename(path) in own else path
    copy_logs(outdir, base_path_logs, keep(stdout_path), keep(stderr_path))
cwltool.context.log_handler = log_handler
sys.exit(cwltool.main.run())
"""


@dataclass
class CalrissianCall:
    """What a Calrissian container asks for, in container paths."""

    workflow: str  # e.g. /workflow-input/workflow.cwl#main
    params: str | None
    options: list[tuple[str, str | None]]  # cwltool options kept: (name, value or None)
    captured: dict[str, str]  # --stdout, --stderr, --usage-report, --tool-logs-basepath

    @classmethod
    def parse(cls, container: Obj) -> CalrissianCall | None:
        """None unless the container runs Calrissian (image or command, and its arguments)."""
        command = container.get("command") or []
        runs_calrissian = "calrissian" in container.get("image", "").lower() or (
            command and os.path.basename(command[0]) == "calrissian"
        )
        args = list(container.get("args") or [])
        if not runs_calrissian or "--stdout" not in args or "--usage-report" not in args:
            return None
        options: list[tuple[str, str | None]] = []
        captured: dict[str, str] = {}
        positionals: list[str] = []
        index = 0
        while index < len(args):
            token = args[index]
            name, has_value, value = token.partition("=")
            if (
                token.startswith("--")
                and name in CALRISSIAN_ONLY_OPTIONS | CAPTURED_OPTIONS | PATH_OPTIONS
            ):
                if not has_value:
                    index += 1
                    value = args[index] if index < len(args) else ""
                if name in CAPTURED_OPTIONS:
                    captured[name] = value
                elif name in PATH_OPTIONS:
                    options.append((name, value))
            elif token.startswith("-"):
                if token not in CALRISSIAN_ONLY_FLAGS:
                    options.append((token, None))
            else:
                positionals.append(token)
            index += 1
        if not positionals or ".cwl" not in positionals[0]:
            return None
        params = positionals[1] if len(positionals) > 1 else None
        return cls(positionals[0], params, options, captured)


def prepare_workflow(document: Any, *, tool_logs: bool) -> Any:
    """The workflow as cwltool --no-container accepts it, with per-tool streams if asked.

    cwltool --no-container refuses a DockerRequirement under ``requirements`` (exit 33), so it
    moves to ``hints``. For tool logs, each CommandLineTool without ``stdout``/``stderr`` gets
    file names for them (not when an output has type stdout/stderr: that would rename it).
    """
    document = copy.deepcopy(document)
    for node in list(_dicts(document)):
        if "requirements" in node:
            _move_docker_requirement(node)
        if tool_logs and node.get("class") == "CommandLineTool":
            outputs = node.get("outputs") or []
            values = outputs if isinstance(outputs, list) else list(outputs.values())
            types = {o if isinstance(o, str) else (o or {}).get("type") for o in values}
            for stream, file_name in (("stdout", TOOL_STDOUT), ("stderr", TOOL_STDERR)):
                if stream not in node and stream not in types:
                    node[stream] = file_name
    return document


def _dicts(value: Any) -> Iterator[dict]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _dicts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _dicts(item)


def _move_docker_requirement(node: dict) -> None:
    requirements, hints = node["requirements"], node.get("hints")
    if isinstance(requirements, list):
        docker = [
            r for r in requirements if isinstance(r, dict) and r.get("class") == "DockerRequirement"
        ]
        if not docker:
            return
        node["requirements"] = [r for r in requirements if all(r is not d for d in docker)]
        body = {key: value for key, value in docker[0].items() if key != "class"}
    elif isinstance(requirements, dict) and "DockerRequirement" in requirements:
        body = requirements.pop("DockerRequirement") or {}
    else:
        return
    if isinstance(hints, dict):
        hints.setdefault("DockerRequirement", body)
    else:
        hints = list(hints or [])
        if not any(isinstance(h, dict) and h.get("class") == "DockerRequirement" for h in hints):
            hints.append({"class": "DockerRequirement", **body})
        node["hints"] = hints


def _map_strings(value: Any, convert: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return convert(value)
    if isinstance(value, list):
        return [_map_strings(item, convert) for item in value]
    if isinstance(value, dict):
        return {key: _map_strings(item, convert) for key, item in value.items()}
    return value


def _path_converter(mapping: Callable[[str], str | None]) -> Callable[[str], str]:
    """Map paths and file:// URIs (fragments kept) with ``mapping``; other strings unchanged."""

    def convert(text: str) -> str:
        uri = text.startswith("file://")
        if not uri and not text.startswith("/"):
            return text
        path, hash_mark, fragment = (text[7:] if uri else text).partition("#")
        mapped = mapping(unquote(path) if uri else path)
        if mapped is None:
            return text
        if path.endswith("/") and not mapped.endswith("/"):
            mapped += "/"
        return (
            f"file://{quote(mapped)}{hash_mark}{fragment}"
            if uri
            else f"{mapped}{hash_mark}{fragment}"
        )

    return convert


# The redirections cwltool shows for the stream files added for tool logs (not Calrissian's).
_TOOL_LOG_REDIRECT = re.compile(rf" 2?> \S+/(?:{re.escape(TOOL_STDOUT)}|{re.escape(TOOL_STDERR)})")


def _host_text_to_container(text: str, view: PodFiles) -> str:
    """Host paths in free text (logs) replaced by the container paths they stand for."""
    text = _TOOL_LOG_REDIRECT.sub("", text)
    for prefix, host in sorted(view.mounts, key=lambda pair: len(str(pair[1])), reverse=True):
        target = "" if prefix == "/" else prefix
        text = text.replace(f"file://{quote(str(host))}", f"file://{quote(target)}")
        text = text.replace(str(host), target)
    return text


_JOB_LINE = re.compile(r"\[job (?P<name>[^\]]+)\] (?P<rest>.*)")
_COMMAND_LINE = re.compile(r"\S*\$ ")
_EXITED = re.compile(r"exited with status: (-?\d+)")
_SIGNALLED = re.compile(r"was terminated by signal: (\w+)")
_COMPLETED = re.compile(r"completed (\w+)")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


class UsageReport:
    """Calrissian's usage report, rebuilt from cwltool's log lines as they arrive.

    One child per CommandLineTool job (``[job NAME] ...$ command`` starts it, ``[job NAME]
    completed STATUS`` ends it, ``exited with status: N`` gives its exit code).
    """

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}

    def feed(self, line: str, when: float) -> None:
        match = _JOB_LINE.search(line)
        if match is None:
            return
        name, rest = match["name"], match["rest"]
        if _COMMAND_LINE.match(rest):
            self.jobs.setdefault(
                name, {"name": name, "start": when, "finish": None, "exit_code": None}
            )
        job = self.jobs.get(name)
        if job is None:
            return
        if exited := _EXITED.match(rest):
            job["exit_code"] = int(exited[1])
        elif signalled := _SIGNALLED.match(rest):
            number = getattr(signal.Signals, signalled[1], signal.SIGKILL).value
            job["exit_code"] = 128 + number
        elif completed := _COMPLETED.match(rest):
            job["finish"] = when
            if job["exit_code"] is None:
                job["exit_code"] = 0 if completed[1] == "success" else 1

    def as_dict(self, start: float, finish: float) -> Obj:
        children = []
        for job in self.jobs.values():
            end = job["finish"] or finish
            children.append(
                {
                    "name": job["name"],
                    "start_time": _iso(job["start"]),
                    "finish_time": _iso(end),
                    "elapsed_seconds": round(end - job["start"], 3),
                    "exit_code": 1 if job["exit_code"] is None else job["exit_code"],
                }
            )
        return {
            "start_time": _iso(start),
            "finish_time": _iso(finish),
            "elapsed_seconds": round(finish - start, 3),
            "total_tasks": len(children),
            "children": children,
        }


@dataclass
class Run:
    """One cwltool run standing in for a Calrissian pod, kept for assertions."""

    namespace: str
    pod: str
    argv: list[str]
    returncode: int | None = None
    duration: float = 0.0
    killed: bool = False  # the pod was deleted while it ran


def resolve_env(api: FakeKube, pod: Obj, container: Obj) -> dict[str, str]:
    """A container's environment as the kubelet builds it (values, fieldRefs, refs)."""
    env: dict[str, str] = {}
    namespace = pod["metadata"]["namespace"]
    for env_from in container.get("envFrom") or []:
        for _, ref_name, resource, _ in _REFERENCES:
            ref = env_from.get(ref_name)
            found = api.get(resource, namespace, ref["name"]) if ref else None
            for key, value in ((found or {}).get("data") or {}).items():
                env[env_from.get("prefix", "") + key] = _decoded(resource, value)
    for variable in container.get("env") or []:
        source = variable.get("valueFrom")
        if source is None:
            env[variable["name"]] = str(variable.get("value", ""))
        elif "fieldRef" in source:
            env[variable["name"]] = _field_ref(pod, source["fieldRef"].get("fieldPath", ""))
        else:
            for key_ref, _, resource, _ in _REFERENCES:
                ref = source.get(key_ref)
                found = api.get(resource, namespace, ref.get("name", "")) if ref else None
                value = ((found or {}).get("data") or {}).get(ref.get("key")) if ref else None
                if value is not None:
                    env[variable["name"]] = _decoded(resource, value)
    return env


def _decoded(resource: str, value: str) -> str:
    if resource != "secrets":
        return value
    return base64.b64decode(value).decode("utf-8", "replace")


def _field_ref(pod: Obj, path: str) -> str:
    if match := re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path):
        return str((pod["metadata"].get(match[1]) or {}).get(match[2], ""))
    value: Any = pod
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


@dataclass
class _Exit:
    """How the cwltool process ended, and what it said."""

    returncode: int
    timed_out: bool
    log: list[str]  # its stderr lines
    report: UsageReport
    started: float
    finished: float


class _CalrissianRun:
    """One Calrissian pod played by cwltool: prepare, run in its own process group, publish."""

    def __init__(
        self, controller: LocalCalrissianController, pod: Obj, container: Obj, call: CalrissianCall
    ):
        self.controller = controller
        self.api = controller.api
        self.pod, self.container, self.call = pod, container, call
        self.namespace, self.name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.files = self.api.pod_files(self.namespace, self.name, container["name"])
        self.work = self.api.pod_dir(self.namespace, self.name) / "calrissian"
        self.tool_logs = self.work / "tool-logs"
        self.cancelled = threading.Event()
        self.grace = 0.0
        self.thread = threading.Thread(
            target=self._main, name=f"calrissian-{self.name}", daemon=True
        )

    def cancel(self, grace: float) -> None:
        """The pod was deleted: stop the process group, SIGKILL after ``grace`` seconds."""
        self.grace = grace
        self.cancelled.set()

    def _main(self) -> None:
        try:
            argv, view = self._prepare()
            if self.cancelled.is_set():
                return
            ended = self._run(argv, view)
            run = Run(
                self.namespace, self.name, argv, ended.returncode, ended.finished - ended.started
            )
            run.killed = self.cancelled.is_set()
            if not run.killed:  # else the pod is gone: nothing to publish
                self._publish(ended, view)
            self.controller.runs.append(run)
            if not run.killed:
                self._terminate(ended)
        except Exception:
            self.controller.errors.append(traceback.format_exc())
            traceback.print_exc()
            now = now_rfc3339()
            self.api.modify(
                "pods", self.namespace, self.name, lambda p: _set_terminated(p, 128, now, now)
            )
        finally:
            self.controller._finished(self.pod["metadata"]["uid"])

    def _prepare(self) -> tuple[list[str], PodFiles]:
        """The cwltool command line, and the container view of the host paths it uses."""
        call, files = self.call, self.files
        self.work.mkdir(parents=True, exist_ok=True)
        tool_logs = "--tool-logs-basepath" in call.captured
        workflow_path, _, fragment = call.workflow.partition("#")
        workflow = yaml.safe_load(files.host(workflow_path).read_text())
        local_workflow = self.work / "workflow.cwl"
        local_workflow.write_text(
            yaml.safe_dump(prepare_workflow(workflow, tool_logs=tool_logs), sort_keys=False)
        )
        pairs = [*files.mounts, (workflow_path, local_workflow)]
        code = RUN_CWLTOOL_WITH_TOOL_LOGS if tool_logs else RUN_CWLTOOL
        argv = [sys.executable, "-c", code, "--no-container", "--disable-color"]
        if tool_logs:
            argv += ["--log-dir", str(self.tool_logs)]
        for name, value in call.options:
            argv += [name] if value is None else [name, _host_argument(files, value)]
        if all(name != "--tmpdir-prefix" for name, _ in call.options):
            argv += ["--tmpdir-prefix", _host_argument(files, "/tmp/")]
        argv.append(f"{local_workflow}#{fragment}" if fragment else str(local_workflow))
        if call.params is not None:
            to_host = _path_converter(lambda path: _as_str(files.mounted(path)))
            params = yaml.safe_load(files.host(call.params).read_text()) or {}
            local_params = self.work / "params.yml"
            local_params.write_text(yaml.safe_dump(_map_strings(params, to_host), sort_keys=False))
            pairs.append((call.params, local_params))
            argv.append(str(local_params))
        return argv, PodFiles([*pairs, ("/", files.root)], files.root)

    def _run(self, argv: list[str], view: PodFiles) -> _Exit:
        """Run cwltool as the container would run Calrissian; its log goes to the pod log."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.update(resolve_env(self.api, self.pod, self.container))
        report, log = UsageReport(), []
        started = time.time()
        with open(self.work / "cwltool.stdout", "wb") as stdout:
            process = subprocess.Popen(
                argv,
                cwd=self.files.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: the "container"
            )
        assert process.stderr is not None
        stderr = process.stderr

        def pump() -> None:
            for raw in stderr:
                line = raw.decode("utf-8", "replace")
                report.feed(line, time.time())
                log.append(line)
                text = _host_text_to_container(line, view)
                self.api.append_log(self.namespace, self.name, self.container["name"], text)

        reader = threading.Thread(target=pump, name=f"log-{self.name}", daemon=True)
        reader.start()
        deadline, timed_out = time.monotonic() + self.controller.run_timeout, False
        while process.poll() is None:
            if self.cancelled.wait(0.02):
                _stop_process_group(process, self.grace)
            elif time.monotonic() > deadline:
                timed_out = True
                _stop_process_group(process, self.controller.kill_grace)
        reader.join(timeout=5)
        stderr.close()
        return _Exit(process.returncode, timed_out, log, report, started, time.time())

    def _publish(self, ended: _Exit, view: PodFiles) -> None:
        """Write what Calrissian writes, where it writes it; tee the output into the pod log."""
        files, captured = self.files, self.call.captured
        output = (self.work / "cwltool.stdout").read_text(errors="replace")
        try:
            to_container = _path_converter(view.container)
            output = json.dumps(_map_strings(json.loads(output), to_container), indent=4)
        except ValueError:
            output = _host_text_to_container(output, view)
        usage = ended.report.as_dict(ended.started, ended.finished)
        if "--stdout" in captured:
            _write(files.host(captured["--stdout"]), output)
        if "--stderr" in captured:
            _write(
                files.host(captured["--stderr"]), _host_text_to_container("".join(ended.log), view)
            )
        if "--usage-report" in captured:
            _write(files.host(captured["--usage-report"]), json.dumps(usage, indent=2))
        if "--tool-logs-basepath" in captured:
            base = files.host(captured["--tool-logs-basepath"])
            for child in usage["children"]:
                streams = [self.tool_logs / child["name"] / n for n in (TOOL_STDERR, TOOL_STDOUT)]
                text = "".join(p.read_text(errors="replace") for p in streams if p.exists())
                _write(base / f"{child['name']}.log", _host_text_to_container(text, view))
        self.api.append_log(self.namespace, self.name, self.container["name"], output)

    def _terminate(self, ended: _Exit) -> None:
        """The pod ends as the container did: Succeeded, or Failed with the exit code."""
        code = ended.returncode if ended.returncode >= 0 else 128 - ended.returncode
        code = 137 if ended.timed_out and code == 0 else code
        started_at, finished_at = _rfc3339(ended.started), _rfc3339(ended.finished)
        self.api.modify(
            "pods",
            self.namespace,
            self.name,
            lambda p: _set_terminated(p, code, started_at, finished_at),
        )


def _rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _host_argument(files: PodFiles, value: str) -> str:
    """A path option's value on the host; a trailing '/' (a prefix) is kept and created."""
    host = files.host(value)
    if value.endswith("/"):
        host.mkdir(parents=True, exist_ok=True)
        return f"{host}/"
    host.parent.mkdir(parents=True, exist_ok=True)
    return str(host)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _stop_process_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM to the group, SIGKILL after ``grace`` seconds, as a kubelet stops a container."""
    if grace > 0:
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    _signal_group(process.pid, signal.SIGKILL)  # whatever is left of the group
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


class _ProcessAgent(_NodeAgent):
    """A node agent whose pods run local processes: deleting a pod cancels its run (within
    ``kill_grace`` seconds), stopping the agent cancels them all."""

    def __init__(self, api: FakeKube, *, start_delay: float, kill_grace: float):
        super().__init__(api, start_delay=start_delay)
        self.kill_grace = kill_grace
        self._lock = threading.Lock()
        self._runs: dict[str, Any] = {}  # pod uid: its run (with .cancel(grace) and .thread)

    def _track(self, pod: Obj, run: Any) -> None:
        with self._lock:
            self._runs[pod["metadata"]["uid"]] = run
        run.thread.start()

    def deleted(self, pod: Obj) -> None:
        with self._lock:
            run = self._runs.get(pod["metadata"]["uid"])
        if run is not None:
            grace = pod["metadata"].get("deletionGracePeriodSeconds")
            run.cancel(self.kill_grace if grace is None else min(float(grace), self.kill_grace))

    def stop(self) -> None:
        super().stop()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.cancel(0)
        for run in runs:
            run.thread.join(timeout=10)

    def busy(self) -> bool:
        """Whether a run is in progress (or being prepared or published)."""
        with self._lock:
            return bool(self._runs)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no run is in progress; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.busy():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _finished(self, uid: str) -> None:
        with self._lock:
            self._runs.pop(uid, None)


class LocalCalrissianController(_ProcessAgent):
    """The node for Job pods: Calrissian pods run with cwltool on this machine.

    A pod whose container runs Calrissian (image or command ``calrissian``, with ``--stdout``,
    ``--usage-report``, a workflow and its parameters) becomes ``cwltool --no-container`` with
    the same workflow and parameters, paths mapped through the pod's volume mounts. Other Job
    pods just go Running (nothing executes). Deleting the pod stops the process group
    (SIGTERM, then SIGKILL after ``kill_grace`` seconds at most). ``runs`` records every run.
    """

    def __init__(
        self,
        api: FakeKube,
        *,
        start_delay: float = 0.05,
        kill_grace: float = 0.5,
        run_timeout: float = 600.0,
    ):
        super().__init__(api, start_delay=start_delay, kill_grace=kill_grace)
        self.run_timeout = run_timeout
        self.runs: list[Run] = []

    def owns(self, pod: Obj) -> bool:
        return job_owner(pod) is not None

    def started(self, pod: Obj) -> None:
        for container in pod["spec"]["containers"]:
            call = CalrissianCall.parse(container)
            if call is not None:
                self._track(pod, _CalrissianRun(self, pod, container, call))
                return


class FakeCluster:
    """A FakeKube with its controllers, in one of two modes.

    - cwltool (the default): a Kubelet, a JobController and a LocalCalrissianController, which
      plays Calrissian with cwltool;
    - real Calrissian (``calrissian_venv`` and ``sandbox`` given): the API server speaks https
      with in-cluster service accounts, a JobController and an ``ExecutingKubelet`` (``node``)
      that runs every pod in a sandbox, the Calrissian image being ``calrissian_venv``; the
      job pod runs the real ``calrissian``, which creates a pod per tool run; ``shared`` host
      folders are readable in every pod.

    ``controller`` is the LocalCalrissianController, or the ExecutingKubelet in the real mode.
    """

    def __init__(
        self,
        state_dir: str | Path | None = None,
        *,
        start_delay: float = 0.05,
        kill_grace: float = 0.5,
        run_timeout: float = 600.0,
        calrissian_venv: Any = None,
        sandbox: str | None = None,
        shared: tuple[Path, ...] = (),
    ):
        self.real_calrissian = calrissian_venv is not None and sandbox is not None
        self.api = FakeKube(state_dir, https=self.real_calrissian)
        self.jobs = JobController(self.api)
        self.kubelet: _NodeAgent
        self.controller: Any
        if self.real_calrissian:
            from .node import DEFAULT_PATH, ExecutingKubelet, Image

            assert sandbox is not None
            image = Image(
                binds=(calrissian_venv.root, calrissian_venv.base_prefix),
                path=f"{calrissian_venv.bin}:{DEFAULT_PATH}",
            )
            self.kubelet = ExecutingKubelet(
                self.api,
                sandbox,
                images={"calrissian": image},
                shared=shared,
                start_delay=start_delay,
                kill_grace=kill_grace,
            )
            self.controller = self.kubelet
        else:
            self.kubelet = Kubelet(self.api, start_delay=start_delay)
            self.controller = LocalCalrissianController(
                self.api, start_delay=start_delay, kill_grace=kill_grace, run_timeout=run_timeout
            )

    @property
    def controllers(self) -> tuple[_Controller, ...]:
        if self.real_calrissian:
            return (self.jobs, self.kubelet)
        return (self.kubelet, self.jobs, self.controller)

    @property
    def errors(self) -> list[str]:
        """Everything that went wrong inside the controllers (empty when all is well)."""
        return [error for controller in self.controllers for error in controller.errors]

    def start(self) -> FakeCluster:
        self.api.start()
        for controller in self.controllers:
            controller.start()
        return self

    def stop(self) -> None:
        """Stop the controllers (killing local runs), then the API server."""
        for controller in reversed(self.controllers):
            controller.stop()
        self.api.stop()

    def __enter__(self) -> FakeCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
