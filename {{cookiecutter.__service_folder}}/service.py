"""{{ cookiecutter.service_name }}: an OGC API - Processes service of the ZOO-Project ADES.

Generated from the ZOO Calrissian service template for the Application Package Workflow
``{{ cookiecutter.workflow_id }}``. The ZOO kernel imports this module as
``{{ cookiecutter.service_name }}.service`` and calls
``{{ cookiecutter.__function_name }}(conf, inputs, outputs)``, which returns
``zoo.SERVICE_SUCCEEDED`` or ``zoo.SERVICE_FAILED``. The Application Package is the
``app-package.cwl`` file beside this one (the ADES writes it at deploy time).

Read top to bottom: the ``zoo`` module, the handler interface, the Application Package and its
check, the ZOO <-> CWL mapping, stage-in/stage-out wrapping, the two engines (cwltool in this
process; Calrissian on Kubernetes), the runner, the templated handler, the entry function and
the command line (``python -m <service>.service execute.json``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import dataclasses
import functools
import hashlib
import importlib.metadata
import inspect
import io
import json
import logging
import math
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.parse
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import yaml

WORKFLOW_ID = {{ cookiecutter.workflow_id | tojson }}
SERVICE_DIR = Path(__file__).resolve().parent
APP_PACKAGE_FILE = "app-package.cwl"

# ---------------------------------------------------------------------------------------------
# The zoo module: injected by the ZOO kernel; a stub with the same API everywhere else.
# ---------------------------------------------------------------------------------------------


class ZooStub:
    """What the kernel's ``zoo`` module provides, for running outside ZOO."""

    SERVICE_ACCEPTED = 0
    SERVICE_STARTED = 1
    SERVICE_PAUSED = 2
    SERVICE_SUCCEEDED = 3
    SERVICE_FAILED = 4
    SERVICE_DISMISSED = 5
    SERVICE_DEPLOYED = 6
    SERVICE_UNDEPLOYED = 7
    VERSION = "stub"

    _log = logging.getLogger("zoo")

    def _(self, message: str) -> str:
        return message

    def update_status(self, conf: dict, percent: int) -> None:
        if not 0 <= percent <= 100:
            raise ValueError("Status must be a percentage.")
        message = conf.get("lenv", {}).get("message", "")
        if len(message) > 1:  # the kernel ignores shorter messages too
            self._log.info("[%3d%%] %s", percent, message)

    def trace(self, message: str) -> None:
        self._log.debug(message)

    def debug(self, message: str) -> None:
        self._log.debug(message)

    def info(self, message: str) -> None:
        self._log.info(message)

    def success(self, message: str) -> None:
        self._log.info(message)

    def warning(self, message: str) -> None:
        self._log.warning(message)

    def error(self, message: str) -> None:
        self._log.error(message)

    def critical(self, message: str) -> None:
        self._log.critical(message)


try:
    import zoo  # type: ignore[import-not-found]
except ImportError:
    zoo = ZooStub()


def zoo_log(level: str, message: str) -> None:
    """Log through the kernel (>= 2.1 has logging functions) or Python logging."""
    log = getattr(zoo, level, None)
    if callable(log):
        log(message)
    else:
        logging.getLogger("zoo").log(logging.getLevelName(level.upper()), message)


# ---------------------------------------------------------------------------------------------
# The execution handler: where an operator plugs in business logic.
# ---------------------------------------------------------------------------------------------


