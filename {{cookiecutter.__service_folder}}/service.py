"""{{ cookiecutter.service_name }}: an OGC API - Processes service of the ZOO-Project ADES.

Generated from the ZOO Calrissian service template for the Application Package Workflow
``{{ cookiecutter.workflow_id }}``. The ZOO kernel imports this module as
``{{ cookiecutter.service_name }}.service`` and calls
``{{ cookiecutter.__function_name }}(conf, inputs, outputs)``, which returns
``zoo.SERVICE_SUCCEEDED`` or ``zoo.SERVICE_FAILED``. The Application Package is the
``app-package.cwl`` file beside this one (the ADES writes it at deploy time).

Read top to bottom: the ``zoo`` module, the handler interface, the Application Package and its
check, ZOO inputs, the templated handler, and the entry function.
"""

from __future__ import annotations

import logging
import re
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

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
    """YAML as CWL tools read it (1.2 core schema): only true/false are booleans, no dates."""


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


def yaml_error_message(name: str, error: yaml.YAMLError) -> str:
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
            document = yaml.load(text, Loader=CwlYamlLoader)  # CwlYamlLoader is a SafeLoader
        except yaml.YAMLError as error:
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


def validate_with_cwltool(package: ApplicationPackage, workflow_id: str) -> Findings:
    """CWL schema validation with cwltool's loader, of the package as the ADES stores it.

    The package is validated as written first, so that messages carry its own line numbers; a
    package that is valid only once upgraded to v1.2 (as the ADES stores it) gets a warning.
    """
    try:
        import cwltool  # noqa: F401
    except ImportError:
        return Findings(
            warnings=[
                "cwltool is not installed here, so the CWL schema was not validated; the "
                "service validates it before every execution."
            ]
        )
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
    """The package upgraded to v1.2 by cwl-upgrader (as the ADES does), or None if it cannot be."""
    from cwlupgrader.main import upgrade_document
    from ruamel.yaml import YAML

    ruamel = YAML(typ="rt")
    try:
        document = ruamel.load(path.read_text(encoding="utf-8-sig"))
        upgraded = upgrade_document(document, str(folder), ADES_CWL_VERSION)
        if upgraded is None:
            return None
        target = folder / path.name
        with target.open("w", encoding="utf-8") as stream:
            ruamel.dump(upgraded, stream)
        return target
    except Exception:  # any upgrader failure means "cannot be upgraded"
        return None


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
# ZOO inputs: what the kernel passes, read for the CWL Workflow.
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# The handler of this service: adapt it to the platform (secrets, pods, outputs).
# ---------------------------------------------------------------------------------------------


class {{ cookiecutter.__handler_class }}(ExecutionHandler):
    """Defaults that work in an ADES: settings come from the sections of ``conf``."""

    def pre_execution_hook(self, **kwargs):
        pass

    def post_execution_hook(self, **kwargs):
        pass

    def get_secrets(self):
        return None

    def get_pod_env_vars(self):
        return dict(self.conf.get("pod_env_vars", {}))

    def get_pod_node_selector(self):
        return dict(self.conf.get("pod_node_selector", {}))

    def get_additional_parameters(self):
        return dict(self.conf.get("additional_parameters", {}))

    def handle_outputs(self, execution_log, output, usage_report, tool_logs=None):
        pass


# ---------------------------------------------------------------------------------------------
# The entry function the ZOO kernel calls.
# ---------------------------------------------------------------------------------------------


def {{ cookiecutter.__function_name }}(conf, inputs, outputs):
    """Run the Workflow ``{{ cookiecutter.workflow_id }}`` for one execute request."""
    lenv = conf.setdefault("lenv", {})
    try:
        package = ApplicationPackage.load(SERVICE_DIR / APP_PACKAGE_FILE)
    except ApplicationPackageError as error:
        lenv["message"] = str(error)
        return zoo.SERVICE_FAILED
    findings = package.check(WORKFLOW_ID)
    for warning in findings.warnings:
        zoo_log("warning", warning)
    if not findings.ok:
        lenv["message"] = findings.errors[0]
        return zoo.SERVICE_FAILED
    missing = missing_inputs(package, WORKFLOW_ID, inputs)
    if missing:
        lenv["message"] = (
            f"The execute request lacks the mandatory {counted('input', missing)}: "
            "give a value for each."
        )
        return zoo.SERVICE_FAILED
    lenv["message"] = (
        "Execution is not available yet in this version of the service template: the "
        "Application Package and the inputs were checked, but nothing was run."
    )
    return zoo.SERVICE_FAILED
