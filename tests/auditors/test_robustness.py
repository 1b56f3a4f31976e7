"""The robustness auditor: attacks succeed on the demo and every success is verified; a constant
predictor cannot be attacked; our summary equals TextAttack's Attacker summary; invariance tests
find the demo's typo sensitivity and its planted emphasis shortcut, and the clean control is not
flagged for it; the section renders escaped."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import numpy as np
import pytest

from audit.auditors.robustness import _invariance as inv
from audit.auditors.robustness._auditor import RobustnessAuditor, stratified_sample
from audit.engine.resources import DEBIAN_WORDNET
from audit.errors import AuditInputError
from tests._text import one_line
from tests.conftest import make_context

ATTACK_EXAMPLES = 10
TA_SUMMARY_KEYS = {  # ours -> (TextAttack metric key, scale)
    "successful_attacks": ("successful_attacks", 1),
    "failed_attacks": ("failed_attacks", 1),
    "skipped_attacks": ("skipped_attacks", 1),
    "original_accuracy": ("original_accuracy", 100),
    "accuracy_under_attack": ("attack_accuracy_perc", 100),
    "attack_success_rate": ("attack_success_rate", 100),
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Any:
    """Attacks make hundreds of tiny forward passes; on a busy 2-core runner torch's two intra-op
    threads contend and run ~10x slower than one (bench/attack.py --threads). Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def planted_ctx(demo_planted: Any, planted_target: Any) -> Any:
    return make_context(demo_planted, planted_target)


@pytest.fixture(scope="module")
def planted_result(planted_ctx: Any) -> Any:
    return RobustnessAuditor(recipes=["deepwordbug", "pwws"], attack_examples=ATTACK_EXAMPLES,
                             invariance_examples=200).run(planted_ctx)


@pytest.fixture(scope="module")
def constant_target(planted_target: Any) -> Any:
    """The demo model with its classifier zeroed and a bias toward 'positive': a constant predictor."""
    import torch

    from audit.engine.target import Target

    model = copy.deepcopy(planted_target.model)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([-2.0, 2.0]))
    return Target(model=model, tokenizer=planted_target.tokenizer, max_length=planted_target.max_length)


@pytest.mark.parametrize("recipe", ["deepwordbug", "pwws"])
def test_attacks_succeed_on_the_demo_and_every_success_is_verified(planted_result: Any, recipe: str) -> None:
    r = planted_result
    assert r.status == "ok", r.reason
    ok = r.metric("successful_attacks", recipe).value
    failed = r.metric("failed_attacks", recipe).value
    skipped = r.metric("skipped_attacks", recipe).value
    assert ok > 0
    assert ok + failed + skipped == ATTACK_EXAMPLES
    assert r.metric("verified_successes", recipe).value == ok
    assert r.metric("attack_success_rate", recipe).value == pytest.approx(ok / (ok + failed))
    assert r.metric("accuracy_under_attack", recipe).value == pytest.approx(failed / ATTACK_EXAMPLES)
    assert 0 < r.metric("avg_perturbed_word_pct", recipe).value <= 100
    # A warning exactly when the success rate passes the threshold (default 0.5).
    warns = [f for f in r.findings if f.severity == "warn" and f.title.startswith(recipe)]
    rate = r.metric("attack_success_rate", recipe).value
    assert bool(warns) == (rate > 0.5), (rate, [f.title for f in r.findings])
    assert all(w.evidence["recipe"] == recipe for w in warns)
    # Every attacked row's original text was already scored by the shared eval pass: the wrapper
    # goes through the target's cache.
    row = dict(zip(r.table("attacks").columns, next(x for x in r.table("attacks").rows if x[0] == recipe),
                   strict=True))
    assert row["cache_hits"] >= ATTACK_EXAMPLES
    shown = [e for e in r.extra["adversarial_examples"] if e["recipe"] == recipe]
    assert shown and all(e["verified"] and e["before"] != e["after"] and e["original"] != e["perturbed"]
                         for e in shown)