class ExecutionHandler(ABC):
    """The hooks the runner calls; the interface of zoo-calrissian-runner's handler."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)
        self.job_id = None

    def set_job_id(self, job_id):
        self.job_id = job_id

    @abstractmethod
    def pre_execution_hook(self, **kwargs):
        pass

    @abstractmethod
    def post_execution_hook(self, **kwargs):
        pass

    @abstractmethod
    def get_secrets(self):
        pass

    @abstractmethod
    def get_pod_env_vars(self):
        pass

    @abstractmethod
    def get_pod_node_selector(self):
        pass

    @abstractmethod
    def handle_outputs(self, execution_log, output, usage_report, tool_logs=None):
        pass

    @abstractmethod
    def get_additional_parameters(self):
        pass


# ---------------------------------------------------------------------------------------------
# The Application Package: load, find the Workflow, check.
# ---------------------------------------------------------------------------------------------

SUPPORTED_CWL_VERSIONS = ("v1.0", "v1.1", "v1.2")
ADES_CWL_VERSION = "v1.2"  # the ADES stores every package upgraded to this version
SCHEMA_ORG = ("https://schema.org/", "http://schema.org/")
MAX_REPORTED_SCHEMA_PROBLEMS = 5


class ApplicationPackageError(Exception):
    """A package that cannot be used; the message says what is wrong and what to do."""


class CwlYamlLoader(yaml.SafeLoader):
    """YAML 1.2 scalars for PyYAML: only true/false are booleans, dates stay strings."""


CwlYamlLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
CwlYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_cwl_yaml(text: str) -> object:
    """Parse CWL text as cwltool does (schema-salad's YAML 1.2 loader, no timestamps).

    PyYAML (YAML 1.1) is the fallback where cwltool is not installed; it refuses some valid
    YAML 1.2, such as ``{type: Directory?}`` in a flow mapping.
    """
    try:
        from schema_salad.utils import yaml_no_ts
    except ImportError:
        return yaml.load(text, Loader=CwlYamlLoader)  # CwlYamlLoader is a SafeLoader
    # Plain dicts and lists: the document is handed on as data (JSON, YAML for pycalrissian).
    return json.loads(json.dumps(yaml_no_ts().load(text)))


def yaml_errors() -> tuple[type[Exception], ...]:
    try:
        from ruamel.yaml.error import YAMLError, YAMLStreamError
    except ImportError:
        return (yaml.YAMLError,)
    return (yaml.YAMLError, YAMLError, YAMLStreamError)


@dataclass
class Findings:
    """The outcome of a check: errors make a package unusable, warnings do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def short_id(value: object) -> str:
    """``#wf/input`` or ``file.cwl#wf`` -> the last part of a CWL id."""
    return str(value).rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def quoted_list(names: list[str]) -> str:
    """'a', 'b' and 'c'."""
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def counted(noun: str, names: list[str]) -> str:
    """ "input 'a'" or "inputs 'a' and 'b'"."""
    return f"{noun}{'s' if len(names) > 1 else ''} {quoted_list(names)}"


def entries(section: object, key: str = "id") -> list[dict]:
    """A CWL map-or-list section (inputs, steps, requirements...) as a list of mappings."""
    if isinstance(section, dict):
        return [
            {**value, key: name} if isinstance(value, dict) else {key: name, "type": value}
            for name, value in section.items()
        ]
    if isinstance(section, list):
        return [item for item in section if isinstance(item, dict)]
    return []


def is_optional(cwl_type: object) -> bool:
    """Whether a CWL type admits null (``T?``, ``null`` or a union with ``null``)."""
    if isinstance(cwl_type, str):
        return cwl_type == "null" or cwl_type.endswith("?")
    if isinstance(cwl_type, list):
        return any(is_optional(item) for item in cwl_type)
    return False


def type_names(cwl_type: object) -> set[str]:
    """The plain type names a CWL type mentions (``Directory[]`` -> Directory)."""
    if isinstance(cwl_type, str):
        return {cwl_type.rstrip("?").removesuffix("[]")}
    if isinstance(cwl_type, list):
        return set().union(*(type_names(item) for item in cwl_type))
    if isinstance(cwl_type, dict):
        return type_names(cwl_type.get("items", cwl_type.get("type")))
    return set()


def yaml_error_message(name: str, error: Exception) -> str:
    parts = []
    for prefix, mark in (("context", "context_mark"), ("problem", "problem_mark")):
        text, where = getattr(error, prefix, None), getattr(error, mark, None)
        if text:
            at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
            parts.append(f"{text}{at}")
    return (
        f"{name} is not valid YAML: {', '.join(parts) or error}. Fix the syntax and deploy again."
    )


@dataclass
class Resources:
    """Cores, RAM (MiB) and volume (MiB) a package asks for; None where it says nothing."""

    cores: int | None = None
    ram_mib: int | None = None
    volume_mib: int | None = None


@dataclass
class ApplicationPackage:
    """An OGC EO Application Package: a CWL document whose Workflow the service runs."""

    document: dict
    path: Path

    @classmethod
    def load(cls, path: Path) -> ApplicationPackage:
        """Read and parse the package; ApplicationPackageError if it is not a CWL document."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ApplicationPackageError(
                f"The Application Package {path.name} is missing from the service folder: "
                "deploy the process again."
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            raise ApplicationPackageError(
                f"The Application Package {path.name} cannot be read ({error}): "
                "give a UTF-8 CWL document."
            ) from None
        try:
            document = parse_cwl_yaml(text)
        except yaml_errors() as error:
            raise ApplicationPackageError(yaml_error_message(path.name, error)) from None
        if not isinstance(document, dict) or not (
            {"cwlVersion", "class", "$graph"} & set(document)
        ):
            raise ApplicationPackageError(
                f"{path.name} is not a CWL document: it has no cwlVersion, class or $graph. "
                "Give the CWL file of the Application Package."
            )
        return cls(document, path)

    @classmethod
    def check_file(cls, path: Path, workflow_id: str) -> Findings:
        """Load and check a package, every problem reported as a finding."""
        try:
            package = cls.load(path)
        except ApplicationPackageError as error:
            return Findings(errors=[str(error)])
        return package.check(workflow_id)

    # --- structure -----------------------------------------------------------------------------

    @property
    def processes(self) -> list[dict]:
        graph = self.document.get("$graph", [self.document])
        return [item for item in graph if isinstance(item, dict)] if isinstance(graph, list) else []

    @property
    def workflow_ids(self) -> list[str]:
        return [short_id(p.get("id", "")) for p in self.processes if p.get("class") == "Workflow"]

    def workflow(self, workflow_id: str) -> dict:
        """The Workflow with this id; ApplicationPackageError listing the ids it does contain."""
        for process in self.processes:
            if (
                process.get("class") == "Workflow"
                and short_id(process.get("id", "")) == workflow_id
            ):
                return process
        if not self.workflow_ids:
            raise ApplicationPackageError(
                f"{self.path.name} contains no Workflow: an Application Package needs a Workflow "
                "that runs its CommandLineTools (OGC Best Practice req/app-pck/cwl)."
            )
        raise ApplicationPackageError(
            f"{self.path.name} has no Workflow with id {workflow_id!r}; it contains "
            f"{', '.join(repr(i) for i in self.workflow_ids)}: use one of these as workflow_id."
        )

    def mandatory_inputs(self, workflow_id: str) -> list[str]:
        """Workflow inputs that need a value: no default and a type that does not admit null."""
        return [
            short_id(item["id"])
            for item in entries(self.workflow(workflow_id).get("inputs"))
            if "default" not in item and not is_optional(item.get("type"))
        ]

    def resources(self, workflow_id: str, scatter_multiplier: int = 2) -> Resources:
        """What the package asks for (ResourceRequirement in requirements and hints of the
        Workflow, its steps and the processes they run, recursively): the most cores and RAM
        of any one process, and a volume holding every step's tmpdir and outdir, scattered steps
        counted ``scatter_multiplier`` times. Expressions are left to the defaults.
        """
        by_id = {short_id(p.get("id", "")): p for p in self.processes}
        found = Resources()

        def requested(process: dict) -> dict[str, float]:
            values: dict[str, float] = {}
            for requirement in entries(process.get("requirements"), "class") + entries(
                process.get("hints"), "class"
            ):
                if requirement.get("class") == "ResourceRequirement":
                    for key, value in requirement.items():
                        if isinstance(value, int | float) and not isinstance(value, bool):
                            values[key] = max(values.get(key, 0), value)
            return values

        def largest(values: dict[str, float], name: str) -> float:
            return max(values.get(f"{name}Min", 0), values.get(f"{name}Max", 0))

        def visit(process: dict, multiplier: int, seen: frozenset[str]) -> int:
            values = requested(process)
            found.cores = max(found.cores or 0, math.ceil(largest(values, "cores"))) or None
            found.ram_mib = max(found.ram_mib or 0, math.ceil(largest(values, "ram"))) or None
            volume = (largest(values, "tmpdir") + largest(values, "outdir")) * multiplier
            for step in entries(process.get("steps")):
                run = step.get("run")
                target = run if isinstance(run, dict) else by_id.get(str(run).lstrip("#"))
                key = str(run)
                if isinstance(target, dict) and key not in seen:
                    factor = scatter_multiplier if step.get("scatter") else 1
                    volume += visit(target, multiplier * factor, seen | {key})
            return math.ceil(volume)

        found.volume_mib = visit(self.workflow(workflow_id), 1, frozenset()) or None
        return found

    def command_line_tools(self) -> list[dict]:
        """Every CommandLineTool, in the $graph or inline in a step's ``run``."""
        found = []

        def visit(process: dict) -> None:
            if process.get("class") == "CommandLineTool":
                found.append(process)
            for step in entries(process.get("steps")):
                if isinstance(step.get("run"), dict):
                    visit(step["run"])

        for process in self.processes:
            visit(process)
        return found

    # --- check ---------------------------------------------------------------------------------

    def check(self, workflow_id: str) -> Findings:
        """Errors and warnings for running ``workflow_id`` from this package.

        Structure first (version, Workflow, step targets), then CWL schema validation by
        cwltool, then the OGC Best Practice rules.
        """
        findings = Findings()
        try:
            self.workflow(workflow_id)
        except ApplicationPackageError as error:
            findings.errors.append(str(error))
            return findings
        findings.errors += self._version_problems() + self._run_target_problems()
        if findings.errors:
            return findings
        schema = validate_with_cwltool(self, workflow_id)
        findings.errors += schema.errors
        findings.warnings += schema.warnings
        best_practice = self._best_practice(workflow_id)
        findings.errors += best_practice.errors
        findings.warnings += best_practice.warnings
        return findings

    def _version_problems(self) -> list[str]:
        version = self.document.get("cwlVersion")
        if version is None:
            return [f"{self.path.name} has no cwlVersion: add 'cwlVersion: {ADES_CWL_VERSION}'."]
        if not isinstance(version, str):
            return [
                f"{self.path.name} has cwlVersion {version!r}, a number: write it as a string "
                f"such as {ADES_CWL_VERSION}."
            ]
        if version not in SUPPORTED_CWL_VERSIONS:
            return [
                f"{self.path.name} has cwlVersion {version!r}, which is not supported: use "
                f"{', '.join(SUPPORTED_CWL_VERSIONS)}."
            ]
        return []

    def _run_target_problems(self) -> list[str]:
        ids = [short_id(p.get("id", "")) for p in self.processes]
        problems = []
        for process in self.processes:
            for step in entries(process.get("steps")):
                run = step.get("run")
                if not isinstance(run, str) or re.match(r"(?i)https?://", run):
                    continue
                where = f"step {short_id(step.get('id'))!r} of {short_id(process.get('id'))!r}"
                if not run.startswith("#"):
                    problems.append(
                        f"{where} runs the separate file {run!r}, but the ADES stores only this "
                        "document: put that process in the $graph and run it as '#id'."
                    )
                elif run[1:] not in ids:
                    problems.append(
                        f"{where} runs {run!r}, which is not in the $graph (it holds "
                        f"{', '.join(repr(i) for i in ids)}): fix the step's run."
                    )
        return problems

    def _best_practice(self, workflow_id: str) -> Findings:
        """The OGC Best Practice for EO Application Packages (20-089), as far as it is static."""
        findings = Findings()
        workflow = self.workflow(workflow_id)
        tools = self.command_line_tools()
        if not tools:
            findings.errors.append(
                f"{self.path.name} has no CommandLineTool: an Application Package runs at least "
                "one containerised command-line tool (OGC Best Practice req/app-pck/cwl)."
            )
        docker_in_hints_only = []
        for tool in tools:
            name = short_id(tool.get("id", "(inline tool)"))
            in_requirements = any(
                r.get("class") == "DockerRequirement"
                for r in entries(tool.get("requirements"), "class")
            )
            in_hints = any(
                r.get("class") == "DockerRequirement" for r in entries(tool.get("hints"), "class")
            )
            if not (in_requirements or in_hints):
                findings.errors.append(
                    f"CommandLineTool {name!r} has no DockerRequirement: give it the container "
                    "image it runs in (OGC Best Practice req/app-pck/clt)."
                )
            elif not in_requirements:
                docker_in_hints_only.append(name)
            if not tool.get("baseCommand"):
                findings.warnings.append(
                    f"CommandLineTool {name!r} has no baseCommand: the image's ENTRYPOINT runs."
                )
        if docker_in_hints_only:
            findings.warnings.append(
                f"{counted('CommandLineTool', docker_in_hints_only)} declare"
                f"{'s' if len(docker_in_hints_only) == 1 else ''} DockerRequirement under "
                "hints; the OGC Best Practice asks for it under requirements."
            )
        missing = [key for key in ("label", "doc") if not workflow.get(key)]
        if missing:
            findings.warnings.append(
                f"Workflow {workflow_id!r} has no {' or '.join(missing)}: the ADES uses them as "
                "the process title and description (OGC Best Practice req/app-pck/wf)."
            )
        inputs = entries(workflow.get("inputs"))
        undocumented = [short_id(i["id"]) for i in inputs if not (i.get("label") and i.get("doc"))]
        if undocumented:
            findings.warnings.append(
                f"{counted('Workflow input', undocumented)} without a label or doc: the process "
                "description shows them (OGC Best Practice req/app-pck/wf-inputs)."
            )
        file_inputs = [short_id(i["id"]) for i in inputs if "File" in type_names(i.get("type"))]
        if file_inputs:
            findings.warnings.append(
                f"{counted('Workflow input', file_inputs)} of type File: EO data is usually "
                "staged in as a Directory holding a STAC catalog."
            )
        outputs = entries(workflow.get("outputs"))
        if not any("Directory" in type_names(o.get("type")) for o in outputs):
            findings.warnings.append(
                f"Workflow {workflow_id!r} has no Directory output: the OGC Best Practice "
                "expects results as a STAC catalog in a Directory."
            )
        if not self._software_version():
            findings.warnings.append(
                f"{self.path.name} has no s:softwareVersion (schema.org): the ADES reports the "
                "process version as 'unknown' (OGC Best Practice req/app-pck/metadata)."
            )
        return findings

    def _software_version(self) -> object:
        namespaces = self.document.get("$namespaces") or {}
        prefixes = [p for p, uri in namespaces.items() if uri in SCHEMA_ORG]
        keys = [f"{p}:{name}" for p in prefixes for name in ("softwareVersion", "version")]
        keys += [f"{uri}{name}" for uri in SCHEMA_ORG for name in ("softwareVersion", "version")]
        return next((self.document[k] for k in keys if self.document.get(k)), None)


def upgraded(document: dict) -> dict:
    """The document at CWL v1.2, as the ADES stores packages (cwl-upgrader, in memory)."""
    if document.get("cwlVersion") == ADES_CWL_VERSION:
        return copy.deepcopy(document)
    from cwlupgrader.main import upgrade_document

    with tempfile.TemporaryDirectory(prefix="cwl-upgrade-") as folder:
        result = upgrade_document(copy.deepcopy(document), folder, ADES_CWL_VERSION)
    if result is None:
        raise ApplicationPackageError(
            f"cwlVersion {document.get('cwlVersion')!r} cannot be upgraded to {ADES_CWL_VERSION}."
        )
    return json.loads(json.dumps(result, default=str))


def validate_with_cwltool(package: ApplicationPackage, workflow_id: str) -> Findings:
    """CWL schema validation with cwltool's loader, remembered for this exact package.

    A package found valid leaves a stamp beside it (its hash and the warnings), so executions
    of an unchanged package skip this second of loading (when the folder is writable).
    """
    try:
        import cwltool  # noqa: F401

        cwltool_version = importlib.metadata.version("cwltool")
    except (ImportError, importlib.metadata.PackageNotFoundError):
        return Findings(
            warnings=[
                "cwltool is not installed here, so the CWL schema was not validated; the "
                "service validates it before every execution."
            ]
        )
    stamp = package.path.with_name(f".{package.path.name}.valid")
    content = package.path.read_bytes() + f"\n{workflow_id}\n{cwltool_version}".encode()
    fingerprint = hashlib.sha256(content).hexdigest()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        remembered = json.loads(stamp.read_text())
        if remembered["sha256"] == fingerprint:
            return Findings(warnings=list(remembered["warnings"]))
    findings = _validated_with_cwltool(package, workflow_id)
    if findings.ok:
        with contextlib.suppress(OSError):
            partial = stamp.with_name(f"{stamp.name}.{uuid.uuid4().hex}")
            partial.write_text(json.dumps({"sha256": fingerprint, "warnings": findings.warnings}))
            partial.replace(stamp)  # atomic: concurrent executions never read half a stamp
    return findings


def _validated_with_cwltool(package: ApplicationPackage, workflow_id: str) -> Findings:
    """The package validated as written first, so that messages carry its own line numbers;
    one valid only once upgraded to v1.2 (as the ADES stores it) gets a warning."""
    problems, notes = _cwltool_problems(package.path, workflow_id)
    name = package.path.name
    if not problems:
        return Findings(warnings=[f"{name}: {note}" for note in notes])
    if package.document.get("cwlVersion") != ADES_CWL_VERSION:
        with tempfile.TemporaryDirectory(prefix="app-package-") as folder:
            upgraded = _upgraded_copy(package.path, Path(folder))
            if upgraded and not _cwltool_problems(upgraded, workflow_id)[0]:
                return Findings(
                    warnings=[
                        f"{name} is not valid CWL "
                        f"{package.document.get('cwlVersion')} as written ({problems[0]}); it is "
                        f"valid once upgraded to {ADES_CWL_VERSION}, as the ADES stores it."
                    ]
                )
    shown = problems[:MAX_REPORTED_SCHEMA_PROBLEMS]
    if len(problems) > len(shown):
        shown[-1] += f" (and {len(problems) - len(shown)} more CWL problems)"
    return Findings(errors=[f"{name}: {problem}" for problem in shown])


def _upgraded_copy(path: Path, folder: Path) -> Path | None:
    """The package upgraded to v1.2 (as the ADES does) in ``folder``, or None if it cannot be."""
    try:
        document = upgraded(parse_cwl_yaml(path.read_text(encoding="utf-8-sig")))
    except Exception:  # any upgrader failure means "cannot be upgraded"
        return None
    target = folder / path.name
    target.write_text(json.dumps(document), encoding="utf-8")
    return target


class _RecordHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.exc_info:  # those are the loader's internal retries, not findings
            self.messages.append(record.getMessage())


def _cwltool_problems(path: Path, workflow_id: str) -> tuple[list[str], list[str]]:
    """cwltool's validation problems and warnings, each condensed to one readable line."""
    from cwltool.context import LoadingContext
    from cwltool.load_tool import fetch_document, make_tool, resolve_and_validate_document
    from cwltool.workflow import default_make_tool

    recorder = _RecordHandler()
    loggers = [logging.getLogger(name) for name in ("cwltool", "salad")]
    saved = [(log.handlers, log.propagate, log.level) for log in loggers]
    for log in loggers:  # cwltool gives its loggers stderr handlers: keep them quiet here
        log.handlers, log.propagate = [recorder], False
        log.setLevel(logging.WARNING)
    try:
        context = LoadingContext({"construct_tool_object": default_make_tool})
        context, document, uri = fetch_document(f"{path.resolve().as_uri()}#{workflow_id}", context)
        context, uri = resolve_and_validate_document(context, document, uri)
        make_tool(uri, context)
        problems = []
    except Exception as error:  # cwltool raises many types for invalid input
        problems = condense_cwltool_message(str(error), path)
    finally:
        for log, (handlers, propagate, level) in zip(loggers, saved, strict=True):
            log.handlers, log.propagate, log.level = handlers, propagate, level
    notes = []
    for message in recorder.messages:
        for note in condense_cwltool_message(message, path):
            if note not in notes:
                notes.append(note)
    return problems, notes


_LOCATED_LINE = re.compile(
    r"^(?P<file>[^\s:]+):(?P<line>\d+):(?P<column>\d+):(?P<indent>\s*)(?P<text>.*)$"
)
_CRUMB = re.compile(r"^checking\b|\b(because|but)$")


def condense_cwltool_message(message: str, path: Path) -> list[str]:
    """cwltool's nested, terminal-wrapped messages -> one line per problem, with its location.

    Located lines form chains that go deeper ("checking field 'inputs'", "... is not valid
    because"); a chain ends where the next line is not deeper, and its problem is the text left
    once those breadcrumbs are dropped.
    """
    fetch_failure = re.search(r"Error fetching (\S+?):\s", message)
    if fetch_failure:
        return [
            f"it refers to {fetch_failure[1]}, which could not be fetched: give the ADES "
            "network access to it, or put its content in the package."
        ]
    folder = path.resolve().parent
    for prefix in (folder.as_uri() + "/", str(folder) + "/"):
        message = message.replace(prefix, "")
    located: list[dict] = []
    unlocated: list[str] = []
    for raw in message.splitlines():
        match = _LOCATED_LINE.match(raw)
        if match:
            located.append({**match.groupdict(), "depth": len(match["indent"])})
        elif located:
            located[-1]["text"] += " " + raw.strip()
        elif raw.strip():
            unlocated.append(raw.strip())
    problems, chain = [], []
    for index, entry in enumerate(located):
        chain.append(entry)
        following = located[index + 1] if index + 1 < len(located) else None
        if following and following["depth"] > entry["depth"]:
            continue
        segments = []
        for link in chain:
            text = " ".join(link["text"].split())
            text = re.split(r" checking (?:object|field|item)\b", text)[0]
            text = re.sub(r"^checking (?:object|field|item)(?: '[^']*')? ?", "", text)
            text = re.sub(r",? tried \S+(?: \S+#\S+)*", "", text).strip()
            if text and not _CRUMB.search(text):
                segments.append((link, text))
        if segments:
            first = segments[0][0]
            where = f"line {first['line']}, column {first['column']}: "
            problems.append(where + " ".join(dict.fromkeys(text for _, text in segments)))
        chain = []
    if not problems and unlocated:
        # e.g. "Tool definition ... failed validation:" followed by the actual problem
        statements = [line for line in unlocated if not line.endswith(":")] or unlocated
        problems.append(statements[0])
    return list(dict.fromkeys(_file_names_only(problem) for problem in problems))


def _file_names_only(text: str) -> str:
    """Paths and URIs of CWL files shortened to their file names."""
    return re.sub(r"\S*?([^\s/']+\.cwl)", r"\1", text)


# ---------------------------------------------------------------------------------------------
# ZOO <-> CWL: the kernel's inputs as CWL parameters, CWL results as ZOO outputs.
# ---------------------------------------------------------------------------------------------


class InputError(ValueError):
    """An execute request value that does not fit its Workflow input."""


def zoo_input_is_given(entry: object) -> bool:
    """Whether the execute request gave this input (the kernel also lists absent ones)."""
    if not isinstance(entry, dict) or entry.get("inRequest") == "false":
        return False
    if entry.get("xlink:href"):
        return True
    return entry.get("value") not in (None, "", "NULL")


def missing_inputs(package: ApplicationPackage, workflow_id: str, inputs: dict) -> list[str]:
    return [
        name
        for name in package.mandatory_inputs(workflow_id)
        if not zoo_input_is_given(inputs.get(name))
    ]


def non_null(cwl_type: object) -> object:
    """``T?`` / ``['null', T]`` -> T (the first non-null member of a union)."""
    if isinstance(cwl_type, str):
        return cwl_type.removesuffix("?")
    if isinstance(cwl_type, list):
        members = [member for member in cwl_type if member != "null"]
        return non_null(members[0]) if members else "null"
    return cwl_type


def array_items(cwl_type: object) -> object | None:
    """The item type of an array type, or None when ``cwl_type`` is not an array."""
    cwl_type = non_null(cwl_type)
    if isinstance(cwl_type, str) and cwl_type.endswith("[]"):
        return cwl_type[:-2]
    if isinstance(cwl_type, dict) and cwl_type.get("type") == "array":
        return cwl_type.get("items")
    return None


def bbox_numbers(name: str, entry: dict, text: str) -> list[float]:
    """A bounding box from the kernel: JSON array text, comma-separated text, or its corners."""
    try:
        values = json.loads(text)
    except (TypeError, ValueError):
        values = None
    if not isinstance(values, list):
        corners = " ".join([entry.get("lowerCorner", ""), entry.get("upperCorner", "")]).strip()
        values = (corners or text).replace(",", " ").split()
    try:
        return [float(value) for value in values]
    except (TypeError, ValueError):
        raise InputError(f"Input {name!r} must be a bounding box of numbers.") from None


def cwl_scalar(name: str, cwl_type: object, text: str, entry: dict) -> object:
    """One ZOO string as a value of one CWL type."""
    cwl_type = non_null(cwl_type)
    if cwl_type == "boolean":
        if text.lower() not in ("true", "false"):
            raise InputError(f"Input {name!r} must be true or false, not {text!r}.")
        return text.lower() == "true"
    if cwl_type in ("int", "long", "float", "double"):
        try:
            return int(text) if cwl_type in ("int", "long") else float(text)
        except ValueError:
            kind = "an integer" if cwl_type in ("int", "long") else "a number"
            raise InputError(f"Input {name!r} must be {kind}, not {text!r}.") from None
    if isinstance(cwl_type, str) and cwl_type.endswith("BBox"):
        crs = entry.get("crs", "").removeprefix("http://www.opengis.net/def/crs/OGC/1.3/")
        return {"bbox": bbox_numbers(name, entry, text), "crs": crs or "CRS84"}
    if isinstance(cwl_type, str) and "#" in cwl_type:  # a record such as the eoap URI type
        return {"value": text}
    if isinstance(cwl_type, dict) and cwl_type.get("type") == "record":
        try:
            return json.loads(text)
        except ValueError:
            raise InputError(f"Input {name!r} must be a JSON object.") from None
    if "lowerCorner" in entry and cwl_type == "string":
        return ",".join(f"{number:g}" for number in bbox_numbers(name, entry, text))
    return text


def cwl_value(name: str, cwl_type: object, entry: dict) -> object:
    """A given ZOO input as the CWL value of its Workflow input.

    A reference (``xlink:href``) gives its URL, never the content the kernel downloaded: CWL
    Directory, File and URL inputs want the location.
    """
    raw = entry.get("xlink:href") or entry.get("value")
    items = array_items(cwl_type)
    if items is None:
        if isinstance(raw, list):
            if len(raw) != 1:
                raise InputError(f"Input {name!r} takes one value, not {len(raw)}.")
            raw = raw[0]
        return cwl_scalar(name, cwl_type, str(raw), entry)
    values = raw if isinstance(raw, list) else [raw]
    return [cwl_scalar(name, items, str(value), entry) for value in values if value is not None]


def cwl_parameters(workflow: dict, inputs: dict) -> dict:
    """The CWL job order of a Workflow, from the kernel's ``inputs`` dict."""
    return {
        short_id(item["id"]): cwl_value(short_id(item["id"]), item.get("type"), inputs[name])
        for item in entries(workflow.get("inputs"))
        if zoo_input_is_given(inputs.get(name := short_id(item["id"])))
    }


def zoo_output_value(value: object) -> str:
    """A CWL output as the string the kernel needs (a location for files, JSON otherwise)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("class") in ("File", "Directory"):
        return value.get("location", "")
    return json.dumps(value)


def set_zoo_outputs(outputs: dict, cwl_output: dict) -> None:
    for name, value in cwl_output.items():
        outputs.setdefault(name, {})["value"] = zoo_output_value(value)


# ---------------------------------------------------------------------------------------------
# Stage-in / stage-out: wrap the Application Package into a Workflow "main" that stages its
# Directory and File inputs in from URLs and its Directory and File outputs out.
# ---------------------------------------------------------------------------------------------

ASSETS_DIR = SERVICE_DIR / "assets"
STAGE_PROCESSES = {
    # role: (environment variable, the chart's default, the service's own default)
    "stage-in": ("WRAPPER_STAGE_IN", "/assets/stagein.yaml", "stagein.yaml"),
    "stage-in-file": ("WRAPPER_STAGE_IN_FILE", "/assets/stagein-file.yaml", "stagein-file.yaml"),
    "stage-out": ("WRAPPER_STAGE_OUT", "/assets/stageout.yaml", "stageout.yaml"),
    "stage-out-file": (
        "WRAPPER_STAGE_OUT_FILE",
        "/assets/stageout-file.yaml",
        "stageout-file.yaml",
    ),
}


class WrapError(Exception):
    """A stage process or package that cannot be wrapped; the message says why."""


def stage_process_files(engine: str) -> dict[str, Path | None]:
    """The stage process file of each role: the configured one, else the service's default.

    With no stage-out configured, the Calrissian engine stages nothing out: the runner copies the
    results from the job's volume instead.
    """
    files = {}
    for role, (variable, _, default) in STAGE_PROCESSES.items():
        configured = os.environ.get(variable)
        if configured and Path(configured).is_file():
            files[role] = Path(configured)
        elif role.startswith("stage-out") and engine == "calrissian":
            files[role] = None
        else:
            files[role] = ASSETS_DIR / default
    return files


def load_stage_process(role: str, path: Path) -> dict:
    try:
        document = parse_cwl_yaml(path.read_text(encoding="utf-8"))
    except (OSError, *yaml_errors()) as error:
        raise WrapError(f"The {role} process {path} cannot be read: {error}") from None
    if not isinstance(document, dict) or document.get("class") != "CommandLineTool":
        raise WrapError(f"The {role} process {path} is not a CWL CommandLineTool.")
    return upgraded(document)


def is_url_type(cwl_type: object) -> bool:
    cwl_type = non_null(cwl_type)
    return cwl_type == "string" or (isinstance(cwl_type, str) and cwl_type.endswith("#URI"))


@dataclass
class StageProcess:
    """A stage-in (URL -> Directory/File) or stage-out (Directory/File -> URL) process."""

    role: str
    process: dict
    source: str  # the input it consumes
    result: str  # the output it produces
    result_type: object
    extra_inputs: list[dict]

    @property
    def url_record(self) -> bool:
        """Whether its URL input is the eoap URI record ({value: ...}) rather than a string."""
        types = {short_id(i["id"]): i.get("type") for i in entries(self.process.get("inputs"))}
        return str(non_null(types[self.source])).endswith("#URI")

    @classmethod
    def from_process(cls, role: str, process: dict) -> StageProcess:
        kind = "File" if role.endswith("-file") else "Directory"
        inputs = entries(process.get("inputs"))
        outputs = entries(process.get("outputs"))
        if role.startswith("stage-in"):
            urls = [i for i in inputs if is_url_type(i.get("type"))]
            named = [i for i in urls if str(non_null(i.get("type"))).endswith("#URI")]
            named = named or [i for i in urls if short_id(i["id"]) == "reference"]
            sources = named or (urls if len(inputs) == 1 else [])
            results = [o for o in outputs if non_null(o.get("type")) == kind]
            contract = f"one URL input (string or URI) and one {kind} output"
        else:
            sources = [i for i in inputs if non_null(i.get("type")) == kind]
            results = [o for o in outputs if is_url_type(o.get("type"))]
            contract = f"one {kind} input and one URL output (string or URI)"
        if len(sources) != 1 or len(results) != 1:
            raise WrapError(f"The {role} process must have {contract}.")
        source = short_id(sources[0]["id"])
        return cls(
            role=role,
            process=process,
            source=source,
            result=short_id(results[0]["id"]),
            result_type=non_null(results[0].get("type")),
            extra_inputs=[i for i in inputs if short_id(i["id"]) != source],
        )


def shaped_like(cwl_type: object, item_type: object) -> object:
    """``item_type`` with the optional / array shape of ``cwl_type``."""
    shaped = {"type": "array", "items": item_type} if array_items(cwl_type) else item_type
    return ["null", shaped] if is_optional(cwl_type) else shaped


def staging_kind(cwl_type: object) -> str | None:
    """'Directory' or 'File' when a Workflow input or output of this type is staged."""
    items = array_items(cwl_type)
    base = non_null(items if items is not None else cwl_type)
    return base if base in ("Directory", "File") else None


def stage_step(step_id: str, stage: StageProcess, source: str, cwl_type: object) -> dict:
    """A step running ``stage`` on ``source``: scattered for arrays, skipped when null."""
    step = {
        "id": step_id,
        "run": f"#{stage.process['id']}",
        "in": [{"id": stage.source, "source": source}]
        + [{"id": short_id(i["id"]), "source": short_id(i["id"])} for i in stage.extra_inputs],
        "out": [stage.result],
    }
    if stage.role.startswith("stage-in") and stage.url_record:
        step["in"][0]["valueFrom"] = "$({'value': self})"
    if array_items(cwl_type):
        step["scatter"] = stage.source
        step["scatterMethod"] = "dotproduct"
    if is_optional(cwl_type):
        step["when"] = f"$(inputs.{stage.source} !== null)"
        step["in"][0].setdefault("valueFrom", "$(self)")  # null never reaches the tool
    return step


def unique_id(wanted: str, taken: set[str]) -> str:
    candidate, number = wanted, 1
    while candidate in taken:
        number += 1
        candidate = f"{wanted}-{number}"
    taken.add(candidate)
    return candidate


# Input names that carry credentials: cwltool and Calrissian show them only as placeholders.
SECRET_NAME = re.compile(r"(?i)secret|password|passwd|token|credential|access_?key|api_?key|auth")
CWLTOOL_NAMESPACE = "http://commonwl.org/cwltool#"


def _default(item: dict) -> dict:
    return {"default": item["default"]} if "default" in item else {}


def wrap(document: dict, workflow_id: str, stage_files: dict[str, Path | None]) -> dict:
    """The package as a $graph whose Workflow ``main`` stages data in and out around it.

    Follows the contract of eoap-cwlwrap, so the ADES's stage assets work unchanged: stage-in
    processes take one URL and give one Directory (or File); stage-out processes take one
    Directory (or File) and give one URL; their other inputs become inputs of ``main``.
    No network access: nothing is fetched while wrapping.
    """
    document = upgraded(document)
    graph = copy.deepcopy(document.get("$graph", [document]))
    for process in graph:
        process.pop("cwlVersion", None)
        process["id"] = short_id(process.get("id", workflow_id))
    taken = {process["id"] for process in graph}
    if "main" in taken:  # the orchestrator is "main": rename the package's own process
        renamed = unique_id("main-app", taken)
        for process in graph:
            if process["id"] == "main":
                process["id"] = renamed
            for step in entries(process.get("steps")):
                if step.get("run") == "#main":
                    step["run"] = f"#{renamed}"
            if isinstance(process.get("steps"), dict):
                process["steps"] = entries(process["steps"])
        workflow_id = renamed if workflow_id == "main" else workflow_id
    workflow = next(p for p in graph if p["id"] == workflow_id and p.get("class") == "Workflow")

    stages: dict[str, StageProcess] = {}
    for role, path in stage_files.items():
        if path is not None:
            process = load_stage_process(role, path)
            process.pop("cwlVersion", None)
            process["id"] = unique_id(role, taken)
            stages[role] = StageProcess.from_process(role, process)

    main_inputs, main_outputs, steps, app_in = [], [], [], []
    for item in entries(workflow.get("inputs")):
        name, cwl_type = short_id(item["id"]), item.get("type")
        kind = staging_kind(cwl_type)
        declared = {k: item[k] for k in ("label", "doc") if k in item}
        if kind is None:
            main_inputs.append({**declared, "id": name, "type": cwl_type, **_default(item)})
            app_in.append({"id": name, "source": name})
            continue
        stage = stages.get("stage-in" if kind == "Directory" else "stage-in-file")
        if stage is None:
            raise WrapError(f"Input {name!r} is a {kind} but no {kind} stage-in is configured.")
        main_inputs.append({**declared, "id": name, "type": shaped_like(cwl_type, "string")})
        steps.append(stage_step(f"stage_in_{name}", stage, name, cwl_type))
        app_in.append({"id": name, "source": f"stage_in_{name}/{stage.result}"})

    app_outputs = [short_id(o["id"]) for o in entries(workflow.get("outputs"))]
    steps.append({"id": "app", "run": f"#{workflow_id}", "in": app_in, "out": app_outputs})
    for item in entries(workflow.get("outputs")):
        name, cwl_type = short_id(item["id"]), item.get("type")
        kind = staging_kind(cwl_type)
        stage = stages.get("stage-out" if kind == "Directory" else "stage-out-file")
        declared = {k: item[k] for k in ("label", "doc") if k in item}
        if kind is None or stage is None:
            main_outputs.append(
                {**declared, "id": name, "type": cwl_type, "outputSource": f"app/{name}"}
            )
            continue
        steps.append(stage_step(f"stage_out_{name}", stage, f"app/{name}", cwl_type))
        main_outputs.append(
            {
                **declared,
                "id": name,
                "type": shaped_like(cwl_type, stage.result_type),
                "outputSource": f"stage_out_{name}/{stage.result}",
            }
        )

    used = [
        stage
        for stage in stages.values()
        if any(s["run"] == f"#{stage.process['id']}" for s in steps)
    ]
    exposed = {}
    for stage in used:
        for extra in stage.extra_inputs:
            exposed.setdefault(short_id(extra["id"]), extra)
    main_inputs += [
        {"id": name, "type": extra.get("type"), **_default(extra)}
        for name, extra in exposed.items()
        if name not in {i["id"] for i in main_inputs}
    ]
    requirements = [{"class": "SubworkflowFeatureRequirement"}]
    if any("scatter" in step for step in steps):
        requirements.append({"class": "ScatterFeatureRequirement"})
    if any("when" in step or any("valueFrom" in i for i in step["in"]) for step in steps):
        requirements += [
            {"class": "InlineJavascriptRequirement"},
            {"class": "StepInputExpressionRequirement"},
        ]
    main = {
        "class": "Workflow",
        "id": "main",
        "label": workflow.get("label", workflow_id),
        "doc": workflow.get("doc", f"Runs {workflow_id} with its data staged in and out."),
        "requirements": requirements,
        "inputs": main_inputs,
        "outputs": main_outputs,
        "steps": steps,
    }
    namespaces = dict(document.get("$namespaces") or {})
    secrets = [i["id"] for i in main_inputs if SECRET_NAME.search(i["id"])]
    if secrets:
        main["hints"] = [{"class": "cwltool:Secrets", "secrets": secrets}]
        namespaces["cwltool"] = CWLTOOL_NAMESPACE
    for stage in used:
        namespaces.update(stage.process.pop("$namespaces", None) or {})
    metadata = {k: v for k, v in document.items() if ":" in k and not k.startswith("$")}
    return {
        "cwlVersion": ADES_CWL_VERSION,
        **({"$namespaces": namespaces} if namespaces else {}),
        **metadata,
        "$graph": [main, *graph, *(stage.process for stage in used)],
    }


# ---------------------------------------------------------------------------------------------
# Execution engines: run a wrapped workflow with its parameters, collect what it produced.
# ---------------------------------------------------------------------------------------------

ENGINES = ("calrissian", "cwltool")
TOOL_STREAMS = {"stdout": "tool-stdout.log", "stderr": "tool-stderr.log"}


class EngineUnavailable(Exception):
    """The chosen engine cannot run here; the message says what to do."""


@dataclass
class EngineRun:
    """What an engine run produced: the same shape whatever the engine."""

    succeeded: bool
    output: dict
    log: str
    usage_report: dict
    tool_logs: list[Path]
    failure: str = ""

    def redacted(self, secrets: list[str]) -> EngineRun:
        """The run with ``secrets`` blanked out of its log, failure and tool logs (in place)."""
        for path in self.tool_logs:
            text = path.read_text(errors="replace")
            if any(secret in text for secret in secrets):
                path.write_text(redacted(text, secrets))
        return dataclasses.replace(
            self, log=redacted(self.log, secrets), failure=redacted(self.failure, secrets)
        )

    def results(self) -> dict:
        """What the handler's hooks receive."""
        return {
            "execution_log": self.log,
            "output": self.output,
            "usage_report": self.usage_report,
            "tool_logs": [str(path) for path in self.tool_logs],
        }


@dataclass
class JobRecord:
    name: str
    start_time: datetime | None = None
    finish_time: datetime | None = None
    status: str = ""
    exit_code: int | None = None
    max_memory_megabytes: int | None = None

    def report(self) -> dict:
        elapsed = (
            (self.finish_time - self.start_time).total_seconds()
            if self.start_time and self.finish_time
            else None
        )
        entry = {
            "name": self.name,
            "start_time": self.start_time.isoformat() if self.start_time else None,
            "finish_time": self.finish_time.isoformat() if self.finish_time else None,
            "elapsed_seconds": elapsed,
            "elapsed_hours": elapsed / 3600 if elapsed is not None else None,
            "exit_code": self.exit_code
            if self.exit_code is not None
            else (0 if self.status == "success" else None),
            "max_memory_megabytes": self.max_memory_megabytes,
        }
        return {key: value for key, value in entry.items() if value is not None}


class CwltoolLog(logging.Handler):
    """cwltool's log records of one run: the job log text, per-job times, the failed step."""

    _JOB = re.compile(r"^\[job (?P<name>[^\]]+)\] (?P<event>.*)$", re.S)
    _STEP_FAILED = re.compile(r"^\[step (?P<name>[^\]]+)\] completed (?!success)")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.jobs: dict[str, JobRecord] = {}
        self.failed_steps: list[str] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        when = datetime.fromtimestamp(record.created, tz=timezone.utc)
        self.observe(record.getMessage(), when, error=record.levelno >= logging.ERROR)

    def observe(self, message: str, when: datetime | None = None, error: bool = False) -> None:
        """Take note of one message (a log record, or a line of Calrissian's log)."""
        if error:
            self.errors.append(message)
        step = self._STEP_FAILED.match(message)
        if step:
            self.failed_steps.append(step["name"])
        match = self._JOB.match(message)
        if not match:
            return
        job = self.jobs.setdefault(match["name"], JobRecord(match["name"]))
        event = match["event"]
        if "$ " in event and job.start_time is None:
            job.start_time = when
        elif event.startswith("completed "):
            job.finish_time, job.status = when, event.removeprefix("completed ")
        elif event.startswith("exited with status: "):
            job.exit_code = int(event.rsplit(" ", 1)[-1])
        elif event.startswith("Max memory used: "):
            job.max_memory_megabytes = int(re.sub(r"\D", "", event))

    @classmethod
    def from_text(cls, text: str) -> CwltoolLog:
        """The same notes from a log as text (Calrissian's, which is cwltool's)."""
        log = cls()
        for line in text.splitlines():
            message = re.sub(r"^(\[[^\]]*\d{2}:\d{2}:\d{2}[^\]]*\]\s*)?(?:[A-Z]+\s+)?", "", line)
            log.observe(message, error=" ERROR " in f" {line} ")
        return log

    def failure(self, code: int, tool_logs: Path, engine: str) -> str:
        """The sentence that says what failed: the step and its last log line, if a step did."""
        failed = [job for job in self.jobs.values() if job.status and job.status != "success"]
        if failed:
            job = failed[0]
            step = self.failed_steps[0] if self.failed_steps else job.name
            exit_code = f" with exit code {job.exit_code}" if job.exit_code is not None else ""
            log = tool_logs / f"{job.name}.log"
            detail = last_line(log) if log.is_file() else ""
            return f"Step {step!r} failed{exit_code}" + (f": {detail}" if detail else ".")
        if self.errors:
            text = re.sub(
                r"^.*try again with --debug for more information:\s*", "", self.errors[-1]
            )
            detail = _file_names_only(" ".join(text.split()))[:300] or "no detail"
            return f"{engine} stopped (exit code {code}): {detail}"
        return f"{engine} stopped with exit code {code}."

    def usage_report(self, start: datetime, end: datetime) -> dict:
        children = [job.report() for job in self.jobs.values() if job.start_time]
        return {
            "start_time": start.isoformat(),
            "end_time": end.isoformat(),
            "elapsed_seconds": (end - start).total_seconds(),
            "total_tasks": len(children),
            "children": children,
        }


def prepared_for_cwltool(workflow: dict, use_container: bool) -> dict:
    """The workflow as this engine runs it: each CommandLineTool logs its stdout and stderr to
    files (one log per job) and, without containers, declares its image as a hint only, which
    cwltool requires to run a tool outside a container.
    """
    workflow = copy.deepcopy(workflow)
    for process in workflow["$graph"]:
        if process.get("class") != "CommandLineTool":
            continue
        for stream, name in TOOL_STREAMS.items():
            process.setdefault(stream, name)
        requirements = entries(process.get("requirements"), "class")
        docker = [r for r in requirements if r.get("class") == "DockerRequirement"]
        if docker and not use_container:
            process["requirements"] = [r for r in requirements if r not in docker]
            process["hints"] = entries(process.get("hints"), "class") + docker
    return workflow


def keep_tool_logs_out_of_outputs(outdir, base_path_logs, stdout_path, stderr_path) -> None:
    """cwltool copies logged streams into the tool's outputs; ours stay in the log folder only."""
    for path in (stdout_path, stderr_path):
        if path and Path(path).name not in TOOL_STREAMS.values() and outdir != base_path_logs:
            shutil.copy2(path, path.replace(base_path_logs, outdir))


def last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class CwltoolEngine:
    """Runs the workflow in this process with cwltool, the engine Calrissian itself extends.

    No containers unless CWLTOOL_USE_CONTAINERS=true (and Docker is there): DockerRequirement is
    then ignored and tools run on this machine.
    """

    name = "cwltool"

    def __init__(self, job: EngineJob) -> None:
        self.job_dir = job.job_dir

    def run(self, workflow: dict, params: dict) -> EngineRun:
        import cwltool.main
        import cwltool.process
        from cwltool.argparser import arg_parser
        from cwltool.context import RuntimeContext

        work = self.job_dir / "cwltool"
        for folder in ("outputs", "logs", "tmp"):
            (work / folder).mkdir(parents=True, exist_ok=True)
        use_container = (
            os.environ.get("CWLTOOL_USE_CONTAINERS", "").lower() == "true"
            and shutil.which("docker") is not None
        )
        prepared = prepared_for_cwltool(workflow, use_container)
        (work / "workflow.cwl").write_text(json.dumps(prepared, indent=2))
        (work / "params.json").write_text(json.dumps(params, indent=2))
        arguments = [
            "--outdir",
            str(work / "outputs"),
            "--tmpdir-prefix",
            f"{work / 'tmp'}/",
            "--tmp-outdir-prefix",
            f"{work / 'tmp'}/",
            "--log-dir",
            str(work / "logs"),
            "--disable-color",
            "--timestamps",
            "--enable-ext",  # cwltool:Secrets keeps credentials out of the log
            "--parallel",
        ]
        arguments += [] if use_container else ["--no-container"]
        arguments += [f"{work / 'workflow.cwl'}#main", str(work / "params.json")]
        args = arg_parser().parse_args(arguments)
        # cwltool numbers job names across the whole process (measure, measure_2, ...): start
        # each execution afresh, as the kernel's one-execution process and Calrissian do.
        cwltool.process._names.clear()
        runtime = RuntimeContext(vars(args))
        runtime.log_dir_handler = keep_tool_logs_out_of_outputs
        log, stdout = CwltoolLog(), io.StringIO()
        start = datetime.now(timezone.utc)
        with open(work / "cwltool.stderr", "w+", encoding="utf-8") as stderr:
            try:  # a real file: cwltool hands sys.stderr to subprocesses
                with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stderr):
                    code = cwltool.main.main(
                        args=args,
                        stdout=stdout,
                        stderr=stderr,
                        logger_handler=log,
                        runtimeContext=runtime,
                    )
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            stderr.seek(0)
            stray = stderr.read()
        (work / "params.json").unlink()  # it may hold credentials; the job folder is served
        end = datetime.now(timezone.utc)
        tool_logs = self._tool_logs(work / "logs")
        text = "\n".join(log.lines) + ("\n" + stray if stray else "")
        output = json.loads(stdout.getvalue() or "{}") if code == 0 else {}
        return EngineRun(
            succeeded=code == 0,
            output=output,
            log=text,
            usage_report=log.usage_report(start, end),
            tool_logs=tool_logs,
            failure="" if code == 0 else log.failure(code, self.job_dir / "tool-logs", "cwltool"),
        )

    def _tool_logs(self, logs: Path) -> list[Path]:
        """One ``tool-logs/<job>.log`` per job (stderr, then stdout), as Calrissian writes them."""
        target = self.job_dir / "tool-logs"
        written = []
        for job in sorted(p for p in logs.iterdir() if p.is_dir()):
            streams = [job / TOOL_STREAMS["stderr"], job / TOOL_STREAMS["stdout"]]
            text = "".join(p.read_text(errors="replace") for p in streams if p.is_file())
            target.mkdir(exist_ok=True)
            (target / f"{job.name}.log").write_text(text)
            written.append(target / f"{job.name}.log")
        return written

    def dispose(self) -> None:
        """Remove the scratch space."""
        shutil.rmtree(self.job_dir / "cwltool" / "tmp", ignore_errors=True)


