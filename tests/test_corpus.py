"""The real Application Packages of the shared workspace corpus (skipped when it is absent).

A package that ``cwltool --validate`` accepts offline once upgraded to v1.2 (as the ADES stores
it) must be accepted; every deliberately broken one must be rejected, naming its problem.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException

from conftest import SHARED_APP_PACKAGES, hook_errors

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not SHARED_APP_PACKAGES.is_dir(), reason="no shared app-packages folder"),
]

REAL = sorted(p for p in SHARED_APP_PACKAGES.glob("*.cwl") if not p.name.startswith("broken-"))
BROKEN = {
    "broken-yaml-syntax.cwl": (
        "crop-app",
        "is not valid YAML: while parsing a flow sequence (line 19",
    ),
    "broken-not-cwl.cwl": ("crop-app", "is not a CWL document"),
    "broken-no-workflow.cwl": ("crop-app", "contains no Workflow"),
    "broken-workflow-id-mismatch.cwl": ("crop-app", "it contains 'crop_app'"),
    "broken-missing-run-target.cwl": ("crop-app", "runs '#crop', which is not in the $graph"),
}

# cwl-upgrader's and cwltool's own command-line functions, in one process for speed.
REFERENCE_VALIDATION = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from pathlib import Path
    import cwltool.main, cwlupgrader.main
    out = Path(sys.argv[1])
    sink = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # cwltool wants an encoding
    results = {}
    for name in sys.argv[2:]:
        upgraded = out / Path(name).name
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            try:
                cwlupgrader.main.main(["--dir", str(out), name])
            except Exception:
                upgraded = Path(name)  # not upgradable: judge it as written
            code = cwltool.main.main(["--validate", str(upgraded if upgraded.exists() else name)])
        results[Path(name).name] = code == 0
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def valid_once_upgraded(tmp_path_factory) -> dict[str, bool]:
    out = tmp_path_factory.mktemp("upgraded")
    result = subprocess.run(
        [sys.executable, "-c", REFERENCE_VALIDATION, str(out), *map(str, REAL)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def entry_workflows(path) -> list[str]:
    """Workflows that no step runs: the ones a user would deploy."""
    document = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    processes = document.get("$graph", [document])
    run = set()
    for process in processes:
        steps = process.get("steps") or []
        for step in steps.values() if isinstance(steps, dict) else steps:
            if isinstance(step, dict) and isinstance(step.get("run"), str):
                run.add(step["run"].lstrip("#"))
    ids = [p["id"].lstrip("#") for p in processes if p.get("class") == "Workflow"]
    return [i for i in ids if i not in run]


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_packages_are_judged_as_cwltool_judges_them_once_upgraded(
    path, valid_once_upgraded, cookies, capfd
):
    for workflow_id in entry_workflows(path):
        result = cookies.bake(
            extra_context={"workflow_id": workflow_id, "application_package": str(path)}
        )

        stderr = capfd.readouterr().err
        if valid_once_upgraded[path.name]:
            assert result.exit_code == 0, (workflow_id, hook_errors(stderr))
            assert (result.project_path / "app-package.cwl").read_bytes() == path.read_bytes()
        else:
            assert isinstance(result.exception, FailedHookException)
            assert hook_errors(stderr), "rejected without saying why"
            assert "Traceback" not in stderr


@pytest.mark.parametrize("name", BROKEN)
def test_broken_packages_are_rejected_naming_the_problem(name, cookies, capfd):
    workflow_id, expected = BROKEN[name]

    result = cookies.bake(
        extra_context={
            "workflow_id": workflow_id,
            "application_package": str(SHARED_APP_PACKAGES / name),
        }
    )

    assert isinstance(result.exception, FailedHookException)
    errors = hook_errors(capfd.readouterr().err)
    assert len(errors) == 1 and expected in errors[0], errors
