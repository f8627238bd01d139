"""The hooks' pure functions, loaded from the unrendered template."""

from __future__ import annotations

import importlib.util
import keyword

import jinja2
import pytest

from conftest import TEMPLATE


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"hook_{name}", TEMPLATE / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pre_gen = load("pre_gen_project")
extensions = load("extensions")


@pytest.mark.parametrize("word", keyword.kwlist)
def test_every_python_keyword_is_refused_as_a_workflow_id(word):
    assert "cannot name the service function" in pre_gen.workflow_id_problem(word)


@pytest.mark.parametrize("workflow_id", ["water-bodies", "a", "_x", "s2_cropper", "a" * 54])
def test_valid_workflow_ids_have_no_problem(workflow_id):
    assert pre_gen.workflow_id_problem(workflow_id) is None


def test_the_longest_id_keeps_part_of_the_job_id_in_the_namespace():
    problem = pre_gen.workflow_id_problem("a" * 55)

    assert "use at most 54 characters" in problem


def test_messages_show_hostile_values_on_one_line():
    problem = pre_gen.workflow_id_problem("a\nb" + "c" * 100)

    assert "\n" not in problem
    assert problem.startswith("workflow_id 'a\\nbccc") and "ccc... cannot name" in problem


@pytest.mark.parametrize(
    "text",
    [
        "{{ 7 * 7 }}",
        '{% raw %}"\\x{% endraw %}',
        "quotes ' \" and \\ backslash\\",
        "non-ascii é ☃ 😀 and a\nnewline\tand tab",
        "{#comment#} }} {{",
    ],
)
def test_a_literal_template_renders_to_exactly_its_text(text):
    rendered = jinja2.Environment().from_string(extensions.literal_template(text)).render()

    assert rendered == text


def test_untrusted_markup_is_kept_literal_and_the_template_own_text_renders():
    env = jinja2.Environment(extensions=[extensions.LiteralValues])

    assert env.from_string("{{ 6 * 7 }}").render() == "{{ 6 * 7 }}"
    own = "{{ cookiecutter.workflow_id | replace('-', '_') }}"
    assert env.from_string(own).render(cookiecutter={"workflow_id": "a-b"}) == "a_b"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("", ""),
        ("https://example.com/app.cwl", "https://example.com/app.cwl"),
        ("file:///srv/app.cwl", "file:///srv/app.cwl"),
        ("/srv/app.cwl", "/srv/app.cwl"),
    ],
)
def test_absolute_path_leaves_urls_and_absolute_paths(location, expected):
    assert extensions.absolute_path(location) == expected


def test_absolute_path_resolves_a_relative_path_against_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert extensions.absolute_path("packages/app.cwl") == str(tmp_path / "packages" / "app.cwl")
