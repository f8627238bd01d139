"""The runner with handlers of every style, concurrent executions, and the command line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLE_ITEM, EXAMPLES, TEMPLATE, ZOO_STATUS, fake_zoo_module, kernel_conf

INPUTS = {
    "item": {"xlink:href": EXAMPLE_ITEM.as_uri(), "value": ""},
    "bands": {"value": ["red"], "isArray": "true", "length": "1"},
}


@pytest.fixture
def service(example_service_dir, kernel_import):
    return kernel_import(example_service_dir, zoo=fake_zoo_module())


def run(service, handler_class, tmp_path, inputs=INPUTS):
    conf = kernel_conf(tmp_path)
    outputs = {"results": {}}
    handler = handler_class(conf=conf, outputs=outputs)
    runner = service.ZooCalrissianRunner(
        service.SERVICE_DIR / "app-package.cwl", conf, dict(inputs), outputs, handler, "cwltool"
    )
    return runner.execute(), conf, outputs, handler


def recording_handler(service, **methods):
    """A complete handler whose methods are replaced by ``methods``."""
    base = {
        name: (lambda self, *args, **kwargs: None)
        for name in service.ExecutionHandler.__abstractmethods__
    }
    base["get_additional_parameters"] = lambda self: {}
    return type("Recording", (service.ExecutionHandler,), {**base, **methods})


def test_handlers_written_for_zoo_calrissian_runner_keep_working(service, tmp_path):
    calls = {}

    def post_execution_hook(self, log, output, usage_report, tool_logs):
        calls["post"] = (log, output, usage_report, tool_logs)

    def handle_outputs(self, log, output, usage_report, tool_logs):
        calls["handle"] = (log, output, usage_report, tool_logs)

    handler_class = recording_handler(
        service, post_execution_hook=post_execution_hook, handle_outputs=handle_outputs
    )
    status, conf, _, _ = run(service, handler_class, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    log, output, usage_report, tool_logs = calls["post"]
    assert "[job measure] completed success" in log
    assert output["results"].startswith("file://")
    assert usage_report["children"][0]["name"] == "stage_in_item"
    assert all(Path(p).is_file() for p in tool_logs)
    assert calls["handle"] == calls["post"]


def test_keyword_only_hooks_receive_every_result(service, tmp_path):
    received = {}

    def post_execution_hook(self, **kwargs):
        received.update(kwargs)

    status, *_ = run(
        service, recording_handler(service, post_execution_hook=post_execution_hook), tmp_path
    )

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"]
    assert set(received) == {"log", "output", "usage_report", "tool_logs"}


def test_a_failing_handler_fails_the_job_in_one_sentence(service, tmp_path):
    def pre_execution_hook(self):
        raise RuntimeError("secret=hunter2 went wrong")

    status, conf, outputs, _ = run(
        service, recording_handler(service, pre_execution_hook=pre_execution_hook), tmp_path
    )

    assert status == ZOO_STATUS["SERVICE_FAILED"]
    assert conf["lenv"]["message"] == "The execution stopped on an unexpected RuntimeError."
    assert outputs == {"results": {}}


def test_the_runner_leaves_no_process_wide_state(service, tmp_path):
    cwd = os.getcwd()
    loggers = {name: list(logging.getLogger(name).handlers) for name in ("cwltool", "salad", "")}
    module_names = set(vars(service))

    status, *_ = run(service, service.BandStatsHandler, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"]
    assert os.getcwd() == cwd
    assert {n: list(logging.getLogger(n).handlers) for n in loggers} == loggers
    assert set(vars(service)) == module_names


def command_line(service_dir: Path, request: Path, workdir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            f"{service_dir.name}.service",
            str(request),
            "--workdir",
            str(workdir),
        ],
        cwd=service_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_executions_at_once_stay_apart(example_service_dir, tmp_path):
    processes = [
        command_line(example_service_dir, EXAMPLES / "execute.json", tmp_path / "jobs")
        for _ in range(2)
    ]
    results = [process.communicate(timeout=120) for process in processes]

    assert [p.returncode for p in processes] == [0, 0], results
    folders = sorted((tmp_path / "jobs").iterdir())
    assert len(folders) == 2
    for (stdout, _), folder in zip(results, folders, strict=False):
        assert f"Job folder: {folder}" in stdout or any(
            f"Job folder: {f}" in stdout for f in folders
        )
    for folder in folders:
        catalog = folder / "results" / "catalog.json"
        assert catalog.is_file()
        own = json.loads((folder / "output.json").read_text())["results"]
        assert own == catalog.as_uri()
        other = next(f for f in folders if f != folder)
        assert other.name not in (folder / "job.log").read_text()


def test_the_command_line_shows_progress_outputs_and_the_job_folder(example_service_dir, tmp_path):
    process = command_line(example_service_dir, EXAMPLES / "execute.json", tmp_path)
    stdout, stderr = process.communicate(timeout=120)

    assert process.returncode == 0, stderr
    assert "[ 23%] execution submitted" in stderr.splitlines()
    assert "[100%] execution successful" in stderr.splitlines()
    folder = next(tmp_path.iterdir())
    assert stdout.startswith(f"Job folder: {folder}\n")
    outputs = json.loads(stdout.split("\n", 1)[1])
    assert outputs == {"results": (folder / "results" / "catalog.json").as_uri()}


def test_the_command_line_fails_with_the_message(example_service_dir, tmp_path):
    request = tmp_path / "execute.json"
    request.write_text(
        json.dumps({"inputs": {"item": {"href": EXAMPLE_ITEM.as_uri()}, "bands": ["swir"]}})
    )

    process = command_line(example_service_dir, request, tmp_path / "jobs")
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 1
    assert stderr.splitlines()[-1].startswith("error: Step 'measure' failed with exit code 1")
    assert "Traceback" not in stderr


def test_the_command_line_refuses_a_request_that_is_not_json(example_service_dir, tmp_path):
    request = tmp_path / "execute.json"
    request.write_text("inputs: nope")

    process = command_line(example_service_dir, request, tmp_path / "jobs")
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 2
    assert stderr.startswith(f"error: {request}: ")
    assert "Traceback" not in stderr


def test_make_demo_prints_the_outputs_of_the_example(tmp_path):
    result = subprocess.run(
        ["make", "-s", "demo", f"BUILD={tmp_path}"],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert '"results": "file://' in result.stdout
    assert "[100%] execution successful" in result.stderr


def test_cwltool_failures_stay_inside_the_engine(service, tmp_path, capfd):
    package = service.ApplicationPackage.load(service.SERVICE_DIR / "app-package.cwl")
    wrapped = service.wrap(package.document, "band-stats", service.stage_process_files("cwltool"))
    engine = service.CwltoolEngine(service.EngineJob("job", tmp_path, {}, None))

    run = engine.run(wrapped, {"item": 42, "bands": "red"})  # not what main declares

    assert not run.succeeded
    assert run.failure.startswith("cwltool stopped (exit code 1)")
    assert "\n" not in run.failure
    assert "Invalid job input record" in run.failure
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


SECRET = "s3cr3t-Key-0123456789"


def test_secrets_never_reach_logs_messages_or_outputs(service, tmp_path, monkeypatch, capfd):
    stage_out = tmp_path / "stageout.yaml"
    default = (service.ASSETS_DIR / "stageout.yaml").read_text()
    stage_out.write_text(
        default.replace(
            "  process:\n    type: string\n    inputBinding: {position: 3}\n",
            "  process:\n    type: string\n    inputBinding: {position: 3}\n"
            "  STAGEOUT_AWS_SECRET_ACCESS_KEY:\n    type: string\n"
            "    inputBinding: {position: 4}\n",
        )
    )
    monkeypatch.setenv("WRAPPER_STAGE_OUT", str(stage_out))

    def get_additional_parameters(self):
        return {"STAGEOUT_AWS_SECRET_ACCESS_KEY": SECRET}

    handler_class = recording_handler(service, get_additional_parameters=get_additional_parameters)
    status, conf, outputs, _ = run(service, handler_class, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    job = tmp_path / "temp" / "band-stats-0b8a7c4e-1d2f-4e5a-9b6c-7d8e9f0a1b2c"
    assert "(secret-" in (job / "job.log").read_text()  # logged as cwltool's placeholder
    for path in job.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in json.dumps(conf) + json.dumps(outputs)
    captured = capfd.readouterr()
    assert SECRET not in captured.out + captured.err


def test_parameters_leave_the_job_folder_even_when_the_session_is_kept(
    service, tmp_path, monkeypatch
):
    monkeypatch.setenv("KEEP_SESSION", "true")

    status, conf, _, _ = run(service, service.BandStatsHandler, tmp_path)

    assert status == ZOO_STATUS["SERVICE_SUCCEEDED"], conf["lenv"]["message"]
    job = tmp_path / "temp" / "band-stats-0b8a7c4e-1d2f-4e5a-9b6c-7d8e9f0a1b2c"
    assert (job / "cwltool" / "workflow.cwl").is_file()  # the session is kept...
    assert not (job / "cwltool" / "params.json").exists()  # ...but not the parameters