# --- Kubernetes ---------------------------------------------------------------------------

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
CALRISSIAN_VOLUME = "calrissian-wdir"
CALRISSIAN_MOUNT = "/calrissian"
HELPER_IMAGE = "docker.io/library/busybox:1.36.1"
# Waiting reasons of a container that will not start by itself.
STUCK_REASONS = {
    "ErrImagePull": "its image cannot be pulled",
    "ImagePullBackOff": "its image cannot be pulled",
    "InvalidImageName": "its image name is invalid",
    "CreateContainerConfigError": "its configuration refers to a missing Secret or ConfigMap",
}


def kubernetes_client():
    """An API client from HTTP_PROXY (pycalrissian's proxy mode), KUBECONFIG, ~/.kube/config or
    the in-cluster service account, in that order; transient faults (5xx, 429, resets) retried.
    """
    import urllib3
    from kubernetes import client, config

    configuration = client.Configuration()
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    if os.environ.get("HTTP_PROXY"):
        configuration.host = os.environ["HTTP_PROXY"]
    elif Path(kubeconfig).is_file():
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        from kubernetes.config.incluster_config import InClusterConfigLoader

        InClusterConfigLoader(
            token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
            cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        ).load_and_set(configuration)
    else:
        raise EngineUnavailable(
            "No Kubernetes access: set KUBECONFIG, run the service in a cluster, or set "
            "EXECUTION_ENGINE=cwltool."
        )
    configuration.retries = urllib3.Retry(
        total=6,
        backoff_factor=0.1,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # creations too: a refused request changed nothing
        raise_on_status=False,
    )
    return client.ApiClient(configuration)


