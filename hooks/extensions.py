"""Jinja extensions of the template: user values stay literal; relative paths stay the caller's.

``LiteralValues``:

Cookiecutter renders every context value as a Jinja template, so a workflow id such as
``{{ cycler.__init__.__globals__.os.system('...') }}`` taken from a deployed CWL would run code
inside the ADES before any hook could reject it. This extension lets Jinja render only the
template's own text (cookiecutter.json, file and folder names, template files, hooks); any other
source containing Jinja markup is turned into a literal string, which the pre-generation hook
then rejects with a readable message.

It also keeps cookiecutter from printing a traceback when a hook rejects the input: the hook has
already said what is wrong in one line.

``CallerPaths``: hooks run inside the new service folder, so a relative ``application_package``
path is made absolute while cookiecutter still runs where the user called it.

Loaded through ``_extensions`` in cookiecutter.json; cookiecutter puts the template folder on
``sys.path`` while it renders, so this module is importable as ``hooks.extensions``.
"""

from __future__ import annotations

import json
import logging
import re
from functools import cached_property
from pathlib import Path

from jinja2.ext import Extension

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent


def _strings(value) -> set[str]:
    """Every string (keys and values) inside a JSON value."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(k) | _strings(v) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value))
    return set()


def literal_template(text: str) -> str:
    """A Jinja source that renders to exactly ``text``."""
    escaped = "".join(
        ch if (" " <= ch <= "~" and ch not in '\\"') else f"\\U{ord(ch):08x}" for ch in text
    )
    return '{{ "' + escaped + '" }}'


class HookFailureWithoutTraceback(logging.Filter):
    """Drops the traceback cookiecutter attaches to "hook script didn't exit successfully"."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def quiet_hook_failures() -> None:
    hooks_logger = logging.getLogger("cookiecutter.hooks")
    if not any(isinstance(f, HookFailureWithoutTraceback) for f in hooks_logger.filters):
        hooks_logger.addFilter(HookFailureWithoutTraceback())


class LiteralValues(Extension):
    """Renders untrusted template sources as literal text."""

    def __init__(self, environment) -> None:
        super().__init__(environment)
        quiet_hook_failures()

    @cached_property
    def trusted_sources(self) -> frozenset[str]:
        context_file = TEMPLATE_ROOT / "cookiecutter.json"
        trusted = _strings(json.loads(context_file.read_text(encoding="utf-8")))
        trusted |= {p.read_text(encoding="utf-8") for p in (TEMPLATE_ROOT / "hooks").glob("*.py")}
        for folder in TEMPLATE_ROOT.glob("*{{*}}*"):
            trusted.add(folder.name)
            trusted |= {str(p.relative_to(folder)) for p in folder.rglob("*")}
        return frozenset(trusted)

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        if name is not None:  # a template file loaded from the template folder
            return source
        env = self.environment
        markers = (env.variable_start_string, env.block_start_string, env.comment_start_string)
        if not any(marker in source for marker in markers):
            return source
        if source in self.trusted_sources:
            return source
        return literal_template(source)


def absolute_path(location: str) -> str:
    """A local path made absolute against the current folder; URLs and "" unchanged."""
    if not location or re.match(r"(?i)[a-z][a-z0-9+.-]*://", location):
        return location
    try:
        return str(Path(location).expanduser().absolute())
    except (OSError, RuntimeError, ValueError):
        return location  # the pre-generation hook reports it


class CallerPaths(Extension):
    """The ``absolute_path`` filter, used by cookiecutter.json while prompting."""

    def __init__(self, environment) -> None:
        super().__init__(environment)
        environment.filters["absolute_path"] = absolute_path