def test_attacked_rows_are_a_seeded_class_stratified_sample(planted_ctx: Any) -> None:
    labels = np.asarray(planted_ctx.data.labels)
    a = stratified_sample(labels, 40, rng=np.random.default_rng(3))
    b = stratified_sample(labels, 40, rng=np.random.default_rng(3))
    assert np.array_equal(a, b) and len(set(a.tolist())) == 40
    share = np.bincount(labels) / len(labels)
    assert np.allclose(np.bincount(labels[a], minlength=2), share * 40, atol=1)


def test_summary_equals_textattack_attacker_summary(planted_ctx: Any, planted_result: Any) -> None:
    """Run TextAttack's own Attacker on each of the same rows, one example per dataset, with that
    example's seed, and compare its summary (the metric classes its log_summary uses) to ours."""
    from audit.auditors.robustness import _attack_chunks as C
    from audit.auditors.robustness import _attacks as A

    ta, _ = A.import_textattack()
    from textattack.metrics.attack_metrics import AttackQueries, AttackSuccessRate, WordsPerturbed

    ctx = planted_ctx
    rows = stratified_sample(np.asarray(ctx.data.labels), ATTACK_EXAMPLES, rng=ctx.rng("robustness.attack"))
    base = ctx.seed_for("robustness.attack.deepwordbug")
    results = [attacker_result(ctx, ta, "deepwordbug", int(i), C.example_seed(base=base, row=int(i))) for i in rows]

    theirs = {**AttackSuccessRate().calculate(results), **WordsPerturbed().calculate(results),
              **AttackQueries().calculate(results)}
    ours = {m.name: m.value for m in planted_result.metrics if m.slice == "deepwordbug"}
    for key, (their_key, scale) in TA_SUMMARY_KEYS.items():
        assert round(ours[key] * scale, 2) == pytest.approx(theirs[their_key]), key
    assert round(ours["avg_perturbed_word_pct"], 2) == pytest.approx(theirs["avg_word_perturbed_perc"])
    assert round(ours["avg_original_words"], 2) == pytest.approx(theirs["avg_word_perturbed"])  # words per input
    assert round(ours["avg_num_queries"], 2) == pytest.approx(theirs["avg_num_queries"])
    # Same seeds, same rows: the same adversarial texts.
    adversarial = [r.perturbed_result.attacked_text.text for r in results if A.outcome(r) == "successful"]
    shown = [e["perturbed"] for e in planted_result.extra["adversarial_examples"] if e["recipe"] == "deepwordbug"]
    assert shown == adversarial[: len(shown)]


def attacker_result(ctx: Any, ta: Any, recipe: str, row: int, seed: int) -> Any:
    """TextAttack's Attacker on the one example at ``row`` with ``AttackArgs(random_seed=seed)``,
    its recipe over a wrapper scoring as ours does (a fresh cache holding the original's logits)."""
    from audit.auditors.robustness import _attack_chunks as C
    from audit.auditors.robustness import _attacks as A

    t = ctx.target
    scorer = C.ExampleScorer(target=C.worker_target(model=t.model, tokenizer=t.tokenizer, max_length=t.max_length,
                                                    max_tokens=t.max_tokens, max_batch=t.max_batch, device=t.device,
                                                    dtype=t.dtype))
    text, label = ctx.data.texts[row], int(ctx.data.labels[row])
    scorer.start(text, t.predict_logits([text])[0])
    attack = A.build_attack(ta, A.RECIPES[recipe], A.make_wrapper(scorer.probs, t.model, t.tokenizer),
                            query_budget=None, batch_size=A.goal_batch_size(max_batch=t.max_batch,
                                                                            max_tokens=t.max_tokens))
    args = ta.AttackArgs(num_examples=1, random_seed=seed, silent=True, disable_stdout=True)
    with warnings.catch_warnings():  # its own log summary of a lone skipped example averages an empty array
        warnings.simplefilter("ignore", RuntimeWarning)
        (result,) = ta.Attacker(attack, ta.datasets.Dataset([(text, label)]), args).attack_dataset()
    return result


