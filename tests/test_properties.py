"""Property-based tests: whatever identifiers and execute requests arrive, the checks and the
mapping answer with a value or with one readable sentence, never with a traceback."""

from __future__ import annotations

import importlib.util
import keyword
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TEMPLATE

spec = importlib.util.spec_from_file_location("pre_gen", TEMPLATE / "hooks" / "pre_gen_project.py")
pre_gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pre_gen)

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
identifier_like = st.one_of(
    st.text(),
    st.from_regex(r"[A-Za-z_-][A-Za-z0-9_-]{0,70}", fullmatch=True),
    st.sampled_from(keyword.kwlist),
)


def one_sentence(message: str) -> bool:
    return bool(message) and "\n" not in message and message.endswith(".")


@SETTINGS
@given(identifier_like)
def test_every_workflow_id_is_accepted_or_refused_in_one_sentence(workflow_id):
    problem = pre_gen.workflow_id_problem(workflow_id)

    if problem is not None:
        assert one_sentence(problem)
        return
    function_name = workflow_id.replace("-", "_")
    assert function_name.isidentifier() and function_name.isascii()
    assert not keyword.iskeyword(function_name)
    assert not any(content in workflow_id for content in pre_gen.FORBIDDEN_CONTENT)


@SETTINGS
@given(identifier_like, st.uuids())
def test_every_accepted_id_gives_a_valid_namespace(service, workflow_id, usid):
    if pre_gen.workflow_id_problem(workflow_id) is None:
        namespace = service.job_id_for(workflow_id, str(usid))
        assert DNS_LABEL.fullmatch(namespace) and len(namespace) <= 63
        assert str(usid)[:8] in namespace  # two jobs never share a namespace


@SETTINGS
@given(st.text())
def test_every_service_name_is_accepted_or_refused_in_one_sentence(service_name):
    problem = pre_gen.service_name_problem(service_name)

    assert problem is None or one_sentence(problem)


cwl_types = st.sampled_from(
    [
        "string",
        "int",
        "long",
        "float",
        "double",
        "boolean",
        "Directory",
        "File",
        "Any",
        "string?",
        "int[]",
        "boolean[]",
        "Directory[]",
        ["null", "double"],
        {"type": "array", "items": "float"},
        {"type": "enum", "symbols": ["a"]},
        {"type": "record", "fields": []},
        "https://raw.githubusercontent.com/eoap/schemas/main/ogc.yaml#BBox",
        "https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI",
    ]
)
texts = st.text(max_size=40)
zoo_entries = st.fixed_dictionaries(
    {"value": st.one_of(texts, st.lists(texts, max_size=4))},
    optional={
        "xlink:href": st.one_of(texts, st.lists(texts, max_size=3)),
        "isArray": st.just("true"),
        "dataType": st.sampled_from(["string", "integer", "double", "boolean"]),
        "lowerCorner": texts,
        "upperCorner": texts,
        "crs": texts,
        "inRequest": st.sampled_from(["true", "false"]),
    },
)


@SETTINGS
@given(cwl_types, zoo_entries)
def test_every_kernel_input_maps_or_is_refused_in_one_sentence(service, cwl_type, entry):
    try:
        service.cwl_value("x", cwl_type, entry)
    except service.InputError as error:
        assert one_sentence(str(error))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=10,
)


@SETTINGS
@given(st.dictionaries(texts, json_values, max_size=4), st.dictionaries(texts, st.just({})))
def test_every_execute_request_becomes_kernel_dicts(service, tmp_path, inputs, outputs):
    try:
        _, kernel_inputs, _ = service.kernel_call(
            {"inputs": inputs, "outputs": outputs}, tmp_path, tmp_path
        )
    except service.InputError as error:
        assert one_sentence(str(error))
        return
    assert set(kernel_inputs) == set(inputs)
    for entry in kernel_inputs.values():
        for value in entry.values():
            assert isinstance(value, str) or all(isinstance(v, str) for v in value)
