"""``navctl wait``'s conditions (navarch/_navctl/wait.py), pure: parsing ``--for`` and
judging an object in its JSON form, as kubectl does."""

from __future__ import annotations

from typing import Any

import pytest

from navarch._navctl.errors import NavctlError
from navarch._navctl.wait import WaitFor, parse_for, satisfied

POD: dict[str, Any] = {
    "metadata": {"name": "web", "generation": 1},
    "status": {"phase": "Running", "podIP": "10.244.1.5",
               "conditions": [{"type": "Ready", "status": "True"},
                              {"type": "PodScheduled", "status": "True"}],
               "containerStatuses": [{"ready": True}, {"ready": False}]},
}


@pytest.mark.parametrize(("text", "want"), [
    ("delete", WaitFor("delete")),
    ("Delete", WaitFor("delete")),
    ("create", WaitFor("create")),
    ("condition=Ready", WaitFor("condition", "Ready", "true")),
    ("condition=Ready=false", WaitFor("condition", "Ready", "false")),
    ("condition=Progressing=True", WaitFor("condition", "Progressing", "True")),
])
def test_parse_for(text: str, want: WaitFor) -> None:
    assert parse_for(text) == want


@pytest.mark.parametrize(("text", "why"), [
    ("", "--for must be delete, create"),
    ("ready", "unrecognized condition: 'ready'"),
    ("condition=", "unrecognized condition"),
    ("jsonpath=.status.phase=Running", "jsonpath wait format must be"),
    ("jsonpath={.status.phase}Running", "jsonpath wait format must be"),
    ("jsonpath={.items[x]}=1", "error parsing jsonpath"),
    ("jsonpath={range .items[*]}{end}=1", "takes one expression"),
])
def test_bad_for_says_what_is_accepted(text: str, why: str) -> None:
    with pytest.raises(NavctlError, match=why):
        parse_for(text)


@pytest.mark.parametrize(("text", "met"), [
    ("condition=Ready", True),
    ("condition=ready=TRUE", True),  # type and status compared without case
    ("condition=Ready=False", False),
    ("condition=Initialized", False),  # absent
    ("jsonpath={.status.phase}=Running", True),
    ("jsonpath='{.status.phase}'=Pending", False),
    ("jsonpath={.status.podIP}", True),  # present, not empty
    ("jsonpath={.status.hostIP}", False),
    ("jsonpath={.status.containerStatuses[0].ready}=true", True),
    ("create", True),
])
def test_satisfied(text: str, met: bool) -> None:
    assert satisfied(parse_for(text), POD) is met


def test_a_condition_behind_the_generation_does_not_count_yet() -> None:
    deployment = {"metadata": {"generation": 3}, "status": {
        "observedGeneration": 2, "conditions": [{"type": "Available", "status": "True"}]}}
    assert not satisfied(parse_for("condition=Available"), deployment)
    deployment["status"]["observedGeneration"] = 3
    assert satisfied(parse_for("condition=Available"), deployment)
    own = {"metadata": {"generation": 3}, "status": {"observedGeneration": 3, "conditions": [
        {"type": "Available", "status": "True", "observedGeneration": 2}]}}
    assert not satisfied(parse_for("condition=Available"), own)  # the condition's own first


def test_a_jsonpath_with_several_values_is_an_error() -> None:
    with pytest.raises(NavctlError, match="matches more than one value"):
        satisfied(parse_for("jsonpath={.status.containerStatuses[*].ready}=true"), POD)
