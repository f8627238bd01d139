"""Identifiers become a function, a folder and a Kubernetes namespace: hostile ones stop early."""

from __future__ import annotations

import pytest
from cookiecutter.exceptions import FailedHookException

from conftest import ades_deploy, hook_errors

MARKER = "INJECTED"

HOSTILE_WORKFLOW_IDS = {
    "empty": "",
    "keyword": "class",
    "keyword-none": "None",
    "dot": "water.bodies",
    "space": "water bodies",
    "leading-digit": "1abc",
    "only-digits": "2024",
    "non-ascii": "wätter",
    "non-ascii-letter": "é",
    "comma": "a,b",
    "semicolon": "a;b",
    "dollar-dollar": "a$$b",
    "dollar-quote": "x$q$y",
    "slash": "water/bodies",
    "parent-folder": "..",
    "backslash": "a\\",
    "newline": "a\nb",
    "python-code": f'x"; import os; open("{MARKER}", "w"); x="',
    "python-code-newlines": f"x'\nimport os\nopen('{MARKER}', 'w')\n",
    "triple-quotes": '"""; open("INJECTED", "w"); """',
    "jinja-expression": "{{ 7 * 7 }}",
    "jinja-code": f"{{{{ cycler.__init__.__globals__.os.system('touch {MARKER}') }}}}",
    "jinja-block": "{% for x in range(3) %}x{% endfor %}",
    "no-letter-or-digit": "_",
    "only-separators": "_-_",
    "too-long-for-a-namespace": "a" * 55,
}
VALID_WORKFLOW_IDS = ["water-bodies", "a", "_x", "s2_cropper", "A-Mixed_Case9", "main", "a" * 54]


@pytest.mark.parametrize(
    "workflow_id", HOSTILE_WORKFLOW_IDS.values(), ids=HOSTILE_WORKFLOW_IDS.keys()
)
def test_hostile_ids_are_rejected_before_anything_is_generated(
    workflow_id, tmp_path, monkeypatch, capfd
):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(FailedHookException):
        ades_deploy(workflow_id, tmp_path)

    errors = hook_errors(capfd.readouterr().err)
    assert len(errors) == 1, errors
    assert "workflow_id" in errors[0]
    assert list((tmp_path / "DeployProcess-0123").iterdir()) == []
    assert not list(tmp_path.rglob(MARKER)), "a value was executed"
    assert not (tmp_path.parent / "bodies").exists()


@pytest.mark.parametrize("workflow_id", VALID_WORKFLOW_IDS)
def test_valid_ids_are_accepted(workflow_id, cookies):
    result = cookies.bake(extra_context={"workflow_id": workflow_id})

    assert result.exit_code == 0, result.exception
    assert result.project_path.name == workflow_id
    function_name = workflow_id.replace("-", "_")
    assert (
        f"def {function_name}(conf, inputs, outputs):"
        in (result.project_path / "service.py").read_text()
    )


@pytest.mark.parametrize(
    ("service_name", "expected"),
    [
        ("", "service_name is empty"),
        ("my service", "cannot name the service folder"),
        ("../outside", "cannot name the service folder"),
        ("svc;drop", "forbids in identifiers"),
    ],
)
def test_a_bad_service_name_is_rejected(service_name, expected, cookies, capfd):
    result = cookies.bake(
        extra_context={"workflow_id": "water-bodies", "service_name": service_name}
    )

    assert isinstance(result.exception, FailedHookException)
    errors = hook_errors(capfd.readouterr().err)
    assert len(errors) == 1 and expected in errors[0], errors


def test_a_service_name_may_differ_from_the_workflow_id(cookies):
    result = cookies.bake(extra_context={"workflow_id": "water-bodies", "service_name": "wb_v2"})

    assert result.exit_code == 0, result.exception
    assert result.project_path.name == "wb_v2"
    assert (
        "def water_bodies(conf, inputs, outputs):"
        in (result.project_path / "service.py").read_text()
    )


def test_conf_must_be_a_mapping(cookies, capfd):
    result = cookies.bake(extra_context={"workflow_id": "water-bodies", "conf": "not a mapping"})

    assert result.exit_code != 0
    errors = hook_errors(capfd.readouterr().err)
    assert errors and "conf must be a mapping" in errors[0]


@pytest.mark.parametrize("workflow_id", ["wrap", "zoo", "json", "execution", "ZooStub"])
def test_ids_that_would_shadow_the_service_code_are_rejected(workflow_id, tmp_path, capfd):
    with pytest.raises(FailedHookException):
        ades_deploy(workflow_id, tmp_path)

    errors = hook_errors(capfd.readouterr().err)
    assert len(errors) == 1 and "which service.py already uses for its own code" in errors[0]
    assert list((tmp_path / "DeployProcess-0123").iterdir()) == []
