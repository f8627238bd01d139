"""Job ids double as Kubernetes namespaces: ZOO's dismiss computes the same name."""

from __future__ import annotations

import re

import pytest

USID = "0b8a7c4e-1d2f-4e5a-9b6c-7d8e9f0a1b2c"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def zoo_dismiss_namespace(process_id: str, usid: str) -> str:
    """ZooCalrissianRunner.shorten_namespace(processID.replace("_", "-") + "-" + usid)."""
    value = process_id.replace("_", "-") + "-" + usid
    while len(value) > 63:
        value = value[:-1]
        while value.endswith("-"):
            value = value[:-1]
    return value


@pytest.mark.parametrize(
    "workflow_id",
    ["water-bodies", "s2_cropper", "this_identifier_is_too_long_for_some_reason", "a" * 54, "x"],
)
def test_the_job_id_is_the_namespace_zoo_dismisses(workflow_id, service):
    assert service.job_id_for(workflow_id, USID) == zoo_dismiss_namespace(workflow_id, USID)


@pytest.mark.parametrize("workflow_id", ["Water-Bodies", "_x", "A_B_C", "water--bodies_"])
def test_names_zoo_would_get_wrong_are_made_valid_the_same_way(workflow_id, service):
    job_id = service.job_id_for(workflow_id, USID)

    assert DNS_LABEL.fullmatch(job_id) and len(job_id) <= 63
    assert job_id == zoo_dismiss_namespace(workflow_id, USID).lower().strip("-")
