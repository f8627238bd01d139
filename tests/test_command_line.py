"""Generating a service with the cookiecutter command line, as an operator or developer does."""

from __future__ import annotations

import subprocess
import sys

from conftest import CROP_APP, TEMPLATE, hook_errors


def bake(tmp_path, *values: str, cwd=None) -> subprocess.CompletedProcess:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(out)]
    command += [str(TEMPLATE), *values]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd or tmp_path)


def test_the_application_package_is_written_into_the_service(tmp_path):
    result = bake(tmp_path, "workflow_id=crop-app", f"application_package={CROP_APP}")

    assert result.returncode == 0, result.stderr
    service_dir = tmp_path / "out" / "crop-app"
    assert (service_dir / "app-package.cwl").read_bytes() == CROP_APP.read_bytes()
    assert "def crop_app(conf, inputs, outputs):" in (service_dir / "service.py").read_text()
    assert "ERROR" not in result.stderr


def test_a_relative_path_is_read_from_where_cookiecutter_runs(tmp_path):
    (tmp_path / "packages").mkdir()
    (tmp_path / "packages" / "app.cwl").write_bytes(CROP_APP.read_bytes())

    result = bake(tmp_path, "workflow_id=crop-app", "application_package=packages/app.cwl")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "crop-app" / "app-package.cwl").is_file()


def test_a_file_url_is_downloaded(tmp_path):
    result = bake(tmp_path, "workflow_id=crop-app", f"application_package={CROP_APP.as_uri()}")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "crop-app" / "app-package.cwl").is_file()


def test_an_id_missing_from_the_package_lists_the_ids_it_holds(tmp_path):
    result = bake(tmp_path, "workflow_id=crop", f"application_package={CROP_APP}")

    assert result.returncode != 0
    assert hook_errors(result.stderr) == [
        "ERROR: app-package.cwl has no Workflow with id 'crop'; it contains 'crop-app': "
        "use one of these as workflow_id."
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "crop").exists()


def test_a_missing_file_is_reported_before_rendering(tmp_path):
    result = bake(tmp_path, "workflow_id=crop-app", "application_package=nowhere.cwl")

    assert result.returncode != 0
    [error] = hook_errors(result.stderr)
    assert error.startswith("ERROR: application_package '")
    assert "nowhere.cwl' cannot be read (No such file or directory)" in error
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_an_empty_workflow_id_gets_one_clear_error(tmp_path):
    result = bake(tmp_path)

    assert result.returncode != 0
    assert hook_errors(result.stderr) == [
        "ERROR: workflow_id is empty: give the id of the Workflow to run, "
        "for example workflow_id=water-bodies."
    ]
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "out").iterdir()) == []
