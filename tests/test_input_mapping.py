"""The kernel's input shapes as CWL parameters, and CWL results as the kernel's output strings."""

from __future__ import annotations

import pytest

URI = "https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI"
BBOX = "https://raw.githubusercontent.com/eoap/schemas/main/ogc.yaml#BBox"
BBOX_ENTRY = {
    "value": "[10, 45, 11, 46]",
    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "lowerCorner": "10 45",
    "upperCorner": "11 46",
}
HREF = "https://example.com/catalog.json"

CASES = {
    "boolean-false": ("boolean", {"value": "false", "dataType": "boolean"}, False),
    "boolean-true": ("boolean", {"value": "true", "dataType": "boolean"}, True),
    "boolean-capitalised": ("boolean?", {"value": "False"}, False),
    "int": ("int", {"value": "12", "dataType": "integer"}, 12),
    "long": ("long", {"value": "9000000000"}, 9000000000),
    "double": ("double", {"value": "0.5", "dataType": "double"}, 0.5),
    "float-union": (["null", "float"], {"value": "2.5"}, 2.5),
    "string": ("string", {"value": "hello", "dataType": "string"}, "hello"),
    "enum": ({"type": "enum", "symbols": ["a", "b"]}, {"value": "b"}, "b"),
    "any": ("Any", {"value": "x"}, "x"),
    "array": ("string[]", {"value": ["a", "b"], "isArray": "true", "length": "2"}, ["a", "b"]),
    "array-of-one-as-scalar": ("string[]", {"value": "a", "maxOccurs": "4"}, ["a"]),
    "int-array": (
        {"type": "array", "items": "int"},
        {"value": ["1", "2"], "isArray": "true"},
        [1, 2],
    ),
    "directory-by-reference": ("Directory", {"xlink:href": HREF, "value": "{...}"}, HREF),
    "optional-directory": ("Directory?", {"xlink:href": HREF, "value": "{...}"}, HREF),
    "directory-array": (
        "Directory[]",
        {"xlink:href": [HREF, HREF + "?2"], "value": ["{}", "{}"], "isArray": "true"},
        [HREF, HREF + "?2"],
    ),
    "file-by-reference": ("File", {"xlink:href": HREF, "cache_file": "/tmp/x.zca"}, HREF),
    "string-by-reference": ("string", {"xlink:href": HREF, "value": "{...}"}, HREF),
    "complex-by-value": (
        "string",
        {"value": '{"type": "Feature"}', "mimeType": "application/geo+json"},
        '{"type": "Feature"}',
    ),
    "record-by-value": ({"type": "record", "fields": []}, {"value": '{"a": 1}'}, {"a": 1}),
    "uri-record": (URI, {"value": HREF}, {"value": HREF}),
    "bbox-record": (BBOX, BBOX_ENTRY, {"bbox": [10.0, 45.0, 11.0, 46.0], "crs": "CRS84"}),
    "bbox-as-string": ("string", BBOX_ENTRY, "10,45,11,46"),
}


@pytest.mark.parametrize(("cwl_type", "entry", "expected"), CASES.values(), ids=CASES.keys())
def test_each_input_shape_maps_to_its_cwl_value(cwl_type, entry, expected, service):
    assert service.cwl_value("x", cwl_type, entry) == expected


@pytest.mark.parametrize(
    ("cwl_type", "entry", "message"),
    [
        ("boolean", {"value": "yes"}, "Input 'x' must be true or false, not 'yes'."),
        ("int", {"value": "1.5"}, "Input 'x' must be an integer, not '1.5'."),
        ("double", {"value": "high"}, "Input 'x' must be a number, not 'high'."),
        ("string", {"value": ["a", "b"], "isArray": "true"}, "Input 'x' takes one value, not 2."),
        ({"type": "record"}, {"value": "{oops"}, "Input 'x' must be a JSON object."),
    ],
)
def test_values_that_do_not_fit_are_refused_with_one_sentence(cwl_type, entry, message, service):
    with pytest.raises(service.InputError) as raised:
        service.cwl_value("x", cwl_type, entry)

    assert str(raised.value) == message


def test_absent_optional_inputs_are_left_out(service):
    workflow = {
        "inputs": {
            "aoi": "string",
            "note": "string?",
            "threshold": {"type": "double", "default": 0.5},
            "flag": "boolean",
        }
    }
    inputs = {
        "aoi": {"value": "1,2,3,4"},
        "note": {"value": "NULL", "inRequest": "false"},
        "threshold": {"value": "0.5", "inRequest": "false", "dataType": "double"},
        "flag": {"value": "false"},
        "unknown": {"value": "ignored"},
    }

    assert service.cwl_parameters(workflow, inputs) == {"aoi": "1,2,3,4", "flag": False}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s3://bucket/catalog.json", "s3://bucket/catalog.json"),
        ({"class": "Directory", "location": "file:///r"}, "file:///r"),
        (0.5, "0.5"),
        (["a", "b"], '["a", "b"]'),
        ({"type": "FeatureCollection"}, '{"type": "FeatureCollection"}'),
    ],
)
def test_outputs_reach_the_kernel_as_strings(value, expected, service):
    outputs = {"result": {"mimeType": "application/json"}}

    service.set_zoo_outputs(outputs, {"result": value})

    assert outputs["result"] == {"mimeType": "application/json", "value": expected}


def test_a_bounding_box_that_is_not_numbers_is_refused(service):
    with pytest.raises(service.InputError, match="must be a bounding box of numbers"):
        service.cwl_value("aoi", BBOX, {"value": "[1, 2, north, 4]", "crs": "EPSG:4326"})
