"""Executing the example service as the kernel does, with the embedded cwltool engine."""

from __future__ import annotations

import json

import pytest

from conftest import EXAMPLE_ITEM, ZOO_STATUS, fake_zoo_module, kernel_conf


@pytest.fixture
def example(example_service_dir, kernel_import, monkeypatch):
    monkeypatch.setenv("EXECUTION_ENGINE", "cwltool")
    zoo = fake_zoo_module()
    return kernel_import(example_service_dir, zoo=zoo), zoo


def request_inputs(bands=("red", "nir")) -> dict:
    """The inputs dict the kernel builds for {"item": {"href": ...}, "bands": [...]}."""
    return {
        "item": {"xlink:href": EXAMPLE_ITEM.as_uri(), "value": "{...downloaded...}", "size": "9"},
        "bands": {"value": list(bands), "isArray": "true", "length": str(len(bands))},
    }


def service_logs(conf: dict) -> dict[str, str]:
    links = conf["service_logs"]
    count = int(links["length"])
    keys = [("url", "title")] + [(f"url_{i}", f"title_{i}") for i in range(1, count)]
    return {links[title]: links[url] for url, title in keys}


def test_the_example_runs_like_the_kernel_calls_it(example, tmp_path):
    service, zoo = example
    conf = kernel_conf(tmp_path)
    outputs = {"results": {"mimeType": "application/json"}}

    status = service.band_stats(conf, request_inputs(), outputs)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    job = tmp_path / "temp" / "band-stats-0b8a7c4e-1d2f-4e5a-9b6c-7d8e9f0a1b2c"
    assert all(isinstance(v, str) for out in outputs.values() for v in out.values())
    catalog = job / "results" / "catalog.json"
    assert outputs["results"]["value"] == f"http://localhost/temp/{job.name}/results/catalog.json"
    item_href = next(
        link["href"] for link in json.loads(catalog.read_text())["links"] if link["rel"] == "item"
    )
    item = json.loads((catalog.parent / item_href).read_text())
    assert sorted(item["assets"]) == ["nir", "red"]
    red = json.loads((catalog.parent / item_href).parent.joinpath("red.json").read_text())
    assert red["count"] == 64 and red["item"] == "demo-item"

    for name in ("job.log", "output.json", "usage-report.json"):
        assert (job / name).is_file(), name
    report = json.loads((job / "usage-report.json").read_text())
    assert {"start_time", "end_time", "children"} <= set(report)
    steps = sorted(child["name"] for child in report["children"])
    assert steps == ["measure", "measure_2", "publish", "stage_in_item", "stage_out_results"]
    assert all(child["elapsed_seconds"] >= 0 for child in report["children"])
    assert (job / "tool-logs" / "measure.log").read_text().startswith("red: mean")

    links = service_logs(conf)
    assert links["Job log"] == f"http://localhost/temp/{job.name}/job.log"
    assert links["Usage report"] == f"http://localhost/temp/{job.name}/usage-report.json"
    assert links["Tool log publish"] == f"http://localhost/temp/{job.name}/tool-logs/publish.log"
    assert int(conf["service_logs"]["length"]) == len(links) == 3 + len(steps)
    percents = [percent for percent, _ in zoo.statuses]
    assert percents == sorted(percents) and percents[-1] == 100
    assert (23, "execution submitted") in zoo.statuses
    assert not (job / "cwltool" / "params.json").exists()


def test_a_failing_step_is_named_and_its_log_linked(example, tmp_path):
    service, _ = example
    conf = kernel_conf(tmp_path)

    status = service.band_stats(conf, request_inputs(bands=("red", "swir")), {"results": {}})

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    assert conf["lenv"]["message"] == (
        "Step 'measure' failed with exit code 1: band 'swir' is not an asset of item "
        "demo-item (red, nir, green)"
    )
    job = tmp_path / "temp" / "band-stats-0b8a7c4e-1d2f-4e5a-9b6c-7d8e9f0a1b2c"
    assert service_logs(conf)["Job log"].endswith(f"{job.name}/job.log")
    assert "permanentFail" in (job / "job.log").read_text()


def test_missing_mandatory_inputs_stop_before_any_engine(example, tmp_path):
    service, zoo = example
    conf = kernel_conf(tmp_path)
    inputs = {"item": {"value": "NULL", "inRequest": "false"}}

    status = service.band_stats(conf, inputs, {"results": {}})

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    assert conf["lenv"]["message"] == (
        "The execute request lacks the mandatory input 'item': give a value for each."
    )
    assert not (tmp_path / "temp").exists()
    assert max(percent for percent, _ in zoo.statuses) < 23


def test_a_value_of_the_wrong_type_is_refused_in_one_sentence(example, tmp_path):
    service, _ = example
    conf = kernel_conf(tmp_path)
    inputs = {**request_inputs(), "bands": {"value": ["red", "nir"], "isArray": "true"}}
    inputs["item"] = {"value": "not a url", "xlink:href": ""}

    status = service.band_stats(conf, inputs, {"results": {}})

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    assert "\n" not in conf["lenv"]["message"]


def test_without_kubernetes_access_the_calrissian_engine_says_what_to_do(
    example_service_dir, kernel_import, monkeypatch, tmp_path
):
    monkeypatch.setenv("EXECUTION_ENGINE", "calrissian")
    for variable in ("KUBECONFIG", "HTTP_PROXY", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    service = kernel_import(example_service_dir, zoo=fake_zoo_module())
    conf = kernel_conf(tmp_path)

    status = service.band_stats(conf, request_inputs(), {"results": {}})

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    assert conf["lenv"]["message"] == (
        "No Kubernetes access: set KUBECONFIG, run the service in a cluster, or set "
        "EXECUTION_ENGINE=cwltool."
    )
