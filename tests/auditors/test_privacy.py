"""The privacy auditor finds the planted memorisation and the planted PII, leaves the clean
control alone, matches scikit-learn, and never lets raw PII out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from audit.auditors.privacy._auditor import SKIP_NO_TRAIN, PrivacyAuditor
from audit.errors import AuditInputError
from audit.report.html import render_section
from tests._text import one_line

ATTACKS = ("loss", "confidence", "entropy", "modified_entropy")
FAST = {"n_bootstrap": 200}


def _no_finding_above_info(result: Any) -> bool:
    return all(f.severity == "info" for f in result.findings)


def _leak_findings(result: Any) -> list[Any]:
    return [f for f in result.findings if f.evidence.get("kind") == "leakage" and f.severity in ("warn", "fail")]


@pytest.fixture(scope="module")
def shifted(demo_clean: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The clean control with mostly short "members" against mostly long non-members."""
    from audit.selftest.demo import build_shifted_control

    return build_shifted_control(demo_clean, tmp_path_factory.mktemp("shifted"), seed=0)


def test_loss_attack_finds_the_memorised_training_split(demo_planted: Any, planted_target: Any,
                                                        context_factory: Any) -> None:
    ctx = context_factory(demo_planted, planted_target, with_train=True)
    result = PrivacyAuditor(**FAST).run(ctx)
    assert result.status == "ok", result.reason
    loss_auc = result.metric("mia_auc", "loss")
    assert loss_auc.value > 0.7 and loss_auc.ci_low > 0.6
    headline = result.metric("mia_auc")
    assert headline.value == max(result.metric("mia_auc", a).value for a in ATTACKS)
    assert "Strongest attack" in headline.description
    # The leakage finding judges the margin over the best blind baseline, which is near chance here.
    auc_findings = [f for f in result.findings if f.evidence.get("metric") == "mia_auc_margin"]
    assert [f.severity for f in auc_findings] == ["fail"]
    assert auc_findings[0].evidence["kind"] == "leakage"
    assert result.metric("mia_blind_auc").value < 0.6
    assert not [f for f in result.findings if f.evidence.get("kind") == "distribution_shift" and f.severity != "info"]
    for name in ("mia_advantage", "mia_balanced_accuracy", "mia_tpr_at_1pct_fpr", "mia_tpr_at_0_1pct_fpr"):
        for attack in ATTACKS:
            m = result.metric(name, attack)
            assert 0 <= m.ci_low <= m.value <= m.ci_high <= 1


def test_metric_values_equal_sklearn_on_independently_computed_losses(demo_planted: Any, planted_target: Any,
                                                                      context_factory: Any) -> None:
    ctx = context_factory(demo_planted, planted_target, with_train=True)
    auditor = PrivacyAuditor(mia_examples=300, **FAST)
    result = auditor.run(ctx)
    sample = auditor.membership_scores(ctx)  # the same seeded sample the run used
    texts = [ctx.train.texts[i] for i in sample.members] + [ctx.data.texts[i] for i in sample.nonmembers]
    labels = np.r_[ctx.train.labels[sample.members], ctx.data.labels[sample.nonmembers]]
    # Our own loss from the raw logits, then scikit-learn on it.
    logits = planted_target.predict_logits(texts).astype(np.float64)
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    loss = -logp[np.arange(len(texts)), labels]
    y = np.r_[np.ones(len(sample.members)), np.zeros(len(sample.nonmembers))]
    np.testing.assert_allclose(-loss, sample.scores["loss"], rtol=1e-6, atol=1e-9)
    fpr, tpr, _ = roc_curve(y, -loss)
    assert result.metric("mia_auc", "loss").value == pytest.approx(roc_auc_score(y, -loss), abs=1e-9)
    assert result.metric("mia_tpr_at_1pct_fpr", "loss").value == pytest.approx(tpr[fpr <= 0.01].max())
    assert result.metric("mia_tpr_at_0_1pct_fpr", "loss").value == pytest.approx(tpr[fpr <= 0.001].max())
    assert result.metric("mia_advantage", "loss").value == pytest.approx((tpr - fpr).max())
    for attack in ATTACKS:
        assert result.metric("mia_auc", attack).value == pytest.approx(roc_auc_score(y, sample.scores[attack]))


