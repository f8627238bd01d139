"""Checks the Application Package placed in the new service with the service's own check.

The check lives in the generated ``service.py`` (the runner runs the same code before every
execution), so generation and execution can never disagree about a package. In the ADES flow no
package is given here: the ADES writes ``app-package.cwl`` after generation.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

APP_PACKAGE_FILE = "app-package.cwl"


def load_service(service_dir: Path):
    """The generated service module, imported from its file."""
    spec = importlib.util.spec_from_file_location("generated_service", service_dir / "service.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def check_application_package(service_dir: Path, workflow_id: str) -> tuple[list[str], list[str]]:
    """Errors and warnings of the package in ``service_dir``."""
    service = load_service(service_dir)
    findings = service.ApplicationPackage.check_file(service_dir / APP_PACKAGE_FILE, workflow_id)
    return findings.errors, findings.warnings


def main() -> int:
    context = json.loads(
        r"""
{{ cookiecutter | tojson }}
""".strip()
    )
    if not context.get("application_package"):
        return 0
    errors, warnings = check_application_package(Path.cwd(), context["workflow_id"])
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
