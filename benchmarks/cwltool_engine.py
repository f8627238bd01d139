"""The cwltool engine against the cwltool command line on the same package, each in a fresh
process (the ZOO kernel starts Python for every execution)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import EXAMPLE_APP, EXAMPLE_REQUEST, Table, bake, median, timed

# The wrapped workflow and its parameters, as the service runs them, for the command line.
PREPARE = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import importlib
service = importlib.import_module(sys.argv[2] + ".service")
package = service.ApplicationPackage.load(service.SERVICE_DIR / "app-package.cwl")
wrapped = service.wrap(package.document, "band-stats", service.stage_process_files("cwltool"))
prepared = service.prepared_for_cwltool(wrapped, use_container=False)
Path(sys.argv[3], "workflow.cwl").write_text(json.dumps(prepared))
workflow = package.workflow("band-stats")
inputs = {
    "item": {"xlink:href": sys.argv[4], "value": ""},
    "bands": {"value": ["red", "nir", "green"], "isArray": "true"},
}
params = service.cwl_parameters(workflow, inputs)
params.update(process="cli", STAGEOUT_OUTPUT=sys.argv[3])
Path(sys.argv[3], "params.json").write_text(json.dumps(params))
"""


def measure(table: Table, runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        service_dir = bake(root / "out", "band-stats", EXAMPLE_APP)
        item = (EXAMPLE_REQUEST.parent / "data" / "catalog.json").as_uri()
        cli_dir = root / "cli"
        cli_dir.mkdir()
        subprocess.run(
            [
                sys.executable,
                "-c",
                PREPARE,
                str(service_dir.parent),
                service_dir.name,
                str(cli_dir),
                item,
            ],
            check=True,
        )
        ours, baseline = [], []
        for index in range(runs):
            seconds, result = timed(
                lambda i=index: subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        f"{service_dir.name}.service",
                        str(EXAMPLE_REQUEST),
                        "--workdir",
                        str(root / f"jobs-{i}"),
                    ],
                    cwd=service_dir.parent,
                    capture_output=True,
                    text=True,
                )
            )
            assert result.returncode == 0, result.stderr
            ours.append(seconds)
            seconds, result = timed(
                lambda i=index: subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        "import sys, cwltool.main; sys.exit(cwltool.main.run())",
                        "--no-container",
                        "--parallel",
                        "--outdir",
                        str(root / f"cli-out-{i}"),
                        f"{cli_dir / 'workflow.cwl'}#main",
                        str(cli_dir / "params.json"),
                    ],
                    capture_output=True,
                    text=True,
                )
            )
            assert result.returncode == 0, result.stderr
            baseline.append(seconds)
            json.loads(result.stdout)
    table.add(
        "one execution, cwltool engine vs the cwltool command line (s)",
        f"{median(ours):.2f}",
        f"{median(baseline):.2f}",
        f"{median(ours) / median(baseline):.2f}",
        "≤ 1.1",
    )