def api_failure(error: Exception, doing: str) -> str:
    """One sentence for a failed Kubernetes API call (REST or exec's websocket handshake)."""
    status = getattr(error, "status", None) or getattr(error, "status_code", None)
    reason = getattr(error, "reason", None) or getattr(error, "status_message", None)
    handshake = re.search(r"Handshake status (\d+) ([\w ]+?) -", f"{reason} {error}")
    if handshake:
        status, reason = handshake.groups()
    reason = reason or type(error).__name__
    if status:
        return f"The Kubernetes API refused to {doing} ({status} {reason})."
    return f"The Kubernetes API could not be reached to {doing} ({reason})."


@functools.cache
def prompt_context_class():
    """pycalrissian's CalrissianContext on our API client, without its sleeps.

    pycalrissian sleeps before every existence check (a second each); this checks at once and
    only then backs off, briefly.
    """
    from kubernetes.client.rest import ApiException
    from pycalrissian.context import CalrissianContext

    class PromptCalrissianContext(CalrissianContext):
        def __init__(self, api_client, **kwargs):
            self._api_client = api_client
            super().__init__(**kwargs)

        def _get_api_client(self, kubeconfig_file=None):
            return self._api_client

        @staticmethod
        def retry(fun, max_tries=10, interval=5, **kwargs):
            delay = 0.02
            for _ in range(max_tries):
                try:
                    result = fun(**kwargs)
                    if result is not None:
                        return result
                except ApiException as error:
                    if error.status and error.status < 500 and error.status != 429:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            raise ApiException(status=504, reason="object not visible after creation")

    return PromptCalrissianContext