def test_clean_control_is_not_flagged(demo_clean: Any, clean_target: Any, context_factory: Any) -> None:
    """Over several seeds (member/non-member samples), the control's loss-attack AUC interval holds
    0.5 in most, the mean AUC is near chance, and nothing is flagged above info. (A 95% interval
    misses the truth 1 time in 20 by design, so one seed in several may just exclude 0.5.)"""
    aucs, covered = [], 0
    for seed in (0, 1, 2, 3):
        ctx = context_factory(demo_clean, clean_target, with_train=True, seed=seed)
        result = PrivacyAuditor(mia_examples=400, **FAST).run(ctx)
        auc = result.metric("mia_auc", "loss")
        aucs.append(auc.value)
        covered += auc.ci_low <= 0.5 <= auc.ci_high
        assert _no_finding_above_info(result), [f.title for f in result.findings]
    assert covered >= 3, aucs
    assert abs(np.mean(aucs) - 0.5) < 0.04, aucs


def test_samples_differ_by_seed_and_repeat_for_the_same_seed(demo_clean: Any, clean_target: Any,
                                                            context_factory: Any) -> None:
    auditor = PrivacyAuditor(mia_examples=100)
    a = auditor.membership_scores(context_factory(demo_clean, clean_target, with_train=True, seed=0))
    b = auditor.membership_scores(context_factory(demo_clean, clean_target, with_train=True, seed=0))
    c = auditor.membership_scores(context_factory(demo_clean, clean_target, with_train=True, seed=1))
    assert np.array_equal(a.members, b.members) and np.array_equal(a.nonmembers, b.nonmembers)
    assert not np.array_equal(a.members, c.members)
    assert a.n == 100 and len(set(a.members)) == 100


def test_rows_in_both_files_are_left_out_of_both_sides(demo_planted: Any, planted_target: Any,
                                                       context_factory: Any) -> None:
    ctx = context_factory(demo_planted, planted_target, with_train=True)
    sample = PrivacyAuditor(mia_examples=10_000).membership_scores(ctx)
    member_texts = {ctx.train.texts[i] for i in sample.members}
    assert not member_texts & {ctx.data.texts[i] for i in sample.nonmembers}
    assert sample.overlap["eval_rows"] > 0  # the demo's templated sentences do repeat
    assert sample.n == min(len(ctx.train) - sample.overlap["train_rows"], len(ctx.data) - sample.overlap["eval_rows"])


def test_without_members_the_attack_is_reported_as_not_tested(demo_planted: Any, planted_target: Any,
                                                              context_factory: Any) -> None:
    ctx = context_factory(demo_planted, planted_target, with_train=False)
    result = PrivacyAuditor(**FAST).run(ctx)
    assert result.status == "ok"
    assert result.extra["membership"] == {"ran": False, "reason": SKIP_NO_TRAIN}
    assert not [m for m in result.metrics if m.name.startswith("mia_")]
    assert result.metric("pii_rows", "eval").value == 0
    html = render_section(result)
    assert "Not tested: no training data was given" in one_line(html)
    assert "no differential-privacy guarantee" in one_line(html).lower()


def test_reference_models_calibrate_the_attack(demo_planted: Any, demo_clean: Any, planted_target: Any,
                                               context_factory: Any) -> None:
    # The control was trained on an independent sample of the same distribution: an "out" model
    # for every row, i.e. an offline LiRA reference.
    ctx = context_factory(demo_planted, planted_target, with_train=True)
    result = PrivacyAuditor(reference_models=[str(demo_clean.model_dir)], mia_examples=400, **FAST).run(ctx)
    ref = result.extra["membership"]["reference"]
    assert ref["ran"] and ref["mode"] == "offline" and ref["models"] == 1
    assert result.metric("mia_auc", "reference").value > 0.65
    # Calibration finds members at a low FPR that the uncalibrated loss attack cannot.
    assert result.metric("mia_tpr_at_1pct_fpr", "reference").value > result.metric("mia_tpr_at_1pct_fpr", "loss").value


