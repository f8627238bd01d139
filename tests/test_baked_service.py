"""What a baked service.py looks like: plain Python, lint-clean, the kernel's entry point."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

JINJA_LEFTOVER = re.compile(r"{{|{%|{#")  # an opener that rendering would have consumed
IDS = ["water-bodies", "a", "_x", "s2_cropper", "_1"]


@pytest.fixture(params=IDS)
def baked(request, cookies):
    result = cookies.bake(extra_context={"workflow_id": request.param})
    assert result.exit_code == 0, result.exception
    return request.param, result.project_path


def test_no_jinja_is_left_in_the_service(baked):
    _, service_dir = baked
    for path in service_dir.rglob("*"):
        if path.is_file():
            assert not JINJA_LEFTOVER.search(path.read_text()), path


def test_the_service_passes_ruff(baked):
    _, service_dir = baked
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--isolated",
            "--line-length=100",
            "--select=E,F,W,I,B,UP,SIM,RUF",
            "--target-version=py310",
            str(service_dir),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_the_entry_function_and_handler_are_where_the_kernel_looks(baked):
    workflow_id, service_dir = baked
    tree = ast.parse((service_dir / "service.py").read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    entry = functions[workflow_id.replace("-", "_")]
    assert [arg.arg for arg in entry.args.args] == ["conf", "inputs", "outputs"]
    handlers = [
        name
        for name, node in classes.items()
        if any(getattr(base, "id", None) == "ExecutionHandler" for base in node.bases)
    ]
    assert len(handlers) == 1 and handlers[0].endswith("Handler")
    assert handlers[0].isidentifier()


def test_the_handler_interface_matches_zoo_calrissian_runner(service):
    abstract = service.ExecutionHandler.__abstractmethods__

    assert abstract == {
        "pre_execution_hook",
        "post_execution_hook",
        "get_secrets",
        "get_pod_env_vars",
        "get_pod_node_selector",
        "handle_outputs",
        "get_additional_parameters",
    }
    handler = service.CropAppHandler(conf={"pod_env_vars": {"A": "1"}}, outputs={})
    assert handler.conf == {"pod_env_vars": {"A": "1"}}
    assert handler.job_id is None
    handler.set_job_id("crop-app-1234")
    assert handler.job_id == "crop-app-1234"
    assert handler.get_pod_env_vars() == {"A": "1"}
    with pytest.raises(TypeError):
        service.CropAppHandler({"lenv": {}})  # keyword arguments only, as the seed defines it


def test_the_zoo_stub_reports_progress_like_the_kernel(service, caplog):
    caplog.set_level("INFO", logger="zoo")
    stub = service.ZooStub()

    stub.update_status({"lenv": {"message": "execution submitted"}}, 23)
    stub.update_status({"lenv": {"message": "x"}}, 30)  # the kernel ignores 1-character messages

    assert [r.getMessage() for r in caplog.records] == ["[ 23%] execution submitted"]
    with pytest.raises(ValueError, match="percentage"):
        stub.update_status({"lenv": {"message": "too far"}}, 101)


def test_the_default_handler_reads_mounted_pull_secrets(service, tmp_path, monkeypatch):
    auths = tmp_path / "pull.yaml"
    auths.write_text('auths: {"registry.example.com": {"auth": "dXNlcjpwYXNz"}}\n')
    names = tmp_path / "names.yaml"
    names.write_text("- registry-a\n- name: registry-b\n")
    monkeypatch.setenv("IMAGE_PULL_SECRETS_FILE", str(auths))
    monkeypatch.setenv("ADDITIONAL_IMAGE_PULL_SECRETS_FILE", str(names))

    secrets = service.CropAppHandler(conf={}).get_secrets()

    assert secrets == {
        "imagePullSecrets": {"auths": {"registry.example.com": {"auth": "dXNlcjpwYXNz"}}},
        "additionalImagePullSecrets": [{"name": "registry-a"}, {"name": "registry-b"}],
    }


def test_without_mounted_pull_secrets_there_are_none(service, tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGE_PULL_SECRETS_FILE", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("ADDITIONAL_IMAGE_PULL_SECRETS_FILE", str(tmp_path / "absent.yaml"))

    assert service.CropAppHandler(conf={}).get_secrets() is None
