"""Shared helpers: the template's location, baking like the ADES, importing a baked service."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter
from harness.fixtures import fake_cluster  # noqa: F401  (the offline Kubernetes harness)

TEMPLATE = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
CROP_APP = DATA / "crop-app.cwl"
SHARED_APP_PACKAGES = TEMPLATE.parent / "shared" / "app-packages"

# The [cookiecutter] section of the ZOO-Project chart's main.cfg, as DeployProcess passes it.
ADES_CONF = {
    "configurationFile": "/tmp/zTmp/cookiecutter_config.yaml",
    "templatesPath": "/tmp/zTmp/cookiecutter-templates",
    "templateUrl": "https://github.com/example/zoo-calrissian-service-template.git",
    "templateBranch": "main",
}

# The status codes of the kernel's zoo module.
ZOO_STATUS = {
    "SERVICE_ACCEPTED": 0,
    "SERVICE_STARTED": 1,
    "SERVICE_PAUSED": 2,
    "SERVICE_SUCCEEDED": 3,
    "SERVICE_FAILED": 4,
    "SERVICE_DISMISSED": 5,
    "SERVICE_DEPLOYED": 6,
    "SERVICE_UNDEPLOYED": 7,
}


def ades_deploy(workflow_id: str, tmp_path: Path, conf: dict | None = None) -> Path:
    """Generate a service exactly as the ZOO-Project DeployProcess does; its folder."""
    templates = tmp_path / "cookiecutter-templates"
    templates.mkdir(exist_ok=True)
    config_file = tmp_path / "cookiecutter_config.yaml"
    config_file.write_text(f"replay_dir: {templates}/\ncookiecutters_dir: {templates}/\n")
    output_dir = tmp_path / "DeployProcess-0123"
    project = cookiecutter(
        str(TEMPLATE),
        extra_context={
            "service_name": workflow_id,
            "workflow_id": workflow_id,
            "conf": ADES_CONF if conf is None else conf,
        },
        output_dir=str(output_dir),
        no_input=True,
        overwrite_if_exists=True,
        config_file=str(config_file),
    )
    return Path(project)


def replayed_context(tmp_path: Path) -> dict:
    """The context cookiecutter recorded for the last ades_deploy in ``tmp_path``."""
    replay = tmp_path / "cookiecutter-templates" / f"{TEMPLATE.name}.json"
    return json.loads(replay.read_text())["cookiecutter"]


def fake_zoo_module() -> types.ModuleType:
    """A stand-in for the kernel's C module, to show the service uses it when present."""
    module = types.ModuleType("zoo")
    for name, value in ZOO_STATUS.items():
        setattr(module, name, value)
    module.statuses = []
    module._ = lambda message: message
    module.update_status = lambda conf, percent: module.statuses.append(
        (percent, conf["lenv"].get("message"))
    )
    return module


def forget_modules(top_level: str) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] == top_level]:
        del sys.modules[name]


@pytest.fixture
def kernel_import(monkeypatch):
    """Import ``<service folder>.service`` the way the ZOO kernel does (folder on sys.path)."""
    loaded = []

    def load(service_dir: Path, zoo: types.ModuleType | None = None):
        monkeypatch.syspath_prepend(str(service_dir.parent))
        monkeypatch.setitem(sys.modules, "zoo", zoo)  # None: "import zoo" raises ImportError
        loaded.append(service_dir.name)
        forget_modules(service_dir.name)
        return importlib.import_module(f"{service_dir.name}.service")

    yield load
    for name in loaded:
        forget_modules(name)


def hook_errors(stderr: str) -> list[str]:
    """The ERROR lines our hooks printed (cookiecutter adds a generic line of its own)."""
    return [
        line
        for line in stderr.splitlines()
        if line.startswith("ERROR: ") and "Stopping generation because" not in line
    ]


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    """The module of a service baked once for this session, imported from its file."""
    output_dir = tmp_path_factory.mktemp("baked")
    project = cookiecutter(
        str(TEMPLATE),
        extra_context={"workflow_id": "crop-app"},
        output_dir=str(output_dir),
        no_input=True,
        default_config=True,
    )
    spec = importlib.util.spec_from_file_location("baked_service", Path(project) / "service.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


EXAMPLES = TEMPLATE / "examples"
EXAMPLE_APP = EXAMPLES / "band-stats.cwl"
EXAMPLE_ITEM = EXAMPLES / "data" / "catalog.json"


def bake_service(output_dir: Path, workflow_id: str, package: Path) -> Path:
    """A service generated from ``package`` on the command-line path (package given)."""
    project = cookiecutter(
        str(TEMPLATE),
        extra_context={"workflow_id": workflow_id, "application_package": str(package)},
        output_dir=str(output_dir),
        no_input=True,
        default_config=True,
    )
    return Path(project)


@pytest.fixture(scope="session")
def example_service_dir(tmp_path_factory) -> Path:
    return bake_service(tmp_path_factory.mktemp("example"), "band-stats", EXAMPLE_APP)


def kernel_conf(tmp_path: Path, workflow_id: str = "band-stats", usid: str | None = None) -> dict:
    """The conf sections the kernel passes to a service at execution time."""
    return {
        "main": {"tmpPath": str(tmp_path / "temp"), "tmpUrl": "http://localhost/temp/"},
        "lenv": {
            "usid": usid or "0b8a7c4e-1d2f-4e5a-9b6c-7d8e9f0a1b2c",
            "Identifier": workflow_id,
            "message": "",
        },
        "auth_env": {"user": "anonymous", "cwd": str(tmp_path)},
    }


def served_path(url: str, tmp_path: Path) -> Path:
    """The file behind a URL under the ``kernel_conf`` tmpUrl."""
    prefix = "http://localhost/temp/"
    assert url.startswith(prefix), url
    return tmp_path / "temp" / url.removeprefix(prefix)
