"""Checks the cookiecutter context before anything is rendered.

Identifiers become a Python function, a folder and a Kubernetes namespace, so they are checked
here, before any file exists. When an Application Package is given it is read (path or URL),
parsed, and placed in the service folder as ``app-package.cwl``; the post-generation hook then
runs the service's own deep check on it. Values arrive as JSON data, never as code.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import yaml

# The ZOO-Project deploy service refuses identifiers holding these (Process._FORBIDDEN_CONTENT).
FORBIDDEN_CONTENT = (",", ";", "$$", "$q$")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FOLDER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# A namespace is shortened to 63 characters; keep at least this much of the job id in it so that
# two executions never share a namespace.
NAMESPACE_LIMIT = 63
JOB_ID_KEPT = 8
MAX_WORKFLOW_ID = NAMESPACE_LIMIT - 1 - JOB_ID_KEPT
APP_PACKAGE_FILE = "app-package.cwl"
URL_TIMEOUT_SECONDS = 30


def shown(value: str) -> str:
    """A value quoted for a one-line message, whatever it contains."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def forbidden_content_problem(name: str, value: str) -> str | None:
    for content in FORBIDDEN_CONTENT:
        if content in value:
            return (
                f"{name} {shown(value)} contains {content!r}, which the ZOO-Project deploy service "
                "forbids in identifiers: remove it."
            )
    return None


def workflow_id_problem(workflow_id: str) -> str | None:
    """Why ``workflow_id`` cannot name the service's function and namespace, or None."""
    if not workflow_id:
        return (
            "workflow_id is empty: give the id of the Workflow to run, "
            "for example workflow_id=water-bodies."
        )
    forbidden = forbidden_content_problem("workflow_id", workflow_id)
    if forbidden:
        return forbidden
    function_name = workflow_id.replace("-", "_")
    if not IDENTIFIER.fullmatch(function_name) or keyword.iskeyword(function_name):
        return (
            f"workflow_id {shown(workflow_id)} cannot name the service function "
            f"{shown(function_name)}: use ASCII letters, digits, '-' and '_', do not start with a "
            "digit, and do not use a Python keyword."
        )
    if not re.search(r"[A-Za-z0-9]", workflow_id):
        return (
            f"workflow_id {shown(workflow_id)} cannot name a Kubernetes namespace: "
            "it needs at least one letter or digit."
        )
    if len(workflow_id) > MAX_WORKFLOW_ID:
        return (
            f"workflow_id {shown(workflow_id)} has {len(workflow_id)} characters: the Kubernetes "
            f"namespace of a job (id, '-', job id, {NAMESPACE_LIMIT} characters at most) would "
            f"lose the job id, so use at most {MAX_WORKFLOW_ID} characters."
        )
    return None


def service_name_problem(service_name: str) -> str | None:
    """Why ``service_name`` cannot name the service folder (a Python package), or None."""
    if not service_name:
        return "service_name is empty: leave it out to use the workflow_id, or give a folder name."
    forbidden = forbidden_content_problem("service_name", service_name)
    if forbidden:
        return forbidden
    if not FOLDER_NAME.fullmatch(service_name):
        return (
            f"service_name {shown(service_name)} cannot name the service folder: use ASCII "
            "letters, digits, '-' and '_', and start with a letter or '_'."
        )
    return None


def conf_problem(conf: object) -> str | None:
    if not isinstance(conf, dict):
        return (
            f"conf must be a mapping (the ADES passes its [cookiecutter] section), "
            f"got {type(conf).__name__}."
        )
    return None


def identifier_problems(context: dict) -> list[str]:
    """One message per identifier that is wrong; the service name is skipped when it is the id."""
    workflow_id = context.get("workflow_id", "")
    service_name = context.get("service_name", "")
    problems = [workflow_id_problem(workflow_id), conf_problem(context.get("conf"))]
    if service_name != workflow_id:
        problems.append(service_name_problem(service_name))
    return [problem for problem in problems if problem]


def read_application_package(location: str, base_dir: Path) -> bytes:
    """The bytes of the package at a path (relative to ``base_dir``) or an http(s)/file URL."""
    if re.match(r"(?i)(https?|file)://", location):
        try:
            with urllib.request.urlopen(location, timeout=URL_TIMEOUT_SECONDS) as response:
                return response.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise ValueError(
                f"application_package {shown(location)} could not be downloaded ({reason}): "
                "check the URL, or give a local path."
            ) from None
    path = (base_dir / Path(location).expanduser()).resolve()
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(
            f"application_package {shown(location)} cannot be read ({error.strerror}, "
            f"looked for {path}): give an existing file or a URL."
        ) from None


def parse_problem(content: bytes, location: str) -> str | None:
    """Why ``content`` is not a YAML/JSON mapping, or None. The deep check is the post hook's."""
    try:
        document = yaml.safe_load(content.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return f"application_package {shown(location)} is not UTF-8 text: give a CWL document."
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "syntax error"
        return (
            f"application_package {shown(location)} is not valid YAML{where}: {problem}; "
            "fix the syntax."
        )
    if not isinstance(document, dict):
        return (
            f"application_package {shown(location)} does not hold a YAML/JSON mapping: "
            "give a CWL document."
        )
    return None


def place_application_package(location: str, base_dir: Path, service_dir: Path) -> str | None:
    """Copy the package into the service folder; the problem that prevented it, or None."""
    try:
        content = read_application_package(location, base_dir)
    except ValueError as error:
        return str(error)
    problem = parse_problem(content, location)
    if problem is None:
        (service_dir / APP_PACKAGE_FILE).write_bytes(content)
    return problem


def caller_directory() -> Path:
    """Where the user ran cookiecutter: hooks run inside the new service folder instead."""
    return Path(os.environ.get("PWD") or Path.cwd())


def main() -> int:
    context = json.loads(
        r"""
{{ cookiecutter | tojson }}
""".strip()
    )
    problems = identifier_problems(context)
    location = context.get("application_package") or ""
    if not problems and location:
        problem = place_application_package(location, caller_directory(), Path.cwd())
        problems += [problem] if problem else []
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
