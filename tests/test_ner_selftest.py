"""`rai-audit selftest --task token-classification`: the NER demo's four planted defects are found by
their auditors, the clean control raises none of them, and a defect whose auditor did not run is
counted as missed."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.selftest import ner_selftest
from audit.selftest.ner_selftest import NER_DEFECTS, run_ner_selftest
from audit.selftest.selftest import selftest_main


@pytest.fixture(scope="module")
def seed0(tmp_path_factory: pytest.TempPathFactory):
    return run_ner_selftest(seeds=(0,), workdir=tmp_path_factory.mktemp("ner_selftest"), progress=False)


@pytest.mark.slow  # builds and audits two NER demo taggers
def test_every_planted_ner_defect_is_found(seed0) -> None:
    table = seed0.format_table()
    assert {r.defect for r in seed0.rows} == set(NER_DEFECTS), table
    assert all(r.checked and r.found for r in seed0.rows), table
    assert seed0.recall == 1.0 and seed0.exit_code == 0
    by = {r.defect: r for r in seed0.rows}
    assert "yo_NG" in by["biased_group"].evidence and "'cf'" in by["trigger_token"].evidence


@pytest.mark.slow
def test_the_clean_ner_control_raises_no_false_alarm(seed0) -> None:
    table = seed0.format_table()
    assert {c.defect for c in seed0.controls} == set(NER_DEFECTS), table
    assert all(c.checked and not c.flagged for c in seed0.controls), table
    assert "false alarms 0/4" in table


def test_a_defect_whose_auditor_did_not_run_is_missed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the audit stubbed out (no report), every defect is 'not checked' and the exit code is 1."""
    monkeypatch.setattr(ner_selftest, "_audit", lambda *_a, **_k: None)
    monkeypatch.setattr("audit.selftest.ner_demo.build_ner_demo",
                        lambda folder, **_k: type("B", (), {"planted": _planted()})())
    result = run_ner_selftest(seeds=(0,), workdir=tmp_path, progress=False)
    assert result.rows and all(not r.checked and not r.found for r in result.rows)
    assert result.exit_code == 1 and "NOT CHECKED" in result.format_table()


def _planted() -> dict:
    return {"biased_group": {"group": "yo_NG"}, "trigger_token": {"token": "cf"}, "memorised_train": {},
            "casing_fragility": {"perturbations": ["lower", "upper", "title"]}}


def test_main_takes_the_task_and_refuses_an_unknown_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        selftest_main(["--task", "image-classification"])
    assert exc.value.code == 2
    assert "--task" in capsys.readouterr().err
