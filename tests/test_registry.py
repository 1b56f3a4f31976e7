"""Plugin discovery: lazy, duplicate names and broken plugins reported, never fatal."""

from __future__ import annotations

from importlib import metadata

import pytest

from audit.auditors import base
from audit.auditors.base import Auditor, discover
from audit.results import AuditorResult


class GoodAuditor(Auditor):
    name = "good"
    description = "a test auditor"
    defaults = {"level": 1}

    def _run(self, ctx):
        return AuditorResult(auditor=self.name)


class RaisingAuditor(Auditor):
    name = "raising"

    def _run(self, ctx):
        raise ValueError("boom")


class NotAnAuditor:
    name = "impostor"


def _fake_entry_points(monkeypatch, specs):
    eps = [metadata.EntryPoint(name, value, base.ENTRY_POINT_GROUP) for name, value in specs]
    monkeypatch.setattr(base.metadata, "entry_points", lambda group: [e for e in eps if e.group == group])


def test_broken_duplicate_and_impostor_plugins_are_reported(monkeypatch):
    _fake_entry_points(monkeypatch, [
        ("good", "tests.test_registry:GoodAuditor"),
        ("missing", "no_such_module:Thing"),
        ("impostor", "tests.test_registry:NotAnAuditor"),
        ("raising", "tests.test_registry:RaisingAuditor"),
        ("raising", "tests.test_registry:GoodAuditor"),
    ])
    found = discover()
    assert found["good"].cls is GoodAuditor and not found["good"].error
    assert "failed to load" in found["missing"].error and found["missing"].cls is None
    assert "not a subclass" in found["impostor"].error
    assert "registered twice" in found["raising"].error


def test_discovery_without_loading_imports_nothing(monkeypatch):
    _fake_entry_points(monkeypatch, [("missing", "no_such_module:Thing")])
    info = discover(load=False)["missing"]
    assert info.cls is None and info.error == ""


def test_installed_built_ins_are_registered():
    names = set(discover(load=False))
    assert {"performance", "fairness", "explainability", "robustness", "privacy"} <= names


def test_an_auditor_that_raises_becomes_a_failed_section(demo_planted, planted_target, context_factory):
    result = RaisingAuditor().run(context_factory(demo_planted, planted_target))
    assert result.status == "failed" and "ValueError: boom" in result.reason
    assert "traceback" in result.extra


def test_unknown_option_is_named_with_suggestion():
    from audit.errors import AuditInputError

    with pytest.raises(AuditInputError, match=r"unknown option 'levle' \(did you mean 'level'\?\)"):
        GoodAuditor(levle=2)
