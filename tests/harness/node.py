"""An executing kubelet: each pod's containers run on this machine, in a sandbox built from
the pod's volumes, so that the real Calrissian and the tools it schedules really run.

Images are not pulled: the host is the image (its ``/usr`` and ``/etc``, read-only), and an
image may add host folders (the Calrissian image is its virtual environment and the Python it
is made from, see ``calrissian_venv``). Each container runs in a mount namespace made with
bubblewrap (``bwrap``; ``proot`` where bwrap is missing, without read-only mounts) whose root
is the pod's private folder, with every volume mount bound where the pod mounts it (PVC with
``subPath``, ``--ro-bind`` for ``readOnly``, emptyDir, configMap and secret files) and, when
the API server speaks https, the service-account files and ``KUBERNETES_SERVICE_HOST/PORT``,
as a kubelet provides them. Environment (values, fieldRefs, refs), ``workingDir``, init
containers (one after the other, before the others) and command + args are honoured; the
output of a container is its log, line by line. The pod goes Pending → Running →
Succeeded/Failed with each container terminated (exit code, start and finish times); deleting
the pod kills its processes (SIGTERM, SIGKILL after a short grace).

Not enforced: resources, ``runAsUser``, ``nodeSelector`` (every pod lands on the one node),
images (``dockerPull`` is ignored: tools must exist on this machine), networking (host network).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import tls
from .cluster import (
    _container_status,
    _ProcessAgent,
    _rfc3339,
    _scheduled_status,
    _stop_process_group,
    resolve_env,
)
from .fake_kube import FakeKube, Obj

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROOT_ENTRIES = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def sandbox_tool() -> str | None:
    """``bwrap`` or ``proot`` if one works here (mount namespaces allowed), else None."""
    for tool in ("bwrap", "proot"):
        path = shutil.which(tool)
        if path is None:
            continue
        probe = [path, "--bind", "/", "/", "true"] if tool == "bwrap" else [path, "true"]
        try:
            if subprocess.run(probe, capture_output=True, timeout=20).returncode == 0:
                return tool
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


@dataclass(frozen=True)
class Image:
    """What an image name stands for on this machine: extra read-only folders and PATH."""

    binds: tuple[Path, ...] = ()
    path: str = DEFAULT_PATH


@dataclass
class ContainerRun:
    """One container that ran, kept for assertions."""

    namespace: str
    pod: str
    container: str
    argv: list[str]
    env: dict[str, str]
    exit_code: int | None = None
    started: float = 0.0
    finished: float = 0.0
    killed: bool = False


@dataclass
class _Ended:
    code: int
    started: float
    finished: float


class ExecutingKubelet(_ProcessAgent):
    """The node: every pod's containers run in a sandbox (see the module docstring).

    ``shared`` host folders are readable in every container at their own path (data that a
    test's inputs point to with file:// URLs, as if on every node). ``images`` maps an image
    name (or any image containing a key, such as "calrissian") to an ``Image``; other images
    are the host as is. ``runs`` records every container run and ``max_running`` the most
    containers running at once in each namespace.
    """

    def __init__(
        self,
        api: FakeKube,
        tool: str,
        *,
        images: dict[str, Image] | None = None,
        shared: tuple[Path, ...] = (),
        start_delay: float = 0.05,
        kill_grace: float = 0.5,
    ):
        super().__init__(api, start_delay=start_delay, kill_grace=kill_grace)
        self.tool = tool
        self.images = dict(images or {})
        self.shared = tuple(shared)
        self.runs: list[ContainerRun] = []
        self.pods: list[Obj] = []  # every pod as it started (specs outlive the pods)
        self.max_running: dict[str, int] = {}  # namespace: most step containers at once
        self._running: dict[str, int] = {}

    def owns(self, pod: Obj) -> bool:
        return True

    def started(self, pod: Obj) -> None:
        self.pods.append(pod)
        self._track(pod, _PodRun(self, pod))

    def image(self, name: str) -> Image:
        if name in self.images:
            return self.images[name]
        for key, image in self.images.items():
            if key in name:
                return image
        return Image()

    def _counted(self, namespace: str, delta: int) -> None:
        with self._lock:
            now = self._running.get(namespace, 0) + delta
            self._running[namespace] = now
            self.max_running[namespace] = max(self.max_running.get(namespace, 0), now)


class _PodRun:
    """The containers of one pod: init containers in order, then the others together."""

    def __init__(self, kubelet: ExecutingKubelet, pod: Obj):
        self.kubelet, self.api, self.pod = kubelet, kubelet.api, pod
        self.namespace, self.name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.cancelled = threading.Event()
        self.grace = 0.0
        self.processes: list[subprocess.Popen] = []
        self.thread = threading.Thread(target=self._main, name=f"pod-{self.name}", daemon=True)

    def cancel(self, grace: float) -> None:
        self.grace = grace
        self.cancelled.set()

    def _main(self) -> None:
        try:
            spec = self.pod["spec"]
            for init in spec.get("initContainers") or []:
                ended = self._run(init, counted=False)
                if ended.code != 0 or self.cancelled.is_set():
                    self._terminate({c["name"]: ended for c in spec["containers"]})
                    return
            results: dict[str, _Ended] = {}
            threads = [
                threading.Thread(
                    target=lambda c=c: results.__setitem__(c["name"], self._run(c)), daemon=True
                )
                for c in spec["containers"]
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if not self.cancelled.is_set():
                self._terminate(results)
        except Exception:
            self.kubelet.errors.append(traceback.format_exc())
            traceback.print_exc()
            now = time.time()
            self._terminate(
                {c["name"]: _Ended(128, now, now) for c in self.pod["spec"]["containers"]}
            )
        finally:
            self.kubelet._finished(self.pod["metadata"]["uid"])

    def _run(self, container: Obj, *, counted: bool = True) -> _Ended:
        argv, env = self._command(container)
        record = ContainerRun(self.namespace, self.name, container["name"], argv, env)
        self.kubelet.runs.append(record)
        record.started = time.time()
        if counted:
            self.kubelet._counted(self.namespace, +1)
        try:
            process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the "container"
            )
            assert process.stdout is not None
            stdout = process.stdout

            def pump() -> None:
                for raw in stdout:
                    text = raw.decode("utf-8", "replace")
                    self.api.append_log(self.namespace, self.name, container["name"], text)

            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            while process.poll() is None:
                if self.cancelled.wait(0.02):
                    record.killed = True
                    _stop_process_group(process, self.grace)
            reader.join(timeout=5)
            stdout.close()
        finally:
            if counted:
                self.kubelet._counted(self.namespace, -1)
        record.finished = time.time()
        code = process.returncode
        record.exit_code = code if code >= 0 else 128 - code
        return _Ended(record.exit_code, record.started, record.finished)

    def _command(self, container: Obj) -> tuple[list[str], dict[str, str]]:
        """The sandbox command line for a container, and its environment."""
        api, image = self.api, self.kubelet.image(container.get("image", ""))
        files = api.pod_files(self.namespace, self.name, container["name"])
        read_only = {
            posixpath.normpath(m["mountPath"])
            for m in container.get("volumeMounts") or []
            if m.get("readOnly")
        }
        binds: list[tuple[str, str, bool]] = []
        env = {"PATH": image.path, "HOSTNAME": self.name, "HOME": "/root"}
        if api.https:
            account = api.service_account_dir(self.namespace, self.name)
            binds.append((str(account), tls.SERVICE_ACCOUNT_PATH, True))
            env.update(KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(api.port))
        for path, host in sorted(files.mounts, key=lambda pair: len(pair[0])):
            binds.append((str(host), path, path in read_only))
        # Shared folders and the image's own last: a pod's /tmp must not hide a project or a
        # venv that lives under /tmp on the host.
        binds += [(str(p), str(p), True) for p in (*self.kubelet.shared, *image.binds)]
        env.update(resolve_env(api, self.pod, container))
        command = list(container.get("command") or []) + list(container.get("args") or [])
        cwd = container.get("workingDir") or "/"
        if self.kubelet.tool == "bwrap":
            argv = ["bwrap", "--die-with-parent", "--bind", str(files.root), "/"]
            argv += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
            for entry in ROOT_ENTRIES:
                host = Path("/") / entry
                if host.is_symlink():
                    argv += ["--symlink", os.readlink(host), f"/{entry}"]
                elif host.is_dir():
                    argv += ["--ro-bind", str(host), f"/{entry}"]
            argv += ["--proc", "/proc", "--dev", "/dev"]
            for host, path, ro in binds:
                argv += ["--ro-bind" if ro else "--bind", host, path]
            argv += ["--chdir", cwd, "--"]
        else:  # proot: no read-only binds
            argv = ["proot", "-r", str(files.root), "-b", "/usr", "-b", "/etc", "-b", "/proc"]
            argv += ["-b", "/dev"]
            for entry in ROOT_ENTRIES:
                if (Path("/") / entry).exists():
                    argv += ["-b", f"/{entry}"]
            for host, path, _ in binds:
                argv += ["-b", f"{host}:{path}"]
            argv += ["-w", cwd]
        return argv + command, env

    def _terminate(self, ended: dict[str, _Ended]) -> None:
        """Every container terminated; the pod Succeeded when all exited 0, else Failed."""

        def change(pod: Obj) -> None:
            status = _scheduled_status(pod, ready=False, unready_reason="PodCompleted")
            codes = [e.code for e in ended.values()]
            status["phase"] = "Succeeded" if codes and not any(codes) else "Failed"
            status["containerStatuses"] = []
            for container in pod["spec"]["containers"]:
                now = time.time()
                result = ended.get(container["name"], _Ended(137, now, now))
                state = {
                    "exitCode": result.code,
                    "reason": "Completed" if result.code == 0 else "Error",
                    "startedAt": _rfc3339(result.started),
                    "finishedAt": _rfc3339(result.finished),
                    "containerID": f"containerd://{container['name']}",
                }
                status["containerStatuses"].append(
                    _container_status(container, {"terminated": state})
                )
            pod["status"] = status

        self.api.modify("pods", self.namespace, self.name, change)
