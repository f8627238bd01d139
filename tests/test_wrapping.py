"""Stage-in / stage-out wrapping: every wrapped document validates with cwltool and runs."""

from __future__ import annotations

import json

import pytest

from conftest import (
    DATA,
    EXAMPLE_ITEM,
    EXAMPLES,
    ZOO_STATUS,
    bake_service,
    fake_zoo_module,
    kernel_conf,
    served_path,
)

SHAPES = (DATA / "shapes.cwl").read_text()
ITEM = (EXAMPLES / "data" / "demo-item" / "demo-item.json").as_uri()
DEM = (EXAMPLES / "data" / "demo-item" / "red.txt").as_uri()


def href(url: str) -> dict:
    return {"xlink:href": url, "value": "{...}"}


INPUTS = {
    "scene": href(EXAMPLE_ITEM.as_uri()),
    "extra": href(ITEM),
    "stack": {"xlink:href": [EXAMPLE_ITEM.as_uri(), ITEM], "value": ["", ""], "isArray": "true"},
    "dem": href(DEM),
    "tag": {"value": "t1"},
}
VARIANTS = {
    "v1.2": (SHAPES, "shapes", INPUTS),
    "optional-absent": (
        SHAPES,
        "shapes",
        {**INPUTS, "extra": {"value": "NULL", "inRequest": "false"}},
    ),
    "v1.0": (SHAPES.replace("cwlVersion: v1.2", "cwlVersion: v1.0"), "shapes", INPUTS),
    "process-called-main": (SHAPES.replace("id: shapes", "id: main"), "main", INPUTS),
}


def stage_files(service) -> dict:
    return service.stage_process_files("cwltool")


@pytest.mark.parametrize(("text", "workflow_id", "inputs"), VARIANTS.values(), ids=VARIANTS.keys())
def test_wrapped_packages_validate_and_run(
    text, workflow_id, inputs, tmp_path, kernel_import, monkeypatch
):
    package = tmp_path / "package.cwl"
    package.write_text(text)
    service_dir = bake_service(tmp_path / "out", workflow_id, package)
    monkeypatch.setenv("EXECUTION_ENGINE", "cwltool")
    service = kernel_import(service_dir, zoo=fake_zoo_module())

    wrapped = service.wrap(
        service.parse_cwl_yaml(text), workflow_id, service.stage_process_files("cwltool")
    )
    wrapped_file = tmp_path / "wrapped.cwl"
    wrapped_file.write_text(json.dumps(wrapped))
    assert service._cwltool_problems(wrapped_file, "main") == ([], [])

    conf = kernel_conf(tmp_path, workflow_id=workflow_id)
    outputs = {"summary": {}, "note": {}}
    status = getattr(service, workflow_id)(conf, dict(inputs), outputs)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    catalog = served_path(outputs["summary"]["value"], tmp_path)
    seen = json.loads(json.loads(catalog.read_text())["description"])
    assert seen["scene"] == ["catalog.json", "demo-item"]
    assert seen["stack"] == [["catalog.json", "demo-item"]] * 2
    assert seen["extra"] == (
        None if inputs["extra"].get("inRequest") else ["catalog.json", "demo-item"]
    )
    assert seen["dem"] == (EXAMPLES / "data" / "demo-item" / "red.txt").read_text().split()[:3]
    note = served_path(outputs["note"]["value"], tmp_path)
    assert json.loads(note.read_text()) == seen


def test_the_wrapped_main_takes_urls_and_exposes_stage_inputs(service):
    wrapped = service.wrap(
        service.parse_cwl_yaml(SHAPES), "shapes", service.stage_process_files("cwltool")
    )

    main = wrapped["$graph"][0]
    types = {i["id"]: i["type"] for i in main["inputs"]}
    assert types == {
        "scene": "string",
        "extra": ["null", "string"],
        "stack": {"type": "array", "items": "string"},
        "dem": "string",
        "tag": "string",
        "STAGEOUT_OUTPUT": "string",
        "process": "string",
    }
    steps = {step["id"]: step for step in main["steps"]}
    assert steps["stage_in_extra"]["when"] == "$(inputs.reference !== null)"
    assert steps["stage_in_stack"]["scatter"] == "reference"
    assert steps["stage_in_dem"]["run"] == "#stage-in-file"
    assert "stage_out_note" in steps and "stage_out_summary" in steps
    assert wrapped["cwlVersion"] == "v1.2"
    assert wrapped["s:softwareVersion"] == "0.1.0"


def test_a_process_called_main_is_renamed(service):
    wrapped = service.wrap(
        service.parse_cwl_yaml(SHAPES.replace("id: shapes", "id: main")),
        "main",
        stage_files(service),
    )

    ids = [process["id"] for process in wrapped["$graph"]]
    assert ids.count("main") == 1
    app = next(step for step in wrapped["$graph"][0]["steps"] if step["id"] == "app")
    assert app["run"] == "#main-app" and "main-app" in ids


def test_without_a_stage_out_directory_outputs_pass_through(service):
    files = {**stage_files(service), "stage-out": None, "stage-out-file": None}

    wrapped = service.wrap(service.parse_cwl_yaml(SHAPES), "shapes", files)

    outputs = {o["id"]: o for o in wrapped["$graph"][0]["outputs"]}
    assert outputs["summary"] == {
        "id": "summary",
        "type": "Directory",
        "outputSource": "app/summary",
    }


def test_a_stage_process_breaking_the_contract_is_refused(service, tmp_path):
    bad = tmp_path / "stagein.yaml"
    bad.write_text(
        "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: echo\n"
        "inputs: {a: string, b: string}\n"
        "outputs: {o: {type: Directory, outputBinding: {glob: .}}}\n"
    )
    files = {**stage_files(service), "stage-in": bad}

    with pytest.raises(service.WrapError, match="stage-in process must have one URL input"):
        service.wrap(service.parse_cwl_yaml(SHAPES), "shapes", files)


def test_the_chart_variables_select_the_stage_processes(service, tmp_path, monkeypatch):
    asset = tmp_path / "stagein.yaml"
    asset.write_text((service.ASSETS_DIR / "stagein.yaml").read_text())
    monkeypatch.setenv("WRAPPER_STAGE_IN", str(asset))
    monkeypatch.setenv("WRAPPER_STAGE_OUT", str(tmp_path / "absent.yaml"))

    files = service.stage_process_files("calrissian")

    assert files["stage-in"] == asset
    assert files["stage-in-file"] == service.ASSETS_DIR / "stagein-file.yaml"
    assert files["stage-out"] is None  # Calrissian without a stage-out: results are copied
