"""The deploy call of the ZOO-Project ADES and the kernel's call of the generated service."""

from __future__ import annotations

import json
import shutil

from conftest import (
    CROP_APP,
    EXAMPLE_ITEM,
    ZOO_STATUS,
    ades_deploy,
    fake_zoo_module,
    kernel_conf,
    replayed_context,
)

EXECUTE_INPUTS = {
    "product": {"xlink:href": "https://example.com/catalog.json", "value": "{}"},
    "aoi": {"value": "10,45,11,46", "dataType": "string"},
    "bands": {"value": "NULL", "inRequest": "false"},
}


def test_the_deploy_call_generates_a_service_named_after_the_workflow(tmp_path):
    service_dir = ades_deploy("water-bodies", tmp_path)

    assert service_dir == tmp_path / "DeployProcess-0123" / "water-bodies"
    assert sorted(p.name for p in service_dir.iterdir()) == ["__init__.py", "assets", "service.py"]
    source = (service_dir / "service.py").read_text()
    assert "def water_bodies(conf, inputs, outputs):" in source


def test_the_deploy_call_passes_conf_to_the_template(tmp_path):
    ades_deploy("water-bodies", tmp_path)

    assert replayed_context(tmp_path)["conf"] == {
        "configurationFile": "/tmp/zTmp/cookiecutter_config.yaml",
        "templatesPath": "/tmp/zTmp/cookiecutter-templates",
        "templateUrl": "https://github.com/example/zoo-calrissian-service-template.git",
        "templateBranch": "main",
    }


def test_a_second_deploy_of_the_same_id_overwrites_the_folder(tmp_path):
    first = ades_deploy("water-bodies", tmp_path)
    second = ades_deploy("water-bodies", tmp_path)

    assert first == second
    assert (second / "service.py").is_file()


def test_the_service_imports_without_the_zoo_module(tmp_path, kernel_import):
    service = kernel_import(ades_deploy("water-bodies", tmp_path))

    assert callable(service.water_bodies)
    for name, value in ZOO_STATUS.items():
        assert getattr(service.zoo, name) == value


def test_the_service_uses_the_kernel_zoo_module_when_present(tmp_path, kernel_import):
    zoo = fake_zoo_module()
    service = kernel_import(ades_deploy("water-bodies", tmp_path), zoo=zoo)

    assert service.zoo is zoo


def test_without_an_application_package_the_entry_function_fails_cleanly(tmp_path, kernel_import):
    service = kernel_import(ades_deploy("crop-app", tmp_path), zoo=fake_zoo_module())
    conf = {"lenv": {"usid": "1234"}, "main": {"tmpPath": str(tmp_path)}}

    status = service.crop_app(conf, dict(EXECUTE_INPUTS), {"results": {}})

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    assert conf["lenv"]["message"] == (
        "The Application Package app-package.cwl is missing from the service folder: "
        "deploy the process again."
    )


def test_the_package_the_ades_writes_after_generation_is_run(tmp_path, kernel_import, monkeypatch):
    service_dir = ades_deploy("crop-app", tmp_path)
    shutil.copy(CROP_APP, service_dir / "app-package.cwl")  # what DeployProcess does next
    service = kernel_import(service_dir, zoo=fake_zoo_module())
    monkeypatch.setenv("EXECUTION_ENGINE", "cwltool")
    conf = kernel_conf(tmp_path, workflow_id="crop-app")
    inputs = {**EXECUTE_INPUTS, "product": {"xlink:href": EXAMPLE_ITEM.as_uri(), "value": "{}"}}
    outputs = {"results": {}}

    status = service.crop_app(conf, inputs, outputs)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    results = json.loads(outputs["results"]["value"])  # Directory[]: one URL per band
    assert [url.rsplit("/", 1)[-1] for url in results] == ["red", "nir"]


def test_missing_mandatory_inputs_are_all_named(tmp_path, kernel_import):
    service_dir = ades_deploy("crop-app", tmp_path)
    shutil.copy(CROP_APP, service_dir / "app-package.cwl")
    service = kernel_import(service_dir, zoo=fake_zoo_module())
    conf = {"lenv": {"usid": "1234"}, "main": {"tmpPath": str(tmp_path)}}
    inputs = {
        "product": {"value": "NULL", "inRequest": "false"},
        "note": {"value": "hello"},
    }

    status = service.crop_app(conf, inputs, {"results": {}})

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    assert conf["lenv"]["message"] == (
        "The execute request lacks the mandatory inputs 'product' and 'aoi': give a value for each."
    )