@functools.cache
def secret_params_job_class():
    """pycalrissian's CalrissianJob with the parameters in a Secret instead of a ConfigMap:
    they may hold credentials (stage-out keys), which have no place in a ConfigMap."""
    from kubernetes import client
    from pycalrissian.job import CalrissianJob

    class SecretParamsCalrissianJob(CalrissianJob):
        def _create_params_cm(self):
            content = base64.b64encode(yaml.safe_dump(self.params).encode()).decode()
            secret = client.V1Secret(
                metadata=client.V1ObjectMeta(name="params"), data={"params": content}
            )
            self.runtime_context.core_v1_api.create_namespaced_secret(
                self.runtime_context.namespace, secret
            )

        def to_k8s_job(self):
            job = super().to_k8s_job()
            for volume in job.spec.template.spec.volumes:
                if volume.config_map is not None and volume.config_map.name == "params":
                    volume.secret = client.V1SecretVolumeSource(
                        secret_name="params",
                        items=[client.V1KeyToPath(key="params", path="params.yml", mode=0o400)],
                    )
                    volume.config_map = None
            return job

    return SecretParamsCalrissianJob


def quantity(value: str, variable: str) -> str:
    """A Kubernetes storage quantity from a setting: a plain number is MiB."""
    text = value.strip()
    if re.fullmatch(r"\d+", text):
        return f"{text}Mi"
    if re.fullmatch(r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)", text):
        return text
    raise EngineUnavailable(
        f"{variable} is {value!r}: give a number of MiB or a quantity such as 10Gi."
    )


