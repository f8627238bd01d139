"""The Application Package check: what it accepts, what it rejects, and how it says so."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException

from conftest import CROP_APP, TEMPLATE, hook_errors

CROP = CROP_APP.read_text()
DOCKER = (
    "    requirements:\n"
    "      DockerRequirement:\n"
    "        dockerPull: docker.io/library/python:3.12-slim\n"
)


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


def variant(old: str, new: str) -> str:
    assert old in CROP
    return CROP.replace(old, new, 1)


YAML_ERROR = variant("default: [red, nir]", "default: [red, nir")
BROKEN = {
    "yaml-syntax": (
        YAML_ERROR,
        f"is not valid YAML: while parsing a flow sequence (line {line_of(CROP, '[red, nir]')}, ",
    ),
    "not-cwl": ("apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n", "is not a CWL document"),
    "no-cwl-version": (variant("cwlVersion: v1.2\n", ""), "has no cwlVersion"),
    "float-version": (
        variant("cwlVersion: v1.2", "cwlVersion: 1.2"),
        "has cwlVersion 1.2, a number",
    ),
    "unknown-version": (
        variant("cwlVersion: v1.2", "cwlVersion: v1.5"),
        "'v1.5', which is not supported",
    ),
    "id-mismatch": (
        variant("id: crop-app", "id: crop_app"),
        "has no Workflow with id 'crop-app'; it contains 'crop_app'",
    ),
    "run-target": (
        variant('run: "#crop-tool"', 'run: "#crop"'),
        "runs '#crop', which is not in the $graph",
    ),
    "separate-file": (
        variant('run: "#crop-tool"', "run: crop.cwl"),
        "runs the separate file 'crop.cwl'",
    ),
    "no-docker": (variant(DOCKER, ""), "CommandLineTool 'crop-tool' has no DockerRequirement"),
    "type-typo": (
        variant("type: string\n        label: Area", "type: strng\n        label: Area"),
        f"line {line_of(CROP, 'type: string' + chr(10) + '        label: Area')}, column 9: "
        "Field 'type' references unknown identifier 'strng'",
    ),
    "unknown-field": (
        variant("    label: Crop a product", "    lable: Crop a product"),
        "invalid field 'lable'",
    ),
    "type-mismatch": (
        variant("aoi: aoi\n", "aoi: product\n"),
        "Source 'product' of type \"Directory\" is incompatible",
    ),
}


def write(tmp_path, text: str):
    path = tmp_path / "app-package.cwl"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "expected"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_packages_are_rejected_with_a_message_naming_the_problem(
    text, expected, tmp_path, service
):
    findings = service.ApplicationPackage.check_file(write(tmp_path, text), "crop-app")

    assert not findings.ok
    assert any(expected in error for error in findings.errors), findings.errors
    assert all("\n" not in error for error in findings.errors)


def test_a_sound_package_passes_without_warnings(tmp_path, service):
    findings = service.ApplicationPackage.check_file(write(tmp_path, CROP), "crop-app")

    assert findings.errors == []
    assert findings.warnings == []


def test_the_same_package_in_json_syntax_passes(tmp_path, service):
    findings = service.ApplicationPackage.check_file(
        write(tmp_path, json.dumps(yaml.safe_load(CROP))), "crop-app"
    )

    assert findings.ok, findings.errors


def test_a_v1_0_package_valid_only_once_upgraded_passes_with_a_warning(tmp_path, service):
    text = variant("cwlVersion: v1.2", "cwlVersion: v1.0")
    text = text.replace(DOCKER, DOCKER + "      NetworkAccess:\n        networkAccess: true\n")

    findings = service.ApplicationPackage.check_file(write(tmp_path, text), "crop-app")

    assert findings.ok, findings.errors
    assert any("valid once upgraded to v1.2, as the ADES stores it" in w for w in findings.warnings)


def test_best_practice_gaps_are_warnings(tmp_path, service):
    text = variant(DOCKER, DOCKER.replace("requirements", "hints"))
    text = text.replace("    label: Crop a product\n", "").replace("s:softwareVersion: 1.0.0\n", "")

    findings = service.ApplicationPackage.check_file(write(tmp_path, text), "crop-app")

    assert findings.ok, findings.errors
    assert [w.split(":")[0] for w in findings.warnings] == [
        "CommandLineTool 'crop-tool' declares DockerRequirement under hints; the OGC Best "
        "Practice asks for it under requirements.",
        "Workflow 'crop-app' has no label",
        "app-package.cwl has no s",
    ]


def test_mandatory_inputs_have_no_default_and_do_not_admit_null(tmp_path, service):
    text = variant(
        "      note:\n        type: string?", "      note:\n        type: ['null', string]"
    )
    package = service.ApplicationPackage.load(write(tmp_path, text))

    assert package.mandatory_inputs("crop-app") == ["product", "aoi"]


@pytest.mark.parametrize(
    ("entry", "given"),
    [
        ({"value": "10,45,11,46"}, True),
        ({"value": "false", "dataType": "boolean"}, True),
        ({"value": ["a", "b"], "isArray": "true", "length": "2"}, True),
        ({"xlink:href": "https://example.com/item.json", "value": "..."}, True),
        ({"value": "NULL"}, False),
        ({"value": "red", "inRequest": "false"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_which_zoo_inputs_count_as_given(entry, given, service):
    assert service.zoo_input_is_given(entry) is given


def bake(tmp_path, package_text: str, workflow_id: str = "crop-app"):
    source = write(tmp_path, package_text)
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path / "out")]
    command += [str(TEMPLATE), f"workflow_id={workflow_id}", f"application_package={source}"]
    return subprocess.run(command, capture_output=True, text=True)


def test_generation_with_a_broken_package_leaves_nothing_behind(tmp_path):
    result = bake(tmp_path, BROKEN["type-typo"][0])

    assert result.returncode != 0
    [error] = hook_errors(result.stderr)
    assert "Field 'type' references unknown identifier 'strng'" in error
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_generation_reports_yaml_errors_with_their_line(tmp_path):
    result = bake(tmp_path, YAML_ERROR)

    assert result.returncode != 0
    [error] = hook_errors(result.stderr)
    assert error == (
        "ERROR: app-package.cwl is not valid YAML: while parsing a flow sequence "
        f"(line {line_of(CROP, '[red, nir]')}, column 18), expected ',' or ']', but got ':' "
        f"(line {line_of(CROP, '[red, nir]') + 1}, column 11). Fix the syntax and deploy again."
    )
    assert list((tmp_path / "out").iterdir()) == []


def test_warnings_are_shown_but_do_not_stop_generation(tmp_path):
    result = bake(tmp_path, variant(DOCKER, DOCKER.replace("requirements", "hints")))

    assert result.returncode == 0, result.stderr
    assert (
        "WARNING: CommandLineTool 'crop-tool' declares DockerRequirement under hints"
        in result.stderr
    )
    assert (tmp_path / "out" / "crop-app" / "app-package.cwl").is_file()


def test_a_package_generated_from_the_api_with_a_wrong_id_fails(cookies, tmp_path, capfd):
    result = cookies.bake(
        extra_context={"workflow_id": "crop", "application_package": str(write(tmp_path, CROP))}
    )

    assert isinstance(result.exception, FailedHookException)
    assert result.project_path is None
    assert "it contains 'crop-app'" in hook_errors(capfd.readouterr().err)[0]


def test_a_valid_package_is_remembered_and_a_changed_one_checked_again(tmp_path, service):
    path = write(tmp_path, CROP)
    assert service.ApplicationPackage.check_file(path, "crop-app").ok
    stamp = tmp_path / ".app-package.cwl.valid"
    remembered = json.loads(stamp.read_text())
    stamp.write_text(json.dumps({**remembered, "warnings": ["remembered"]}))

    assert service.ApplicationPackage.check_file(path, "crop-app").warnings == ["remembered"]

    path.write_text(BROKEN["type-typo"][0])
    findings = service.ApplicationPackage.check_file(path, "crop-app")
    assert not findings.ok and "strng" in findings.errors[0]
    assert json.loads(stamp.read_text())["warnings"] == ["remembered"]  # never for a broken one
