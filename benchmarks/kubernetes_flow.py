"""The Calrissian engine against the way zoo-calrissian-runner 0.4 drives pycalrissian, on the
offline Kubernetes harness: orchestration overhead (wall time minus the workflow's own run time),
API requests and helper pods per execution."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from common import (
    EXAMPLE_APP,
    Table,
    bake,
    example_inputs,
    import_service,
    inside,
    kernel_conf,
    median,
    timed,
)
from harness.cluster import FakeCluster


def workflow_seconds(cluster: FakeCluster) -> float:
    """How long the Calrissian job itself ran on the harness."""
    return sum(run.duration for run in cluster.controller.runs)


def ours(service, work: Path) -> tuple[float, int, int]:
    with FakeCluster(work / "cluster") as cluster:
        os.environ["KUBECONFIG"] = str(cluster.api.kubeconfig_path)
        conf = kernel_conf(work / "temp", str(uuid.uuid4()))
        seconds, status = timed(lambda: service.band_stats(conf, example_inputs(), {"results": {}}))
        assert status == 3, conf["lenv"]["message"]
        requests = cluster.api.requests.snapshot()
        pods = len(cluster.api.requests.matching("create", "pods"))
        return seconds - workflow_seconds(cluster), len(requests), pods


def baseline(service, work: Path) -> tuple[float, int, int]:
    """zoo-calrissian-runner 0.4's sequence with pycalrissian's defaults (retry sleeps,
    monitor(interval=30), one copy pod per file fetched)."""
    from pycalrissian.context import CalrissianContext
    from pycalrissian.execution import CalrissianExecution
    from pycalrissian.job import CalrissianJob

    package = service.ApplicationPackage.load(service.SERVICE_DIR / "app-package.cwl")
    workflow = package.workflow("band-stats")
    wrapped = service.wrap(
        package.document, "band-stats", service.stage_process_files("calrissian")
    )
    namespace = f"band-stats-{uuid.uuid4()}"
    params = {"process": namespace, **service.cwl_parameters(workflow, example_inputs())}
    with FakeCluster(work / "cluster") as cluster, inside(work):
        os.environ["KUBECONFIG"] = str(cluster.api.kubeconfig_path)

        def run() -> None:
            context = CalrissianContext(
                namespace=namespace, storage_class="standard", volume_size="10Gi"
            )
            context.initialise()
            job = CalrissianJob(
                cwl=wrapped,
                params=params,
                runtime_context=context,
                cwl_entry_point="main",
                max_cores="2",
                max_ram="4096Mi",
                debug=True,
                no_read_only=True,
                tool_logs=True,
            )
            execution = CalrissianExecution(job=job, runtime_context=context)
            execution.submit()
            execution.monitor(interval=30)
            assert execution.is_succeeded()
            execution.get_output()
            execution.get_usage_report()
            execution.get_tool_logs()
            execution.get_log()
            context.dispose()

        seconds, _ = timed(run)
        requests = cluster.api.requests.snapshot()
        pods = len(cluster.api.requests.matching("create", "pods"))
        return seconds - workflow_seconds(cluster), len(requests), pods


def measure(table: Table, runs: int) -> None:
    from loguru import logger

    logger.remove()  # pycalrissian's log lines would drown the table
    os.environ["EXECUTION_ENGINE"] = "calrissian"
    with tempfile.TemporaryDirectory() as folder:
        service = import_service(bake(Path(folder) / "out", "band-stats", EXAMPLE_APP))
        results = {"ours": [], "baseline": []}
        for index in range(runs):
            for name, flow in (("ours", ours), ("baseline", baseline)):
                work = Path(folder) / f"{name}-{index}"
                work.mkdir()
                results[name].append(flow(service, work))
    overhead = {name: median([r[0] for r in rows]) for name, rows in results.items()}
    requests = {name: median([r[1] for r in rows]) for name, rows in results.items()}
    pods = {name: median([r[2] for r in rows]) for name, rows in results.items()}
    table.add(
        "orchestration overhead, calrissian engine (s)",
        f"{overhead['ours']:.2f}",
        f"{overhead['baseline']:.2f}",
        f"{overhead['ours'] / overhead['baseline']:.3f}",
        "≤ 0.1",
    )
    table.add(
        "Kubernetes API requests per execution",
        f"{requests['ours']:.0f}",
        f"{requests['baseline']:.0f}",
        f"{requests['ours'] / requests['baseline']:.2f}",
    )
    table.add(
        "helper pods per execution", f"{pods['ours']:.0f}", f"{pods['baseline']:.0f}", "", "≤ 1"
    )