def whole_number(variable: str, default: int) -> int:
    value = os.environ.get(variable, "").strip() or str(default)
    if not value.isdigit() or int(value) < 1:
        raise EngineUnavailable(f"{variable} is {value!r}: give a whole number above 0.")
    return int(value)


@dataclass
class CalrissianSettings:
    """The chart's settings for the Kubernetes engine, read once per execution."""

    storage_class: str
    volume_size: str
    max_cores: int
    max_ram_mib: int
    wall_time: int
    keep_session: bool

    @classmethod
    def read(cls, resources: Resources) -> CalrissianSettings:
        default_volume = quantity(
            os.environ.get("DEFAULT_VOLUME_SIZE") or "10Gi", "DEFAULT_VOLUME_SIZE"
        )
        return cls(
            storage_class=os.environ.get("STORAGE_CLASS", "standard"),
            volume_size=f"{resources.volume_mib}Mi" if resources.volume_mib else default_volume,
            max_cores=resources.cores or whole_number("DEFAULT_MAX_CORES", 2),
            max_ram_mib=resources.ram_mib or whole_number("DEFAULT_MAX_RAM", 4096),
            wall_time=whole_number("EXECUTION_WALL_TIME", 24 * 3600),
            keep_session=os.environ.get("KEEP_SESSION", "false").lower() == "true",
        )


def pod_problem(pod, storage_class: str) -> str:
    """Why this pod cannot start by itself, or '' (it runs, or may still start)."""
    statuses = (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
    for container in statuses:
        waiting = container.state.waiting if container.state else None
        if waiting and waiting.reason in STUCK_REASONS:
            return (
                f"Pod {pod.metadata.name} cannot start: {STUCK_REASONS[waiting.reason]} "
                f"({waiting.reason}, image {container.image})."
            )
    for condition in pod.status.conditions or []:
        if (
            condition.type == "PodScheduled"
            and condition.status == "False"
            and "PersistentVolumeClaim" in (condition.message or "")
        ):
            return (
                f"Pod {pod.metadata.name} cannot be scheduled: its volume is not bound (check "
                f"that STORAGE_CLASS {storage_class!r} provides ReadWriteMany volumes)."
            )
    return ""


def calrissian_step_failure(log: str) -> str:
    """The step whose pod failed and the last line it logged, from Calrissian's log, or ''.

    Calrissian names the failed container (``<step>[-N]-container``) and streams each step pod's
    log as ``[<step>[-N]-pod-<8 letters>] line``; it writes no tool log for a failed step.
    """
    failed = re.search(r"the command below failed in pod (?P<name>[\w-]+?)-container:", log)
    if not failed:
        return ""
    name = failed["name"]
    lines = re.findall(rf"^\[{re.escape(name)}-pod-[a-z]+\] (.*)$", log, re.MULTILINE)
    lines = [line for line in lines if not line.startswith("follow_logs ")]
    step = re.sub(r"-\d+$", "", name)
    return f"Step {step!r} failed" + (f": {lines[-1].strip()[:300]}" if lines else ".")


@dataclass
class Outcome:
    succeeded: bool
    failure: str = ""


class CalrissianEngine:
    """Runs the workflow on Kubernetes with Calrissian, through pycalrissian, in a namespace of
    its own (named after the job, as ZOO's dismiss expects) that it deletes when done.
    """

    name = "calrissian"

    def __init__(self, job: EngineJob) -> None:
        self.job = job
        self.settings = CalrissianSettings.read(job.resources)
        self.api_client = kubernetes_client()
        self.namespace = job.job_id
        self.doing = "prepare the execution"

    def run(self, workflow: dict, params: dict) -> EngineRun:
        from kubernetes.client.rest import ApiException
        from loguru import logger
        from urllib3.exceptions import HTTPError

        logger.disable("pycalrissian")  # its log lines would go to stderr
        try:
            return self._run(workflow, params)
        except (ApiException, HTTPError, OSError) as error:
            raise ExecutionFailure(api_failure(error, self.doing)) from None
        finally:
            logger.enable("pycalrissian")

    def _run(self, workflow: dict, params: dict) -> EngineRun:
        from pycalrissian.execution import CalrissianExecution

        handler = self.job.handler
        start = datetime.now(timezone.utc)
        self.doing = f"set up the namespace {self.namespace}"
        context = prompt_context_class()(
            self.api_client,
            namespace=self.namespace,
            storage_class=self.settings.storage_class,
            volume_size=self.settings.volume_size,
            image_pull_secrets=self.job.pull_secrets or None,
            labels={"app.kubernetes.io/managed-by": "zoo-calrissian-service"},
            annotations=dict(self.job.conf.get("pod_annotations") or {}) or None,
        )
        context.initialise()
        self.doing = "create the Calrissian job"
        calrissian_job = secret_params_job_class()(
            cwl=workflow,
            params=params,
            runtime_context=context,
            cwl_entry_point="main",
            pod_env_vars=handler.get_pod_env_vars() or None,
            pod_node_selector=handler.get_pod_node_selector() or None,
            max_ram=f"{self.settings.max_ram_mib}Mi",
            max_cores=str(self.settings.max_cores),
            debug=True,
            tool_logs=True,
        )
        CalrissianExecution(job=calrissian_job, runtime_context=context).submit()
        self.doing = "follow the Calrissian job"
        outcome = self._monitor(calrissian_job.job_name)
        self.doing = "collect the job's log"
        log = self._job_log(calrissian_job.job_name)
        self.doing = "collect the job's files"
        try:
            files = self._collect(outcome.succeeded)
        except Exception:
            if outcome.succeeded or not outcome.failure:
                raise
            files = {"output": {}, "report": {}, "stderr": "", "tool_logs": []}  # keep the cause
        end = datetime.now(timezone.utc)
        report = files["report"] or {
            "start_time": start.isoformat(),
            "end_time": end.isoformat(),
            "children": [],
        }
        failure = outcome.failure
        if not outcome.succeeded and not failure:
            notes = CwltoolLog.from_text(files["stderr"] or log)
            failure = calrissian_step_failure(log) or notes.failure(
                1, self.job.job_dir / "tool-logs", "Calrissian"
            )
        return EngineRun(
            succeeded=outcome.succeeded,
            output=files["output"],
            log=log,
            usage_report=report,
            tool_logs=files["tool_logs"],
            failure=failure,
        )

    # --- monitor -------------------------------------------------------------------------

    def _monitor(self, job_name: str) -> Outcome:
        """Follow the job until it ends, its wall time runs out, or a pod cannot start."""
        from kubernetes import client, watch

        batch = client.BatchV1Api(self.api_client)
        deadline = time.monotonic() + self.settings.wall_time
        while True:
            job = batch.read_namespaced_job_status(job_name, self.namespace)
            conditions = {c.type for c in job.status.conditions or [] if c.status == "True"}
            if job.status.succeeded or "Complete" in conditions:
                return Outcome(succeeded=True)
            if "Failed" in conditions:
                return Outcome(succeeded=False)
            stuck = self._stuck_pod()
            if stuck:
                self._stop(job_name)
                return Outcome(succeeded=False, failure=stuck)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._stop(job_name)
                return Outcome(
                    succeeded=False,
                    failure=(
                        f"The execution ran longer than its wall time of "
                        f"{self.settings.wall_time} s (EXECUTION_WALL_TIME) and was stopped."
                    ),
                )
            events = watch.Watch().stream(
                batch.list_namespaced_job,
                self.namespace,
                field_selector=f"metadata.name={job_name}",
                resource_version=job.metadata.resource_version,
                timeout_seconds=max(1, min(math.ceil(remaining), 2)),
            )
            with contextlib.closing(events):  # closing releases the connection
                next(events, None)  # wake on the first change, or after the timeout

    def _stuck_pod(self) -> str:
        """Why a pod of the namespace (the job's or a step's) cannot start, or ''."""
        from kubernetes import client

        pods = client.CoreV1Api(self.api_client).list_namespaced_pod(self.namespace).items
        problems = (pod_problem(pod, self.settings.storage_class) for pod in pods)
        return next((problem for problem in problems if problem), "")

    def _stop(self, job_name: str) -> None:
        from kubernetes import client

        client.BatchV1Api(self.api_client).delete_namespaced_job(
            job_name, self.namespace, propagation_policy="Background"
        )

    # --- collect -------------------------------------------------------------------------

    def _job_log(self, job_name: str) -> str:
        """The logs of the Calrissian job's pods (one per attempt), oldest first."""
        from kubernetes import client

        core = client.CoreV1Api(self.api_client)
        pods = core.list_namespaced_pod(self.namespace, label_selector=f"job-name={job_name}")
        logs = []
        for pod in sorted(pods.items, key=lambda p: p.metadata.creation_timestamp):
            if pod.status.phase in ("Running", "Succeeded", "Failed"):
                logs.append(core.read_namespaced_pod_log(pod.metadata.name, self.namespace))
        return "\n".join(logs)

    def _collect(self, succeeded: bool) -> dict:
        """output.json, report.json, stderr.log, the tool logs and (without a stage-out) the
        result files, through one helper pod that mounts the job's volume.
        """
        with HelperPod(self.api_client, self.namespace, self.settings.storage_class) as helper:
            files = helper.read_files(["output.json", "report.json", "stderr.log"])
            report = json.loads(files.get("report.json") or b"{}")
            names = [f"{child['name']}.log" for child in report.get("children", [])]
            folder = self.job.job_dir / "tool-logs"
            tool_logs = []
            for name, content in (helper.read_files(names) if names else {}).items():
                folder.mkdir(exist_ok=True)
                (folder / name).write_bytes(content)
                tool_logs.append(folder / name)
            output = json.loads(files.get("output.json") or b"{}") if succeeded else {}
            if output and not self.job.stages_out:
                output = catalogs_as_urls(helper.copy_results(output, self.job.job_dir))
        return {
            "output": output,
            "report": report,
            "stderr": files.get("stderr.log", b"").decode(errors="replace"),
            "tool_logs": tool_logs,
        }

    # --- dispose -------------------------------------------------------------------------

    def dispose(self) -> None:
        """Delete the namespace and all in it, unless KEEP_SESSION=true; never raises."""
        if self.settings.keep_session:
            return
        from kubernetes import client

        try:
            client.CoreV1Api(self.api_client).delete_namespace(
                self.namespace, grace_period_seconds=0, propagation_policy="Background"
            )
        except Exception as error:  # a namespace that is already gone is fine too
            if getattr(error, "status", None) != 404:
                zoo_log("error", api_failure(error, f"delete the namespace {self.namespace}"))


class HelperPod:
    """One short-lived pod mounting the job's volume, to read files out of it with tar."""

    def __init__(self, api_client, namespace: str, storage_class: str) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.storage_class = storage_class
        self.name = f"collect-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> HelperPod:
        from kubernetes import client, watch

        volume = client.V1PersistentVolumeClaimVolumeSource(claim_name=CALRISSIAN_VOLUME)
        container = client.V1Container(
            name="collect",
            image=os.environ.get("HELPER_IMAGE", HELPER_IMAGE),
            command=["sleep", "3600"],
            volume_mounts=[client.V1VolumeMount(name="work", mount_path=CALRISSIAN_MOUNT)],
            resources=client.V1ResourceRequirements(requests={"cpu": "50m", "memory": "32Mi"}),
        )
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name=self.name),
            spec=client.V1PodSpec(
                restart_policy="Never",
                containers=[container],
                volumes=[client.V1Volume(name="work", persistent_volume_claim=volume)],
            ),
        )
        self.core.create_namespaced_pod(self.namespace, pod)
        events = watch.Watch().stream(
            self.core.list_namespaced_pod,
            self.namespace,
            field_selector=f"metadata.name={self.name}",
            timeout_seconds=120,
        )
        with contextlib.closing(events):
            for event in events:
                if event["object"].status.phase == "Running":
                    return self
                problem = pod_problem(event["object"], self.storage_class)
                if problem:
                    raise ExecutionFailure(problem)
        raise ExecutionFailure("The helper pod that reads the job's files did not start.")

    def __exit__(self, *exc) -> None:
        try:  # the namespace's deletion removes it anyway
            self.core.delete_namespaced_pod(self.name, self.namespace, grace_period_seconds=0)
        except Exception as error:
            zoo_log("warning", api_failure(error, f"delete the helper pod {self.name}"))

    def tar(self, paths: list[str]) -> bytes:
        """A tar archive of ``paths`` (relative to the volume); missing ones are left out.

        Exec goes through a websocket, outside the API client's retries: retried here.
        """
        for attempt in range(4):
            try:
                return self._tar(paths)
            except Exception as error:  # websocket and HTTP errors alike
                status = getattr(error, "status_code", None) or getattr(error, "status", None)
                permanent = isinstance(status, int) and 400 <= status < 500 and status != 429
                if permanent or attempt == 3:
                    raise ExecutionFailure(api_failure(error, "read the job's files")) from None
                time.sleep(0.2 * 2**attempt)
        return b""

    def _tar(self, paths: list[str]) -> bytes:
        from kubernetes.stream import stream

        connection = stream(
            self.core.connect_get_namespaced_pod_exec,
            self.name,
            self.namespace,
            command=["tar", "cf", "-", *[f"{CALRISSIAN_MOUNT}/{path}" for path in paths]],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
            binary=True,
        )
        data = b""
        deadline = time.monotonic() + 600
        while connection.is_open() and time.monotonic() < deadline:
            connection.update(timeout=1)
            if connection.peek_stdout():
                data += connection.read_stdout()
        connection.close()
        return data

    def members(self, paths: list[str]):
        """(path relative to the volume, tar member, archive) for each file and folder."""
        archive_bytes = self.tar(paths)
        if not archive_bytes:
            return
        with tarfile.open(fileobj=io.BytesIO(archive_bytes), mode="r|*") as archive:
            for member in archive:
                relative = PurePosixPath(member.name.lstrip("/")).relative_to(
                    CALRISSIAN_MOUNT.strip("/")
                )
                if ".." not in relative.parts:
                    yield relative, member, archive

    def read_files(self, names: list[str]) -> dict[str, bytes]:
        """The content of the volume's files ``names`` that exist, by name."""
        return {
            str(relative): archive.extractfile(member).read()
            for relative, member, archive in self.members(names)
            if member.isfile()
        }

    def copy_results(self, output: dict, target: Path) -> dict:
        """The files and folders of a CWL output copied into ``target``; locations rewritten."""
        prefix = f"file://{CALRISSIAN_MOUNT}/"
        text = json.dumps(output)
        paths = sorted(
            {m.removeprefix(prefix) for m in re.findall(re.escape(prefix) + r'[^"]+', text)}
        )
        for relative, member, archive in self.members(paths):
            destination = target / relative
            if member.isdir():
                destination.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(archive.extractfile(member).read())
        return json.loads(text.replace(prefix, target.as_uri() + "/"))


