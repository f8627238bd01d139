"""Checks the cookiecutter context before anything is rendered.

Identifiers become a Python function, a folder and a Kubernetes namespace, so they are checked
here, before any file exists. When an Application Package is given it is read (path or URL)
and placed in the service folder as ``app-package.cwl``; the post-generation hook then parses
and checks it with the service's own code. Values arrive as JSON data, never as code.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

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
PATH_LIMIT = 300


def shown(value: str, limit: int = 60) -> str:
    """A value quoted for a one-line message, whatever it contains."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def read_application_package(location: str) -> bytes:
    """The bytes of the package at an absolute path or an http(s)/file URL."""
    if re.match(r"(?i)(https?|file)://", location):
        try:
            with urllib.request.urlopen(location, timeout=URL_TIMEOUT_SECONDS) as response:
                return response.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise ValueError(
                f"application_package {shown(location, PATH_LIMIT)} could not be downloaded "
                f"({reason}): check the URL, or give a local path."
            ) from None
    path = Path(location)
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(
            f"application_package {shown(location, PATH_LIMIT)} cannot be read ({error.strerror}): "
            "give an existing file or a URL."
        ) from None


def place_application_package(location: str, service_dir: Path) -> str | None:
    """Copy the package into the service folder; the problem that prevented it, or None.

    Parsing and checking it is the post-generation hook's, with the service's own code.
    """
    try:
        content = read_application_package(location)
    except ValueError as error:
        return str(error)
    (service_dir / APP_PACKAGE_FILE).write_bytes(content)
    return None


def main() -> int:
    context = json.loads(
        r"""
{{ cookiecutter | tojson }}
""".strip()
    )
    problems = identifier_problems(context)
    location = context.get("__application_package") or ""  # made absolute by CallerPaths
    if not problems and location:
        problem = place_application_package(location, Path.cwd())
        problems += [problem] if problem else []
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