def test_reference_model_with_other_labels_is_refused(demo_planted: Any, demo_clean: Any, planted_target: Any,
                                                      context_factory: Any, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(demo_clean.model_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["id2label"] = {"0": "bad", "1": "good"}
    config["label2id"] = {"bad": 0, "good": 1}
    (other / "config.json").write_text(json.dumps(config))
    ctx = context_factory(demo_planted, planted_target, with_train=True)
    with pytest.raises(AuditInputError, match=r"reference model .*other: labels \['bad', 'good'\] differ"):
        PrivacyAuditor(reference_models=[str(other)], mia_examples=50, n_bootstrap=20).run(ctx)


def test_train_reference_is_refused_for_large_models(demo_planted: Any, planted_target: Any, context_factory: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import audit.auditors.privacy._reference as reference

    monkeypatch.setattr(reference, "MAX_REFERENCE_PARAMS", 1000)
    ctx = context_factory(demo_planted, planted_target, with_train=True)
    result = PrivacyAuditor(train_reference=2, mia_examples=50, n_bootstrap=50).run(ctx)
    ref = result.extra["membership"]["reference"]
    assert not ref["ran"] and "parameters" in ref["reason"] and "reference_models" in ref["reason"]
    assert "reference" not in result.extra["membership"]["attacks"]


@pytest.mark.slow
def test_train_reference_trains_seeded_online_references(demo_planted: Any, planted_target: Any,
                                                         context_factory: Any) -> None:
    ctx = context_factory(demo_planted, planted_target, with_train=True)
    result = PrivacyAuditor(train_reference=2, reference_epochs=3, mia_examples=60, n_bootstrap=50).run(ctx)
    ref = result.extra["membership"]["reference"]
    assert ref["ran"] and ref["mode"] == "online" and ref["models"] == 2
    m = result.metric("mia_auc", "reference")
    assert 0 <= m.value <= 1 and m.ci_low <= m.value <= m.ci_high


# ------------------------------------------------------------------- blind baselines

def test_blind_baselines_and_margins_equal_sklearn_on_the_same_scores(demo_planted: Any, planted_target: Any,
                                                                     clean_target: Any, context_factory: Any) -> None:
    ctx = context_factory(demo_planted, planted_target, with_train=True)
    auditor = PrivacyAuditor(mia_examples=300, **FAST)
    result = auditor.run(ctx)
    sample = auditor.membership_scores(ctx)
    y = sample.y
    assert set(sample.blind) == {"length_tokens", "length_words", "label", "ngrams", "ngrams_x_label"}
    aucs, tprs = {}, {}
    for name, s in {**sample.scores, **sample.blind}.items():
        fpr, tpr, _ = roc_curve(y, s)
        aucs[name], tprs[name] = roc_auc_score(y, s), tpr[fpr <= 0.01].max()
        if name in sample.blind:
            assert result.metric("mia_blind_auc", name).value == pytest.approx(aucs[name], abs=1e-12)
            assert result.metric("mia_blind_tpr_at_1pct_fpr", name).value == pytest.approx(tprs[name])
            assert result.metric("mia_blind_tpr_at_0_1pct_fpr", name).value == pytest.approx(tpr[fpr <= 0.001].max())
    best = max(sample.blind, key=lambda b: aucs[b])
    best_tpr = max(sample.blind, key=lambda b: (tprs[b], aucs[b]))
    assert result.metric("mia_blind_auc").value == pytest.approx(aucs[best])
    for attack in ATTACKS:
        margin = result.metric("mia_auc_margin", attack)
        assert margin.value == pytest.approx(aucs[attack] - max(0.5, aucs[best]), abs=1e-12)
        assert margin.ci_low <= margin.value <= margin.ci_high
        assert result.metric("mia_tpr_at_1pct_fpr_margin", attack).value == pytest.approx(
            tprs[attack] - max(0.01, tprs[best_tpr]))
    assert result.metric("mia_auc_margin").value == max(result.metric("mia_auc_margin", a).value for a in ATTACKS)
    # Blind means blind: the same rows under another model get the same baseline scores.
    other = auditor.membership_scores(context_factory(demo_planted, clean_target, with_train=True))
    assert all(np.array_equal(other.blind[b], sample.blind[b]) for b in sample.blind)
    assert not np.array_equal(other.scores["loss"], sample.scores["loss"])


def test_memorisation_is_found_over_the_blind_baselines_and_after_matching(demo_planted: Any, planted_target: Any,
                                                                          context_factory: Any) -> None:
    ctx = context_factory(demo_planted, planted_target, with_train=True)
    result = PrivacyAuditor(mia_examples=400, **FAST).run(ctx)
    assert result.metric("mia_blind_auc").value < 0.6  # members and non-members: one distribution
    margin = result.metric("mia_auc_margin")
    assert margin.ci_low > 0.1
    matched = result.extra["membership"]["matched"]
    assert matched["ran"] and matched["members_kept"] == matched["nonmembers_kept"] >= 0.6 * 400
    assert result.metric("mia_matched_rows").value == 2 * matched["members_kept"]
    assert result.metric("mia_auc_matched").value > 0.7
    assert abs(result.metric("mia_blind_auc_matched").value - 0.5) < 0.1
    assert [f.severity for f in _leak_findings(result)] == ["fail"]


def test_distribution_shift_control_is_not_flagged_as_leaking(shifted: Any, clean_target: Any,
                                                             context_factory: Any) -> None:
    """The regression test for the bug: a model that memorised nothing, "members" mostly short
    rows and non-members mostly long ones. The raw attack separates them well above chance; so
    does a rule that only counts words; the leakage verdict must not follow the raw AUC."""
    ctx = context_factory(shifted, clean_target, with_train=True)
    result = PrivacyAuditor(mia_examples=400, **FAST).run(ctx)
    raw = result.metric("mia_auc", "loss")
    assert raw.value > 0.75 and raw.ci_low > PrivacyAuditor.defaults["auc_max"]  # the old rule would flag it
    assert result.metric("mia_blind_auc", "length_words").value > 0.75
    blind = result.metric("mia_blind_auc")
    assert blind.ci_low > 0.75
    assert result.metric("mia_auc_margin").value < 0.05
    assert not _leak_findings(result), [f.title for f in result.findings]
    (shift,) = [f for f in result.findings if f.evidence.get("kind") == "distribution_shift"]
    assert shift.severity == "warn"
    assert shift.title.startswith(
        f"Members and non-members are distinguishable without the model: AUC {blind.value:.3f}")
    assert shift.title.endswith("the raw attack AUC cannot be read as leakage (see the matched comparison)")
    assert "--holdout-data" in shift.detail
    judged = result.metric("mia_leakage_margin")  # judged on the matched rows, where nothing leaks
    assert judged.value < 0.1 and "matched" in judged.description
    mia = result.extra["membership"]
    assert mia["distinguishable_without_model"] is True
    assert mia["statements"][0] == {"kind": "warn", "text": shift.title + "."}
    matched = mia["matched"]
    assert matched["ran"] and 20 <= matched["members_kept"] < 0.6 * mia["members"]
    assert abs(result.metric("mia_auc_matched", "loss").value - 0.5) < 0.1
    html = render_section(result)
    assert '<div class="finding finding-warn">' in html and "distinguishable without the model" in html
    assert f"kept {matched['members_kept']} of {mia['members']} members" in html
    assert "blind: length in tokens" in html and "margin over best blind" in html


@pytest.mark.parametrize("members_short", [0.85, 0.15])
def test_memorisation_under_a_length_shift_is_still_found_on_matched_rows(members_short: float, demo_planted: Any,
                                                                         planted_target: Any, context_factory: Any,
                                                                         tmp_path: Path) -> None:
    """A shift and a leak together: the raw margin over a length baseline hides the leak (AUCs do
    not add up), so the verdict moves to the matched rows, where the blind baselines are near
    chance and the memorised rows still stand out."""
    from audit.selftest.demo import build_shifted_control

    both = build_shifted_control(demo_planted, tmp_path, seed=0, majority=members_short, leaking=True)
    result = PrivacyAuditor(mia_examples=400, **FAST).run(context_factory(both, planted_target, with_train=True))
    assert result.extra["membership"]["distinguishable_without_model"] is True
    leaks = _leak_findings(result)
    assert leaks and all(f.evidence["rows"] == "matched" for f in leaks), [f.title for f in result.findings]
    assert result.metric("mia_leakage_margin").value > 0.1
    assert result.metric("mia_blind_auc_matched").ci_low < PrivacyAuditor.defaults["blind_auc_max"]


def test_a_label_distribution_shift_is_not_read_as_leakage(demo_clean: Any, clean_target: Any,
                                                           context_factory: Any, tmp_path: Path) -> None:
    """Non-members 85% of one class: the label baseline sees it; no raw number (AUC or TPR at low
    FPR) may then become a leakage finding on a model that memorised nothing."""
    frame = pd.read_csv(demo_clean.eval_path)
    positive = frame.label.astype(str).str.lower().isin(["1", "positive"])
    pos, neg = frame[positive], frame[~positive]
    skewed = pd.concat([pos.iloc[:340], neg.iloc[:60]]).sample(frac=1.0, random_state=0)
    skewed.to_csv(tmp_path / "eval.csv", index=False)
    build = SimpleNamespace(model_dir=demo_clean.model_dir, eval_path=tmp_path / "eval.csv",
                            train_path=demo_clean.train_path)
    result = PrivacyAuditor(mia_examples=400, **FAST).run(context_factory(build, clean_target, with_train=True))
    assert result.metric("mia_blind_auc", "label").value > 0.6
    assert not _leak_findings(result), [f.title for f in result.findings]


def test_holdout_rows_are_the_nonmembers_when_given(demo_planted: Any, planted_target: Any, context_factory: Any,
                                                    tmp_path: Path) -> None:
    from audit.engine.data import load_evalset

    frame = pd.read_csv(demo_planted.eval_path)
    frame.iloc[:400].to_csv(tmp_path / "eval.csv", index=False)
    frame.iloc[400:].to_csv(tmp_path / "holdout.csv", index=False)
    build = SimpleNamespace(model_dir=demo_planted.model_dir, eval_path=tmp_path / "eval.csv",
                            train_path=demo_planted.train_path)
    ctx = context_factory(build, planted_target, with_train=True)
    ctx.holdout = load_evalset(tmp_path / "holdout.csv", label_names=planted_target.label_names)
    auditor = PrivacyAuditor(mia_examples=300, **FAST)
    result = auditor.run(ctx)
    sample = auditor.membership_scores(ctx)
    mia = result.extra["membership"]
    assert mia["nonmembers_from"] == "holdout" and mia["nonmember_source"] == "holdout.csv"
    # Non-member scores are the model's losses on held-out rows, not on eval rows.
    texts = [ctx.holdout.texts[i] for i in sample.nonmembers]
    logits = planted_target.predict_logits(texts).astype(np.float64)
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    labels = ctx.holdout.labels[sample.nonmembers]
    np.testing.assert_allclose(sample.scores["loss"][sample.n:], logp[np.arange(len(texts)), labels], rtol=1e-6)
    assert result.metric("mia_auc", "loss").value > 0.7 and _leak_findings(result)
    assert any("held-out rows (holdout.csv, --holdout-data)" in s["text"] for s in mia["statements"])
    assert any("held-out rows (--holdout-data)" in line for line in result.extra["tested"])


def test_holdout_data_flows_from_the_command_line_and_results_repeat_under_the_seed(
        demo_planted: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from audit.cli import main

    frame = pd.read_csv(demo_planted.eval_path)
    frame.iloc[:200].to_csv(tmp_path / "eval.csv", index=False)
    frame.iloc[400:].to_csv(tmp_path / "holdout.csv", index=False)
    outs = []
    for name in ("a", "b"):
        code = main(["run", str(demo_planted.model_dir), "--data", str(tmp_path / "eval.csv"), "--train-data",
                     str(demo_planted.train_path), "--holdout-data", str(tmp_path / "holdout.csv"),
                     "--auditors", "privacy", "--out", str(tmp_path / name), "--seed", "3", "--quiet",
                     "--option", "privacy.mia_examples=150", "--option", "privacy.n_bootstrap=50"])
        assert code == 0, capsys.readouterr()
        data = json.loads((tmp_path / name / "results.json").read_text())
        for key in ("created", "timings"):
            data["metadata"].pop(key)
        data["metadata"]["config"].pop("out")
        data["results"][0].pop("timings")
        outs.append(data)
    assert outs[0] == outs[1]
    meta, mia = outs[0]["metadata"], outs[0]["results"][0]["extra"]["membership"]
    assert meta["config"]["holdout_data"] == str(tmp_path / "holdout.csv")
    assert meta["holdout"]["rows"] == len(frame) - 400 and len(meta["holdout"]["fingerprint"]) == 64
    assert mia["nonmembers_from"] == "holdout" and mia["members"] == 150
    html = (tmp_path / "a" / "report.html").read_text()
    assert "Held-out data" in html and "held-out rows (<code>--holdout-data</code>)" in html
    card = (tmp_path / "a" / "README.md").read_text()
    assert "Membership inference:" in card and "Margin of the attack over it:" in card
    assert "Matched comparison on length in tokens" in card


@pytest.mark.parametrize(("options", "match"), [
    ({"mia_examples": 0}, "option privacy.mia_examples: expected an integer >= 1"),
    ({"match_bins": 0}, "option privacy.match_bins: expected an integer >= 1"),
    ({"blind_auc_max": 1.5}, r"option privacy.blind_auc_max: expected a finite number >= 0 and <= 1"),
    ({"auc_max": 1.5}, r"option privacy.auc_max: expected a finite number >= 0 and <= 1"),
    ({"reference_models": "one/dir"}, "option privacy.reference_models: expected a list of strings"),
    ({"train_reference": -1}, "option privacy.train_reference: expected an integer >= 0"),
    ({"pii_columns": "text"}, "option privacy.pii_columns: expected a list of strings"),
])
def test_bad_options_are_named(options: dict[str, Any], match: str) -> None:
    with pytest.raises(AuditInputError, match=match):
        PrivacyAuditor(**options)


# ------------------------------------------------------------------------------------ PII

HOSTILE_COLUMN = '<b onmouseover="alert(1)">notes</b>'
EVAL_PII = [
    "the man emailed john.doe@example.com about the food",
    "card 4111 1111 1111 1111 was charged",
    "bad card 4111 1111 1111 1112 was refused",
    "iban GB82 WEST 1234 5698 7654 32 paid",
    "iban GB82 WEST 1234 5698 7654 33 is wrong",
    "ssn 219-09-9999 on file",
    "ssn 000-12-3456 is not valid",
    "call (212) 555-0142 today",
    "logged from 203.0.113.7 and 2001:db8::8a2e:370:7334",
    "see https://admin:s3cret@db.example.com/x",
]
TRAIN_PII = [
    "card 5555 5555 5555 4444 on file",
    "iban DE89 3704 0044 0532 0130 00 paid",
    "iban DE89 3704 0044 0532 0130 too short",
]
RAW_VALUES = [
    "john.doe@example.com", "john.doe", "alice.smith@example.org", "alice.smith", "4111 1111 1111 1111",
    "4111111111111111", "4111 1111 1111 1112", "GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432",
    "GB82 WEST 1234 5698 7654 33", "219-09-9999", "000-12-3456", "555-0142", "203.0.113.7", "8a2e:370:7334",
    "admin:s3cret", "s3cret", "5555 5555 5555 4444", "DE89 3704 0044 0532 0130 00", "DE89370400440532013000",
]
EXPECTED_EVAL = {"email": 2, "payment_card": 1, "iban": 1, "us_ssn": 1, "phone": 1, "ipv4": 1, "ipv6": 1,
                 "url_credentials": 1}
EXPECTED_TRAIN = {"payment_card": 1, "iban": 1}


def _planted_pii_build(demo: Any, tmp_path: Path) -> Any:
    eval_frame = pd.read_csv(demo.eval_path).head(60).copy()
    eval_frame.loc[: len(EVAL_PII) - 1, "text"] = EVAL_PII
    eval_frame[HOSTILE_COLUMN] = ""
    eval_frame.loc[20, HOSTILE_COLUMN] = "write to alice.smith@example.org"
    train_frame = pd.read_csv(demo.train_path).head(60).copy()
    train_frame.loc[: len(TRAIN_PII) - 1, "text"] = TRAIN_PII
    eval_frame.to_csv(tmp_path / "eval.csv", index=False)
    train_frame.to_csv(tmp_path / "train.csv", index=False)
    return SimpleNamespace(model_dir=demo.model_dir, eval_path=tmp_path / "eval.csv",
                           train_path=tmp_path / "train.csv")


def test_pii_scan_counts_planted_values_and_never_prints_them(demo_planted: Any, planted_target: Any,
                                                              context_factory: Any, tmp_path: Path) -> None:
    build = _planted_pii_build(demo_planted, tmp_path)
    ctx = context_factory(build, planted_target, with_train=True)
    result = PrivacyAuditor(n_bootstrap=50).run(ctx)
    assert result.status == "ok", result.reason
    for split, expected in (("eval", EXPECTED_EVAL), ("train", EXPECTED_TRAIN)):
        for pii_type in EXPECTED_EVAL:
            got = result.metric("pii_matches", f"{split}/{pii_type}").value
            assert got == expected.get(pii_type, 0), (split, pii_type, got)
    assert result.metric("pii_rows", "eval").value == 8  # 7 valid planted texts + the note; look-alikes not counted
    severities = {f.title.split(": ")[0]: f.severity for f in result.findings if "Personal" in f.title}
    assert severities == {"Personal information in the eval data": "info",
                          "Personal information in the train data": "warn"}
    table = result.table("pii").to_frame().set_index(["data", "type"])
    assert table.loc[("eval", "payment_card"), "masked examples"] == "**** **** **** 1111"
    assert table.loc[("eval", "email"), "masked examples"] == "j***@e***.com; a***@e***.org"
    assert table.loc[("eval", "email"), "columns"] == f"{HOSTILE_COLUMN}, text"

    html = render_section(result)
    blob = json.dumps(result.to_dict())
    for raw in RAW_VALUES:
        assert raw not in html, raw
        assert raw not in blob, raw
    assert "**** **** **** 1111" in one_line(html) and "j***@e***.com" in html
    assert "<b onmouseover" not in html and "&lt;b onmouseover=" in html


def test_section_renders_attacks_roc_and_scope(demo_planted: Any, planted_target: Any, context_factory: Any) -> None:
    ctx = context_factory(demo_planted, planted_target, with_train=True)
    result = PrivacyAuditor(mia_examples=200, n_bootstrap=50).run(ctx)
    html = render_section(result)
    for text in ("Membership inference", "loss threshold (Yeom et al. 2018)",
                 "modified entropy (Song &amp; Mittal 2021)",
                 "<svg", "log-log", "TPR @ 1% FPR", "needs &gt;= 1000 non-members", "Not tested: Reference-calibrated",
                 "Personal information in the data", "What was and was not tested",
                 "blind: character and word n-grams (logistic regression)", "margin over best blind", "AUC matched",
                 "Best blind baseline (text and label only, no model)", "mia_auc_margin", "mia_blind_auc",
                 "evaluation rows", "Tested: Blind baselines that never query the model"):
        assert text in one_line(html), text
    assert any("Too few non-members (200)" in f.title and f.severity == "info" for f in result.findings)
    json.dumps(result.to_dict())  # JSON-able


def test_the_shift_control_draws_what_the_files_hold(tmp_path: Path) -> None:
    """Some seeds' corpora hold fewer short rows than the asked share: the control takes them all
    and fills up with long rows instead of failing ('larger sample than population')."""
    from audit.selftest.demo import DemoBuild, build_shifted_control

    short = [{"text": "good film", "label": 1}] * 30
    long_ = [{"text": "the long and winding film went on and on for ages", "label": 0}] * 600
    pd.DataFrame(short + long_).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(long_ + short).to_csv(tmp_path / "eval.csv", index=False)
    build = DemoBuild(model_dir=tmp_path, train_path=tmp_path / "train.csv", eval_path=tmp_path / "eval.csv",
                      planted={"memorised_train": {"active": False}})
    shifted = build_shifted_control(build, tmp_path / "out", seed=3, n=400)
    members = pd.read_csv(shifted.train_path)
    assert len(members) == 400 and (members.text == "good film").sum() == 30