def catalogs_as_urls(output: object) -> object:
    """Directories holding a STAC catalog given as the URL of their catalog.json, as a STAC
    stage-out gives them."""
    if isinstance(output, dict) and output.get("class") == "Directory":
        catalog = Path(urllib.parse.urlparse(output.get("location", "")).path) / "catalog.json"
        return catalog.as_uri() if catalog.is_file() else output
    if isinstance(output, dict):
        return {key: catalogs_as_urls(value) for key, value in output.items()}
    if isinstance(output, list):
        return [catalogs_as_urls(value) for value in output]
    return output


@dataclass
class EngineJob:
    """What an engine knows of the execution beyond the workflow and its parameters."""

    job_id: str
    job_dir: Path
    conf: dict
    handler: ExecutionHandler
    resources: Resources = field(default_factory=Resources)
    stages_out: bool = True
    pull_secrets: dict | None = None  # the handler's get_secrets(), asked once per execution


def make_engine(name: str, job: EngineJob):
    engines = {"cwltool": CwltoolEngine, "calrissian": CalrissianEngine}
    if name not in engines:
        raise EngineUnavailable(f"EXECUTION_ENGINE is {name!r}: use one of {', '.join(ENGINES)}.")
    return engines[name](job)


# ---------------------------------------------------------------------------------------------
# The runner: one execution, from the kernel's dicts to the kernel's outputs.
# ---------------------------------------------------------------------------------------------

JOB_LOG = "job.log"
OUTPUT_FILE = "output.json"
USAGE_REPORT = "usage-report.json"


class ExecutionFailure(Exception):
    """An execution that cannot go on; the message is the sentence the user sees."""


def shorten63(value: str) -> str:
    """ZOO's namespace shortening (the dismiss operation computes the same)."""
    while len(value) > 63:
        value = value[:-1].rstrip("-")
    return value


def job_id_for(workflow_id: str, usid: str) -> str:
    """The job id and Kubernetes namespace: ZOO's name, made a valid DNS label if it is not."""
    name = shorten63(workflow_id.replace("_", "-") + "-" + usid)
    return shorten63(re.sub(r"[^a-z0-9-]", "-", name.lower())).strip("-")


def job_folder(conf: dict, job_id: str) -> Path:
    return Path(conf["main"]["tmpPath"]) / job_id


def job_folder_url(conf: dict, job_id: str) -> str:
    """The URL of the job folder under ``main.tmpUrl`` (with ZOO's per-user prefix when the
    temp folder is per user, which ZOO does not apply to tmpUrl itself)."""
    base = conf.get("main", {}).get("tmpUrl", "")
    user = conf.get("auth_env", {}).get("user")
    tmp_path = conf["main"]["tmpPath"].rstrip("/")
    if user and tmp_path.endswith(f"/{user}/temp") and f"/{user}/temp/" not in base:
        base = base.replace("/temp/", f"/{user}/temp/", 1)
    return f"{base.rstrip('/')}/{job_id}"


def job_url(conf: dict, job_id: str, path: Path) -> str:
    """The URL of a file of the job folder."""
    relative = path.relative_to(job_folder(conf, job_id)).as_posix()
    return f"{job_folder_url(conf, job_id)}/{relative}"


def published(output: dict, conf: dict, job_id: str) -> dict:
    """Results written into the job folder, pointed to by URL (ZOO serves the temp folder)."""
    local = job_folder(conf, job_id).as_uri() + "/"
    return json.loads(json.dumps(output).replace(local, job_folder_url(conf, job_id) + "/"))


def call_hook(method, **results):
    """Call a handler hook with the results it accepts by name.

    zoo-calrissian-runner handlers take ``log`` where this interface says ``execution_log``.
    """
    parameters = inspect.signature(method).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        accepted = {**results, "log": results["execution_log"]}
        accepted.pop("execution_log")
        accepted.update({k: v for k, v in results.items() if k in parameters})
    else:
        accepted = {k: v for k, v in results.items() if k in parameters}
        if "log" in parameters:
            accepted["log"] = results["execution_log"]
    return method(**accepted)


def secret_values(secrets: object, parameters: dict) -> list[str]:
    """Every string of the pull secrets, and the values of parameters named like secrets."""
    found = []

    def strings(value: object) -> None:
        if isinstance(value, str) and len(value) >= 4:
            found.append(value)
            if re.fullmatch(r"[A-Za-z0-9+/=]{8,}", value):  # basic-auth style: user:password
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    found.extend(
                        p for p in base64.b64decode(value).decode().split(":") if len(p) >= 4
                    )
        elif isinstance(value, dict):
            for item in value.values():
                strings(item)
        elif isinstance(value, list):
            for item in value:
                strings(item)

    strings((secrets or {}).get("imagePullSecrets") if isinstance(secrets, dict) else None)
    for name, value in parameters.items():
        if SECRET_NAME.search(name):
            strings(value)
    return sorted(set(found), key=len, reverse=True)


