"""SectionPart: what one part of an auditor returns, added up in section order into the result."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from audit.core.results import EXTRA_CLASH, AuditorResult, Figure, Finding, Metric, SectionPart, Table


def _groups() -> SectionPart:
    return SectionPart(metrics=[Metric("selection_rate", 0.4, slice="age=young")],
                       tables=[Table(name="groups", columns=["group"], rows=[["young"]])],
                       figures=[Figure.bar("selection_rate:age", labels=["young"], values=[0.4])],
                       findings=[Finding("warn", "Group young is selected less")],
                       extra={"notes": ["age [x]: too few groups"]})


def _mitigation() -> SectionPart:
    return SectionPart(metrics=[Metric("overall_auc", 0.9)], findings=[Finding("fail", "worse")],
                       extra={"notes": ["mitigation on age: failed"], "mitigation_note": "advisory"})


def test_parts_add_up_in_order_and_join_notes() -> None:
    a, b = _groups(), _mitigation()
    total = a + b
    assert [m.name for m in total.metrics] == ["selection_rate", "overall_auc"]
    assert [f.severity for f in total.findings] == ["warn", "fail"]
    assert [t.name for t in total.tables] == ["groups"] and len(total.figures) == 1
    assert total.extra == {"notes": ["age [x]: too few groups", "mitigation on age: failed"],
                           "mitigation_note": "advisory"}
    assert a.extra["notes"] == ["age [x]: too few groups"]  # adding never changes a part
    assert SectionPart.merge(a, b) == total
    assert SectionPart.merge() == SectionPart()
    assert SectionPart.merge(SectionPart(), a) == a


def test_a_key_set_by_two_parts_is_an_error_unless_both_are_lists() -> None:
    first = SectionPart(extra={"note": "one"})
    with pytest.raises(ValueError, match=re.escape(EXTRA_CLASH.format(key="note", first="str", second="str"))):
        first + SectionPart(extra={"note": "two"})
    with pytest.raises(ValueError, match="'notes'"):
        SectionPart(extra={"notes": ["a"]}) + SectionPart(extra={"notes": "b"})


def test_a_part_cannot_be_changed_once_returned() -> None:
    part = _groups()
    assert isinstance(part.metrics, tuple) and isinstance(part.findings, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        part.metrics = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        part.extra["note"] = "late"  # type: ignore[index]
    with pytest.raises(TypeError):
        SectionPart(_groups().metrics)  # type: ignore[misc]  # keyword-only


def test_the_merged_part_becomes_the_section_result() -> None:
    result = (_groups() + _mitigation()).to_result(auditor="fairness", status="failed", reason="why",
                                                   timings={"groups": 1.5})
    assert isinstance(result, AuditorResult)
    assert (result.auditor, result.status, result.reason, result.timings) == ("fairness", "failed", "why",
                                                                             {"groups": 1.5})
    assert result.metric("overall_auc").value == 0.9 and result.table("groups").rows == [["young"]]
    assert type(result.extra) is dict and result.extra["mitigation_note"] == "advisory"
    again = AuditorResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()
