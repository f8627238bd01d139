"""Peak RSS of one execution of the entry function on each engine, in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import EXAMPLE_APP, Table, bake, median
from harness.cluster import FakeCluster

ONE_EXECUTION = """
import resource, sys, uuid
from pathlib import Path
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[3])
import importlib
from common import example_inputs, kernel_conf
service = importlib.import_module(sys.argv[2] + ".service")
conf = kernel_conf(Path(sys.argv[4]), str(uuid.uuid4()))
assert service.band_stats(conf, example_inputs(), {"results": {}}) == 3, conf["lenv"]["message"]
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_mib(service_dir: Path, work: Path, engine: str) -> float:
    environment = {**os.environ, "EXECUTION_ENGINE": engine}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            ONE_EXECUTION,
            str(service_dir.parent),
            service_dir.name,
            str(Path(__file__).parent),
            str(work),
        ],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1]) / 1024


def measure(table: Table, runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        service_dir = bake(root / "out", "band-stats", EXAMPLE_APP)
        cwltool = [peak_mib(service_dir, root / f"cwltool-{i}", "cwltool") for i in range(runs)]
        calrissian = []
        for i in range(runs):
            with FakeCluster(root / f"cluster-{i}") as cluster:
                os.environ["KUBECONFIG"] = str(cluster.api.kubeconfig_path)
                calrissian.append(peak_mib(service_dir, root / f"calrissian-{i}", "calrissian"))
    table.add("peak RSS of one execution, cwltool engine (MiB)", f"{median(cwltool):.0f}")
    table.add("peak RSS of one execution, calrissian engine (MiB)", f"{median(calrissian):.0f}")