def redacted(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


class ZooCalrissianRunner:
    """Runs the Application Package for one execute request; its interface is the one of
    zoo-calrissian-runner: ``ZooCalrissianRunner(cwl, conf, inputs, outputs, handler).execute()``.
    """

    def __init__(self, cwl, conf, inputs, outputs, execution_handler, engine=None):
        self.cwl = cwl
        self.conf = conf
        self.inputs = inputs
        self.outputs = outputs
        self.handler = execution_handler
        self.engine_name = engine or os.environ.get("EXECUTION_ENGINE", "calrissian")
        self.workflow_id = conf.get("lenv", {}).get("Identifier") or WORKFLOW_ID
        self.job_id = None
        self.secrets: list[str] = []

    # --- progress --------------------------------------------------------------------------

    def update_status(self, percent: int, message: str) -> None:
        self.conf.setdefault("lenv", {})["message"] = message
        zoo.update_status(self.conf, percent)

    # --- the execution ----------------------------------------------------------------------

    def execute(self) -> int:
        engine = None
        try:
            self.update_status(2, "running the pre-execution hook")
            self.handler.pre_execution_hook()
            self.update_status(5, "checking the Application Package and the inputs")
            package = self._checked_package()
            workflow = package.workflow(self.workflow_id)
            missing = missing_inputs(package, self.workflow_id, self.inputs)
            if missing:
                raise ExecutionFailure(
                    f"The execute request lacks the mandatory {counted('input', missing)}: "
                    "give a value for each."
                )
            parameters = cwl_parameters(workflow, self.inputs)
            self.update_status(10, "wrapping the Application Package with stage-in and stage-out")
            stage_files = stage_process_files(self.engine_name)
            wrapped = wrap(package.document, self.workflow_id, stage_files)
            self.job_id = job_id_for(self.workflow_id, self.conf["lenv"]["usid"])
            self.handler.set_job_id(self.job_id)
            job_dir = job_folder(self.conf, self.job_id)
            job_dir.mkdir(parents=True, exist_ok=True)
            pull_secrets = self.handler.get_secrets()
            engine = make_engine(
                self.engine_name,
                EngineJob(
                    job_id=self.job_id,
                    job_dir=job_dir,
                    conf=self.conf,
                    handler=self.handler,
                    resources=package.resources(
                        self.workflow_id, whole_number("SCATTER_MULTIPLIER", 2)
                    ),
                    stages_out=stage_files["stage-out"] is not None,
                    pull_secrets=pull_secrets,
                ),
            )
            self.update_status(15, f"preparing the {engine.name} engine")
            params = self._job_parameters(wrapped, parameters)
            self.secrets = secret_values(pull_secrets, params)
            self.update_status(23, "execution submitted")
            run = engine.run(wrapped, params).redacted(self.secrets)
            self.update_status(90, "collecting the outputs, logs and usage report")
            self._save(job_dir, run)
            call_hook(self.handler.handle_outputs, **run.results())
            if not run.succeeded:
                raise ExecutionFailure(run.failure)
            set_zoo_outputs(self.outputs, published(run.output, self.conf, self.job_id))
            self.update_status(97, "running the post-execution hook")
            call_hook(self.handler.post_execution_hook, **run.results())
        except (
            ExecutionFailure,
            ApplicationPackageError,
            InputError,
            WrapError,
            EngineUnavailable,
        ) as error:
            failure = str(error)
        except Exception as error:  # a bug or a handler failure: one sentence, no traceback
            zoo_log("error", redacted(f"{type(error).__name__}: {error}", self.secrets))
            failure = f"The execution stopped on an unexpected {type(error).__name__}."
        else:
            failure = None
        finally:
            if engine is not None and os.environ.get("KEEP_SESSION", "false").lower() != "true":
                self.update_status(99, "cleaning up")
                engine.dispose()
        if failure is not None:
            failure = redacted(failure, self.secrets)
            self.conf["lenv"]["message"] = failure
            zoo_log("error", failure)
            return zoo.SERVICE_FAILED
        self.update_status(100, "execution successful")
        return zoo.SERVICE_SUCCEEDED

    def _checked_package(self) -> ApplicationPackage:
        package = (
            self.cwl
            if isinstance(self.cwl, ApplicationPackage)
            else ApplicationPackage.load(self.cwl)
        )
        findings = package.check(self.workflow_id)
        for warning in findings.warnings:
            zoo_log("warning", warning)
        if not findings.ok:
            raise ExecutionFailure(findings.errors[0])
        return package

    def _job_parameters(self, wrapped: dict, parameters: dict) -> dict:
        """process + the mapped inputs + the handler's additional parameters (the handler wins),
        kept to what ``main`` declares."""
        main = wrapped["$graph"][0]
        declared = {short_id(i["id"]) for i in entries(main["inputs"])}
        params = {
            "process": self.job_id,
            **parameters,
            **(self.handler.get_additional_parameters() or {}),
        }
        if "STAGEOUT_OUTPUT" in declared:
            params.setdefault("STAGEOUT_OUTPUT", Path(self.conf["main"]["tmpPath"]).as_uri())
        return {name: value for name, value in params.items() if name in declared}

    def _save(self, job_dir: Path, run: EngineRun) -> None:
        (job_dir / JOB_LOG).write_text(run.log)
        (job_dir / OUTPUT_FILE).write_text(json.dumps(run.output, indent=2))
        (job_dir / USAGE_REPORT).write_text(json.dumps(run.usage_report, indent=2))


# ---------------------------------------------------------------------------------------------
# The handler of this service: adapt it to the platform (secrets, pods, outputs).
# ---------------------------------------------------------------------------------------------


def read_mounted_yaml(variable: str, default: str) -> object:
    """A YAML/JSON file the platform mounts (path from ``variable``), or None when absent."""
    path = Path(os.environ.get(variable) or default)
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        zoo_log("warning", f"{path} ({variable}) is not readable YAML: it is ignored.")
        return None


class {{ cookiecutter.__handler_class }}(ExecutionHandler):
    """Defaults that work in an ADES: settings come from the sections of ``conf``."""

    def pre_execution_hook(self, **kwargs):
        pass

    def post_execution_hook(self, **kwargs):
        pass

    def get_secrets(self):
        """Image pull secrets in pycalrissian's format, from the files the chart mounts:
        ``{"auths": ...}`` and a list of existing Secret names to copy from ORIGIN_NAMESPACE."""
        auths = read_mounted_yaml("IMAGE_PULL_SECRETS_FILE", "/assets/pod_imagePullSecrets.yaml")
        names = read_mounted_yaml(
            "ADDITIONAL_IMAGE_PULL_SECRETS_FILE", "/assets/pod_additionalImagePullSecrets.yaml"
        )
        secrets = {}
        if isinstance(auths, dict) and auths:
            secrets["imagePullSecrets"] = auths if "auths" in auths else {"auths": auths}
        if isinstance(names, list) and names:
            secrets["additionalImagePullSecrets"] = [
                {"name": n} if isinstance(n, str) else n for n in names
            ]
        return secrets or None

    def get_pod_env_vars(self):
        return dict(self.conf.get("pod_env_vars", {}))

    def get_pod_node_selector(self):
        return dict(self.conf.get("pod_node_selector", {}))

    def get_additional_parameters(self):
        return dict(self.conf.get("additional_parameters", {}))

    def handle_outputs(self, execution_log, output, usage_report, tool_logs=None):
        """Publish the job's files as ``service_logs`` links (the kernel lists them on the job)."""
        folder = job_folder(self.conf, self.job_id)
        files = [("Job log", folder / JOB_LOG), ("Usage report", folder / USAGE_REPORT)]
        files += [("Output", folder / OUTPUT_FILE)]
        files += [(f"Tool log {Path(p).stem}", Path(p)) for p in tool_logs or []]
        files = [(title, path) for title, path in files if path.is_file()]
        links = {}
        for index, (title, path) in enumerate(files):
            suffix = f"_{index}" if index else ""
            links[f"url{suffix}"] = job_url(self.conf, self.job_id, path)
            links[f"title{suffix}"] = title
            links[f"rel{suffix}"] = "related"
        links["length"] = str(len(files))
        self.conf["service_logs"] = links


# ---------------------------------------------------------------------------------------------
# The entry function the ZOO kernel calls.
# ---------------------------------------------------------------------------------------------


def {{ cookiecutter.__function_name }}(conf, inputs, outputs):
    """Run the Workflow ``{{ cookiecutter.workflow_id }}`` for one execute request."""
    handler = {{ cookiecutter.__handler_class }}(conf=conf, outputs=outputs)
    runner = ZooCalrissianRunner(SERVICE_DIR / APP_PACKAGE_FILE, conf, inputs, outputs, handler)
    return runner.execute()


# ---------------------------------------------------------------------------------------------
# The command line: run the service outside ZOO from an OGC API - Processes execute request.
# ---------------------------------------------------------------------------------------------


def kernel_input(value: object, base: Path, name: str = "") -> dict:
    """One execute-request input value in the shape the kernel passes to services."""
    if isinstance(value, list):
        if any(isinstance(item, list) for item in value):
            raise InputError(f"Input {name!r} holds arrays within an array, which ZOO cannot pass.")
        entries_ = [kernel_input(item, base) for item in value]
        shaped = {"isArray": "true", "length": str(len(entries_))}
        if entries_ and all("xlink:href" in e for e in entries_):
            return {
                **shaped,
                "xlink:href": [e["xlink:href"] for e in entries_],
                "value": [""] * len(entries_),
            }
        return {**shaped, "value": [e.get("value", "") for e in entries_]}
    if isinstance(value, dict) and "href" in value:
        href = str(value["href"])
        if not re.match(r"(?i)[a-z][a-z0-9+.-]*://", href):
            href = (base / href).resolve().as_uri()
        return {"xlink:href": href, "value": ""}
    if isinstance(value, dict) and "bbox" in value:
        bbox = [float(n) for n in value["bbox"]]
        half = len(bbox) // 2
        return {
            "value": json.dumps(bbox),
            "crs": str(value.get("crs", "http://www.opengis.net/def/crs/OGC/1.3/CRS84")),
            "lowerCorner": " ".join(f"{n:g}" for n in bbox[:half]),
            "upperCorner": " ".join(f"{n:g}" for n in bbox[half:]),
        }
    if isinstance(value, dict) and "value" in value:
        inner = value["value"]
        text = inner if isinstance(inner, str) else json.dumps(inner)
        media = value.get("mediaType") or value.get("format", {}).get("mediaType")
        return {"value": text, **({"mimeType": media} if media else {})}
    if isinstance(value, bool):
        return {"value": "true" if value else "false", "dataType": "boolean"}
    if isinstance(value, dict):
        return {"value": json.dumps(value), "mimeType": "application/json"}
    return {"value": str(value)}


def kernel_call(request: dict, base: Path, workdir: Path) -> tuple[dict, dict, dict]:
    """``conf``, ``inputs`` and ``outputs`` as the kernel would build them for this request."""
    if not isinstance(request.get("inputs", {}), dict):
        raise InputError("The execute request's 'inputs' must be an object keyed by input id.")
    inputs = {
        name: kernel_input(value, base, name) for name, value in request.get("inputs", {}).items()
    }
    outputs = {name: {} for name in request.get("outputs") or {}}
    conf = {
        "main": {"tmpPath": str(workdir), "tmpUrl": workdir.as_uri() + "/"},
        "lenv": {"usid": str(uuid.uuid4()), "Identifier": WORKFLOW_ID, "message": ""},
        "auth_env": {},
    }
    return conf, inputs, outputs


def run_from_command_line(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {SERVICE_DIR.name}.service",
        description=f"Run the {WORKFLOW_ID} service outside ZOO from an execute request (JSON).",
    )
    parser.add_argument("request", type=Path, help="OGC API - Processes execute request body")
    parser.add_argument("--engine", choices=ENGINES, default="cwltool")
    parser.add_argument("--workdir", type=Path, default=Path("jobs"), help="where job folders go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("cwltool").propagate = False
    try:
        request = json.loads(args.request.read_text())
        if not isinstance(request, dict):
            raise InputError("The execute request must be a JSON object.")
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        conf, inputs, outputs = kernel_call(request, args.request.resolve().parent, workdir)
    except (OSError, ValueError) as error:
        print(f"error: {args.request}: {error}", file=sys.stderr)
        return 2
    handler = {{ cookiecutter.__handler_class }}(conf=conf, outputs=outputs)
    runner = ZooCalrissianRunner(
        SERVICE_DIR / APP_PACKAGE_FILE, conf, inputs, outputs, handler, engine=args.engine
    )
    status = runner.execute()
    if runner.job_id:
        print(f"Job folder: {job_folder(conf, runner.job_id)}")
    if status != zoo.SERVICE_SUCCEEDED:
        print(f"error: {conf['lenv']['message']}", file=sys.stderr)
        return 1
    print(json.dumps({name: out.get("value") for name, out in outputs.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_from_command_line())