def test_constant_predictor_cannot_be_attacked(demo_planted: Any, constant_target: Any) -> None:
    ctx = make_context(demo_planted, constant_target)
    r = RobustnessAuditor(recipes=["deepwordbug"], attack_examples=10, invariance_examples=100).run(ctx)
    assert r.status == "ok", r.reason
    assert r.metric("successful_attacks", "deepwordbug").value == 0
    assert r.metric("verified_successes", "deepwordbug").value == 0
    assert r.metric("attack_success_rate", "deepwordbug").value == 0
    rows = stratified_sample(np.asarray(ctx.data.labels), 10, rng=ctx.rng("robustness.attack"))
    positives = int((np.asarray(ctx.data.labels)[rows] == 1).sum())
    assert r.metric("failed_attacks", "deepwordbug").value == positives  # rows it gets right resist
    assert r.metric("skipped_attacks", "deepwordbug").value == 10 - positives
    assert all(m.value == 0 for m in r.metrics if m.name == "invariance_flip_rate")
    assert [f for f in r.findings if f.severity != "info"] == []


def test_an_unverified_success_fails_the_section(planted_ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sabotage the verifier's forward pass (always class 0): successes on class-0 rows no longer
    change the prediction, and the section must fail rather than report them."""
    import audit.engine.inference

    def always_negative(model: Any, tokenizer: Any, texts: Any, *args: Any, **kwargs: Any) -> Any:
        return np.tile([[1.0, 0.0]], (len(texts), 1)), np.zeros(len(texts), dtype=bool)

    monkeypatch.setattr(audit.engine.inference, "predict_logits", always_negative)
    r = RobustnessAuditor(recipes=["deepwordbug"], attack_examples=8, invariance_examples=0).run(planted_ctx)
    assert r.status == "failed"
    assert "did not change the prediction" in r.reason
    assert r.metric("verified_successes", "deepwordbug").value < r.metric("successful_attacks", "deepwordbug").value
    assert any(f.severity == "fail" for f in r.findings)


def test_invariance_finds_the_demo_typo_sensitivity(planted_result: Any) -> None:
    r = planted_result
    typo = r.metric("invariance_flip_rate", "typo")
    assert typo.value > 0.05 and typo.ci_low <= typo.value <= typo.ci_high
    assert any(f.severity == "warn" and f.title.startswith("typo") for f in r.findings)
    # The demo tokenizer lowercases, so upper-casing gives the model the same input: no flips.
    assert r.metric("invariance_flip_rate", "uppercase").value == 0
    table = r.table("invariance").to_frame().set_index("perturbation")
    assert table.loc["number", "rows"] == 0  # the demo has no numbers: not applicable, not "0% flips"
    worst = r.table("invariance_examples").to_frame()
    assert len(worst) and (worst["prediction"] != worst["after"]).all()


def _emphasis_test(build: Any) -> str:
    """The invariance test that covers the demo's planted perturbation, as its planted.json says."""
    planted = json.loads((build.model_dir.parent / "planted.json").read_text(encoding="utf-8"))
    return planted["emphasis_shortcut"]["perturbation"]


def test_invariance_finds_the_planted_emphasis_shortcut(demo_planted: Any, planted_ctx: Any,
                                                       planted_result: Any) -> None:
    """The planted demo learned that a trailing '!!' means negative: ending texts with one to three
    exclamation marks flips over 40% of its predictions at seed 0, and the planted '!!' turns
    positive predictions negative, never the reverse."""
    test = _emphasis_test(demo_planted)
    rate = planted_result.metric("invariance_flip_rate", test)
    assert rate.value > 0.2 and rate.ci_low > 0.05, (rate.value, rate.ci_low)
    (warn,) = [f for f in planted_result.findings if f.severity == "warn" and f.evidence.get("perturbation") == test]
    assert warn.evidence["flip_rate"] == rate.value and warn.title.startswith(test)
    before = np.asarray(planted_ctx.predictions.preds)
    suffix = json.loads((demo_planted.model_dir.parent / "planted.json").read_text())["emphasis_shortcut"]["suffix"]
    after = np.asarray(planted_ctx.predict([t + suffix for t in planted_ctx.data.texts], None).preds)
    positive = planted_ctx.data.label_names.index("positive")
    assert np.mean(after[before == positive] != positive) > 0.5
    assert not (after[before != positive] == positive).any()


def test_clean_control_is_invariant_to_the_emphasis(demo_clean: Any, clean_target: Any) -> None:
    """The control saw '!!' copies with their originals' labels: exclamation marks change almost
    nothing (4 of 200 rows at seed 0, under the 5% threshold), and no finding names that test."""
    test = _emphasis_test(demo_clean)
    r = RobustnessAuditor(attack_examples=0, invariance_examples=200).run(make_context(demo_clean, clean_target))
    assert r.status == "ok", r.reason
    rate = r.metric("invariance_flip_rate", test)
    rows = dict(zip(r.table("invariance").columns, next(x for x in r.table("invariance").rows if x[0] == test),
                    strict=True))["rows"]
    assert rows >= 150 and rate.value <= 0.05, (rows, rate.value)
    assert not [f for f in r.findings if f.evidence.get("perturbation") == test]


def test_invariance_tolerance_counts_only_changes_that_matter(demo_planted: Any, planted_ctx: Any) -> None:
    """CheckList's INV tolerance: a changed prediction counts only when the original class's
    probability moved by more than it. Nothing moves by more than 1; the planted emphasis moves
    predictions far more than 0.2, so it is still found."""
    test = _emphasis_test(demo_planted)
    nothing = RobustnessAuditor(attack_examples=0, invariance_examples=100, invariance_tolerance=1.0).run(planted_ctx)
    assert all(m.value == 0 for m in nothing.metrics if m.name == "invariance_flip_rate")
    assert [f for f in nothing.findings if f.severity != "info"] == []
    strict = RobustnessAuditor(attack_examples=0, invariance_examples=100).run(planted_ctx)
    tolerant = RobustnessAuditor(attack_examples=0, invariance_examples=100, invariance_tolerance=0.2).run(planted_ctx)
    for m in (m for m in strict.metrics if m.name == "invariance_flip_rate"):
        assert tolerant.metric("invariance_flip_rate", m.slice).value <= m.value
    assert tolerant.metric("invariance_flip_rate", test).value > 0.2
    (warn,) = [f for f in tolerant.findings if f.evidence.get("perturbation") == test]
    assert "up to 0.20 not counted" in warn.detail


def test_unavailable_recipe_is_skipped_with_a_one_line_reason(planted_ctx: Any) -> None:
    from audit.auditors.robustness._attacks import recipe_availability

    can_run = {name: ok for name, ok, _ in recipe_availability()}
    if can_run["textfooler"]:
        pytest.skip("TextFooler's resources are present on this machine")
    r = RobustnessAuditor(recipes=["textfooler"], invariance_examples=20).run(planted_ctx)
    assert r.status == "ok"
    (finding,) = [f for f in r.findings if f.title.startswith("textfooler")]
    assert finding.severity == "info" and "counter-fitted" in finding.title
    assert not [m for m in r.metrics if m.slice == "textfooler"]


def test_recipe_availability_lists_the_offline_recipes() -> None:
    from audit.auditors.robustness._attacks import recipe_availability

    table = {name: (ok, why) for name, ok, why in recipe_availability()}
    for name in ("deepwordbug", "pruthi", "input-reduction"):
        assert table[name] == (True, "")
    if (DEBIAN_WORDNET / "data.noun").is_file():
        assert table["pwws"] == (True, "")
    assert table["hotflip"][0] is False and "gradients" in table["hotflip"][1]
    assert table["bae"][0] is False or table["bae"][1] == ""


def test_time_budget_stops_the_attack_and_says_so(planted_ctx: Any) -> None:
    r = RobustnessAuditor(recipes=["deepwordbug"], attack_examples=6, time_budget_s=1e-9,
                          invariance_examples=0).run(planted_ctx)
    assert r.status == "ok", r.reason
    row = dict(zip(r.table("attacks").columns, r.table("attacks").rows[0], strict=True))
    assert row["examples"] + row["not_attacked"] == 6 and row["not_attacked"] >= 5
    assert any(f.title == "deepwordbug: time budget reached" for f in r.findings)
    assert [f for f in r.findings if f.severity != "info"] == []


@pytest.mark.parametrize(("option", "value", "match"), [
    ("recipes", ["deepwordbug", "nosuch"], "option robustness.recipes: unknown value 'nosuch'"),
    ("attack_examples", -1, "attack_examples"),
    ("query_budget", 0, "query_budget"),
    ("max_attack_success_rate", 1.5, "max_attack_success_rate"),
    ("invariance_tolerance", -0.1, "invariance_tolerance"),
    ("attack_workers", -1, "attack_workers"),
    # Beyond a C int the spawn pool raised OverflowError mid-run, after the model loaded and earlier auditors ran.
    ("attack_workers", 2**31, "attack_workers"),
])
def test_bad_options_are_named(option: str, value: Any, match: str) -> None:
    with pytest.raises(AuditInputError, match=match):
        RobustnessAuditor(**{option: value})


def test_perturbations_change_only_what_they_say() -> None:
    rng = np.random.default_rng(0)
    t = inv.typo("the wonderful film", rng)
    assert t is not None and t != "the wonderful film" and sorted(t) == sorted("the wonderful film")
    assert t.split()[1][0] == "w" and t.split()[1][-1] == "l"
    assert inv.typo("a b c", rng) is None
    assert inv.punctuation("It was fine.", rng) == "It was fine"
    assert inv.punctuation("It was fine", rng) == "It was fine."
    assert inv.contractions("She was not there", rng) == "She wasn't there"
    assert inv.contractions("I don't know", rng) == "I do not know"
    assert inv.contractions("nothing here", rng) is None
    assert inv.person_name("the man named laban spoke", rng).split()[3] not in ("laban", "named")
    swapped = inv.person_name("Mary liked it", rng)
    assert swapped is not None and swapped.endswith(" liked it") and not swapped.startswith("Mary")
    assert inv.person_name("nobody liked it", rng) is None
    changed = inv.number("it cost 100 dollars and 2.50 cents", rng)
    assert changed is not None and "100" not in changed.split() and "2.50" not in changed.split()
    assert inv.number("no digits", rng) is None
    assert inv.whitespace("a b", rng) == "a  b "
    assert inv.uppercase("ABC", rng) is None
    for text in ("It was fine.", "It was fine"):
        emphatic = inv.exclamation(text, rng)
        assert emphatic is not None and emphatic.rstrip("!") == "It was fine"
        assert 1 <= len(emphatic) - len("It was fine") <= inv.MAX_EXCLAMATIONS
    assert inv.exclamation("Was it fine?", rng) is None and inv.exclamation("Fine!", rng) is None


def test_wilson_interval_matches_scipy() -> None:
    from scipy.stats import binomtest

    for k, n in [(0, 10), (3, 20), (50, 50), (7, 300)]:
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert inv.wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_section_renders_highlights_and_escapes_hostile_text(planted_result: Any) -> None:
    from audit.report.html import render_section

    hostile = {"recipe": "deepwordbug", "label": "negative", "before": "negative", "after": "positive",
               "verified": True, "words_changed": 1, "original": "<script>alert(1)</script> bad",
               "perturbed": "<script>alert(1)</script> bda",
               "diff": [["same", "<script>alert(1)</script>"], ["del", "bad"], ["ins", "bda"]]}
    extra = {**planted_result.extra,
             "adversarial_examples": [*planted_result.extra["adversarial_examples"], hostile]}
    html = render_section(planted_result.replace(extra=extra))
    assert "Adversarial attacks" in one_line(html) and "Invariance tests" in one_line(html)
    assert "<del>bad</del> <ins>bda</ins>" in one_line(html)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "deepwordbug" in html and "pwws" in html and "typo" in html
    json.dumps(planted_result.to_dict(), allow_nan=False)  # results.json-ready: no NaN, plain types
