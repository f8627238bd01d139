"""Checks the Application Package placed in the new service with the service's own check.

The check lives in the generated ``service.py`` (the runner runs the same code before every
execution), so generation and execution can never disagree about a package. In the ADES flow no
package is given here: the ADES writes ``app-package.cwl`` after generation.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

APP_PACKAGE_FILE = "app-package.cwl"


def module_level_names(statements: list[ast.stmt]) -> list[str]:
    """Every name a module binds at its top level (imports, defs, classes, assignments)."""
    names = []
    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [(alias.asname or alias.name).split(".")[0] for alias in node.names]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.Try):
            blocks = [node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)]
            for block in blocks:
                names += module_level_names(block)
    return names


def name_clash_problems(service_dir: Path, names: list[str]) -> list[str]:
    """The generated names (function, handler class) that shadow a name of service.py."""
    tree = ast.parse((service_dir / "service.py").read_text(encoding="utf-8"))
    counts = Counter(module_level_names(tree.body))
    return [
        f"workflow_id gives the service the name {name!r}, which service.py already uses for "
        "its own code: choose another Workflow id."
        for name in names
        if counts[name] > 1
    ]


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
    service_dir = Path.cwd()
    errors = name_clash_problems(
        service_dir, [context["__function_name"], context["__handler_class"]]
    )
    warnings = []
    if not errors and context.get("application_package"):
        errors, warnings = check_application_package(service_dir, context["workflow_id"])
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
