"""TextAttack behind the robustness auditor: the recipe table, our model wrapper over the shared
target, the attack loop with budgets, the summary (TextAttack's own definitions, recomputed
here so they can be cross-checked) and the verification of every successful attack.

Over the ~400 lines a module should hold because everything that touches TextAttack's own objects
(its recipes, its offline import, its wrapper, its results) stays in this one place.

TextAttack is imported only through :func:`import_textattack`, after the offline NLTK resources
are resolved (:mod:`audit.engine.resources`) and with ``nltk.download`` made a no-op, so neither its
post-install step nor PWWS's ``omw-1.4`` download reaches the network.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audit.auditors.robustness._wordnet import quick_wordnet

RECIPE_UNAVAILABLE = "{name}: skipped, {why}"
OMW_WARNING = "The multilingual functions are not available"
TA_POST_INSTALL_MARKER = "post_install_check_3"  # textattack/shared/utils/install.py (0.3.x)


@dataclass(frozen=True)
class Need:
    """One resource a recipe needs: a kind ('wordnet', 'module', 'ta_cache', 'hf_model',
    'unsupported'), what to look for, and the words shown when it is missing."""

    kind: str
    what: str
    label: str


@dataclass(frozen=True)
class Recipe:
    name: str
    cls_path: str  # "module:Class" under textattack.attack_recipes
    paper: str
    needs: tuple[Need, ...] = ()
    maximizes: bool = False  # InputReduction: keeps the label while deleting words


_USE = Need("module", "tensorflow_hub", "the Universal Sentence Encoder (tensorflow_hub + a TF-Hub download)")
_CF = Need("ta_cache", "word_embeddings/paragramcf", "counter-fitted word embeddings (TextAttack download)")
_POS = Need("nltk", "taggers/averaged_perceptron_tagger_eng", "NLTK's averaged_perceptron_tagger (download)")
_BERT_MLM = Need("hf_model", "bert-base-uncased", "the bert-base-uncased masked LM (Hugging Face Hub download)")

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("deepwordbug", "deepwordbug_gao_2018:DeepWordBugGao2018",
           "Gao et al. 2018, Black-box Generation of Adversarial Text Sequences to Evade Deep Learning Classifiers"),
    Recipe("pwws", "pwws_ren_2019:PWWSRen2019",
           "Ren et al. 2019, Generating Natural Language Adversarial Examples through Probability Weighted Word Saliency",
           (Need("wordnet", "wordnet", "NLTK's WordNet corpus"),)),
    Recipe("pruthi", "pruthi_2019:Pruthi2019",
           "Pruthi et al. 2019, Combating Adversarial Misspellings with Robust Word Recognition"),
    Recipe("input-reduction", "input_reduction_feng_2018:InputReductionFeng2018",
           "Feng et al. 2018, Pathologies of Neural Models Make Interpretations Difficult", maximizes=True),
    Recipe("textfooler", "textfooler_jin_2019:TextFoolerJin2019",
           "Jin et al. 2020, Is BERT Really Robust?", (_CF, _POS, _USE)),
    Recipe("bae", "bae_garg_2019:BAEGarg2019", "Garg and Ramakrishnan 2020, BAE: BERT-based Adversarial Examples",
           (_BERT_MLM, _POS, _USE)),
    Recipe("bert-attack", "bert_attack_li_2020:BERTAttackLi2020", "Li et al. 2020, BERT-ATTACK",
           (_BERT_MLM, _USE)),
    Recipe("textbugger", "textbugger_li_2018:TextBuggerLi2018", "Li et al. 2019, TextBugger",
           (Need("ta_cache", "word_embeddings/glove200", "GloVe embeddings (TextAttack download)"), _USE)),
    Recipe("clare", "clare_li_2020:CLARE2020", "Li et al. 2021, Contextualized Perturbation for Textual Adversarial Attack",
           (Need("hf_model", "distilroberta-base", "the distilroberta-base LM (Hugging Face Hub download)"), _USE)),
    Recipe("a2t", "a2t_yoo_2021:A2TYoo2021", "Yoo and Qi 2021, Towards Improving Adversarial Training of NLP Models",
           (_CF, _POS, Need("module", "sentence_transformers", "an SBERT sentence encoder (sentence-transformers)"))),
    Recipe("pso", "pso_zang_2020:PSOZang2020", "Zang et al. 2020, Word-level Textual Adversarial Attacking as Combinatorial Optimization",
           (Need("ta_cache", "transformations/hownet/word_candidates_sense.pkl",
                 "HowNet word candidates (TextAttack download)"), _POS)),
    Recipe("iga", "iga_wang_2019:IGAWang2019", "Wang et al. 2019, Natural Language Adversarial Attacks and Defenses in Word Level",
           (_CF,)),
    Recipe("alzantot", "genetic_algorithm_alzantot_2018:GeneticAlgorithmAlzantot2018",
           "Alzantot et al. 2018, Generating Natural Language Adversarial Examples",
           (_CF, Need("ta_cache", "constraints/semantics/language-models/alzantot-goog-lm", "the Google 1B words LM (TextAttack download)"))),
    Recipe("kuleshov", "kuleshov_2017:Kuleshov2017", "Kuleshov et al. 2018, Adversarial Examples for Natural Language Classification Problems",
           (_CF, Need("hf_model", "gpt2", "the GPT-2 LM (Hugging Face Hub download)"))),
    Recipe("hotflip", "hotflip_ebrahimi_2017:HotFlipEbrahimi2017", "Ebrahimi et al. 2018, HotFlip",
           (Need("unsupported", "gradients", "model gradients (a white-box attack; the audit attacks through a black-box wrapper)"),)),
    Recipe("checklist", "checklist_ribeiro_2020:CheckList2020", "Ribeiro et al. 2020, Beyond Accuracy: Behavioral Testing of NLP Models",
           (Need("module", "checklist", "the checklist package and flair's NER model (download)"),)),
)}


def _ta_cache_dir() -> Path:
    return Path(os.environ.get("TA_CACHE_DIR", os.path.expanduser("~/.cache/textattack")))


def _need_met(need: Need) -> bool:
    """Whether a resource is on this machine, without importing TextAttack or downloading."""
    if need.kind == "wordnet":
        from audit.engine.resources import DEBIAN_WORDNET, WORDNET_FILES

        return (all((DEBIAN_WORDNET / f).is_file() for f in WORDNET_FILES)
                or _nltk_find("corpora/wordnet"))
    if need.kind == "module":
        return importlib.util.find_spec(need.what) is not None
    if need.kind == "ta_cache":
        return (_ta_cache_dir() / need.what).exists()
    if need.kind == "nltk":
        return _nltk_find(need.what)
    if need.kind == "hf_model":
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return False
        return isinstance(try_to_load_from_cache(need.what, "config.json"), str)
    return False


def _nltk_dirs() -> list[Path]:
    """NLTK's default data path (nltk.data.path at import) plus our cache folder, without
    importing nltk (its import pulls in scipy: ~2 s, too slow for `rai-audit list`)."""
    import sys

    from audit.engine.resources import default_data_dir

    dirs = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    dirs.append(Path.home() / "nltk_data")
    dirs += [Path(sys.prefix) / sub for sub in ("nltk_data", "share/nltk_data", "lib/nltk_data")]
    dirs += [Path(p) for p in ("/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data",
                               "/usr/local/lib/nltk_data")]
    dirs.append(default_data_dir())
    return dirs


def _nltk_find(resource: str) -> bool:
    """Whether ``resource`` (e.g. 'corpora/wordnet') is in an NLTK data folder, unzipped or zipped."""
    return any((d / resource).exists() or (d / f"{resource}.zip").is_file() for d in _nltk_dirs())


def recipe_availability() -> list[tuple[str, bool, str]]:
    """(name, can run here, why not) for every known recipe; imports neither TextAttack nor torch."""
    rows = []
    for recipe in RECIPES.values():
        missing = [n.label for n in recipe.needs if not _need_met(n)]
        rows.append((recipe.name, not missing, "needs " + "; ".join(missing) if missing else ""))
    return rows


@contextlib.contextmanager
def no_nltk_downloads() -> Iterator[None]:
    """Make ``nltk.download`` return False at once: TextAttack's post-install step and PWWS's
    ``omw-1.4`` fetch would otherwise try the network (PWWS works without omw-1.4)."""
    import nltk

    original = nltk.download
    nltk.download = lambda *args, **kwargs: False  # type: ignore[assignment]
    try:
        yield
    finally:
        nltk.download = original  # type: ignore[assignment]


def import_textattack(*, need_wordnet: bool = False) -> tuple[Any, Any]:
    """Resolve the NLTK resources, then import TextAttack quietly and offline.

    Returns ``(textattack, ResourceStatus)``; raises RuntimeError naming the missing stopwords.
    """
    from audit.engine.resources import ensure_nltk_resources

    status = ensure_nltk_resources(need_wordnet=need_wordnet)
    if not status.has_stopwords:
        raise RuntimeError(status.problems[0])
    import sys
    import warnings

    tokenizers_parallelism = os.environ.get("TOKENIZERS_PARALLELISM")
    if "textattack" not in sys.modules:
        # TextAttack's first import runs a "post-install" step that nltk.downloads six packages;
        # the resources it needs are resolved above, so mark that step done (as it would itself).
        with contextlib.suppress(OSError):
            _ta_cache_dir().mkdir(parents=True, exist_ok=True)
            (_ta_cache_dir() / TA_POST_INSTALL_MARKER).touch(exist_ok=True)
    # Its import calls logging.config.dictConfig, which disables every logger that exists by then.
    disabled = {name: lg.disabled for name, lg in logging.root.manager.loggerDict.items()
                if isinstance(lg, logging.Logger)}
    with no_nltk_downloads(), warnings.catch_warnings():
        # Third-party import noise (deprecations, invalid escapes in its source) is not ours to fix.
        warnings.simplefilter("ignore")
        import textattack
    for name, was_disabled in disabled.items():
        logging.getLogger(name).disabled = was_disabled
    # TextAttack sets TOKENIZERS_PARALLELISM=True at import; keep the caller's choice.
    if tokenizers_parallelism is not None:
        os.environ["TOKENIZERS_PARALLELISM"] = tokenizers_parallelism
    # TextAttack logs through its own handler (propagate=False); keep it to errors.
    logging.getLogger("textattack").setLevel(logging.ERROR)
    textattack.shared.utils.logger.setLevel(logging.ERROR)
    return textattack, status


def make_wrapper(predict_probs: Callable[[list[str], list[str] | None], np.ndarray], model: Any,
                 tokenizer: Any = None) -> Any:
    """A TextAttack ``ModelWrapper`` that scores through ``predict_probs`` (our shared, batched,
    cached target) and returns probabilities, so TextAttack applies no second softmax."""
    from textattack.models.wrappers import ModelWrapper

    class TargetModelWrapper(ModelWrapper):
        def __init__(self) -> None:
            self.model = model
            self.tokenizer = tokenizer
            self.calls = 0
            self.rows = 0

        def __call__(self, text_input_list: Sequence[Any]) -> np.ndarray:
            items = list(text_input_list)
            self.calls += 1
            self.rows += len(items)
            if items and isinstance(items[0], tuple):  # text pairs arrive as (premise, hypothesis)
                return predict_probs([a for a, _ in items], [b for _, b in items])
            return predict_probs([str(t) for t in items], None)

        def _tokenize(self, inputs: Sequence[str]) -> list[list[str]]:
            return [self.tokenizer.convert_ids_to_tokens(self.tokenizer(x)["input_ids"]) for x in inputs]

    return TargetModelWrapper()


def build_attack(ta: Any, recipe: Recipe, wrapper: Any, *, query_budget: int | None, batch_size: int) -> Any:
    """The TextAttack recipe built on our wrapper (with nltk downloads disabled)."""
    module_name, cls_name = recipe.cls_path.split(":")
    module = importlib.import_module(f"textattack.attack_recipes.{module_name}")
    import warnings

    with no_nltk_downloads(), quick_wordnet(), warnings.catch_warnings():
        # WordNet without the Open Multilingual Wordnet (omw-1.4) warns once on load; PWWS is English-only.
        warnings.filterwarnings("ignore", message=OMW_WARNING)
        attack = getattr(module, cls_name).build(wrapper)
    if query_budget:
        attack.goal_function.query_budget = int(query_budget)
    attack.goal_function.batch_size = int(batch_size)
    return attack


def goal_batch_size(*, max_batch: int, max_tokens: int) -> int:
    """Queries the goal function hands the wrapper at once: a whole search step (PWWS's saliency
    and swap candidates of a row), so the shared engine, not TextAttack, cuts the passes, sorted
    by length at its own token budget (a row is at least one token, so ``max_tokens`` rows is the
    most one pass could hold). Same adversarial texts as at ``max_batch`` (bench/attack_profile.py:
    1.12x faster for PWWS on the demo; tests/auditors/test_robustness.py compares with Attacker)."""
    return max(int(max_batch), int(max_tokens))


@dataclass
class RecipeRun:
    """The TextAttack results of one recipe, and what the budgets cut off."""

    recipe: str
    results: list[Any] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    not_attacked: int = 0
    seconds: float = 0.0
    wrapper_rows: int = 0
    cache_hits: int = 0


def run_attack(ta: Any, attack: Any, examples: Sequence[tuple[Any, int]], *, recipe: str, seeds: Sequence[int],
               time_budget_s: float | None, progress: Callable[..., Iterable[Any]] | None = None,
               before_each: Callable[[int], None] | None = None) -> RecipeRun:
    """Attack ``examples`` in order, each on its own seed: ``before_each(i)``, then ``set_seed(seeds[i])``
    and ``attack.attack``, as TextAttack's Attacker seeds a one-example dataset (see
    :mod:`._attack_chunks`). No example starts once ``time_budget_s`` wall-clock seconds are spent."""
    run = RecipeRun(recipe=recipe)
    start = time.perf_counter()
    items: Iterable[Any] = enumerate(examples)
    if progress is not None:
        items = progress(items, total=len(examples), desc=f"attack {recipe}")
    for i, (text, label) in items:
        if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
            run.not_attacked = len(examples) - i
            break
        if before_each is not None:
            before_each(i)
        ta.shared.utils.set_seed(int(seeds[i]))
        run.results.append(attack.attack(text, int(label)))
        run.labels.append(int(label))
    run.seconds = time.perf_counter() - start
    return run


def outcome(result: Any) -> str:
    """'successful' | 'failed' | 'skipped' | 'maximized' (TextAttack's result classes)."""
    from textattack.attack_results import (
        FailedAttackResult,
        MaximizedAttackResult,
        SkippedAttackResult,
        SuccessfulAttackResult,
    )

    if isinstance(result, SkippedAttackResult):
        return "skipped"
    if isinstance(result, FailedAttackResult):
        return "failed"
    if isinstance(result, MaximizedAttackResult):
        return "maximized"
    if isinstance(result, SuccessfulAttackResult):
        return "successful"
    return "successful"  # TextAttack counts any other result as a success too


def summarize(results: Sequence[Any]) -> dict[str, float]:
    """TextAttack's summary (``Attacker`` / ``AttackLogManager.log_summary``), recomputed without
    its rounding and with rates as fractions (percentages only where the name says ``pct``).

    Definitions follow textattack.metrics.attack_metrics: original accuracy = 1 - skipped/total;
    accuracy under attack = failed/total; attack success rate = successful/(successful+failed);
    perturbed-word percentage averaged over successful attacks; queries averaged over attacked
    (not skipped) rows; words per input averaged over all rows. ``avg_perturbed_words`` (words in
    the adversarial text, over successes) is ours.
    """
    kinds = [outcome(r) for r in results]
    total = len(results)
    n_success = sum(k in ("successful", "maximized") for k in kinds)
    n_failed = kinds.count("failed")
    n_skipped = kinds.count("skipped")
    words = np.array([len(r.original_result.attacked_text.words) for r in results], dtype=float)
    pcts, adv_words = [], []
    for r, k in zip(results, kinds, strict=True):
        if k not in ("successful", "maximized"):
            continue
        original = r.original_result.attacked_text
        perturbed = r.perturbed_result.attacked_text
        changed = len(original.all_words_diff(perturbed))
        adv_words.append(len(perturbed.words))
        if len(original.words) > 0 and changed > 0:
            pcts.append(changed * 100.0 / len(original.words))
    queries = [r.num_queries for r, k in zip(results, kinds, strict=True) if k != "skipped"]
    nan = float("nan")
    return {
        "original_accuracy": (total - n_skipped) / total if total else nan,
        "accuracy_under_attack": n_failed / total if total else nan,
        "attack_success_rate": n_success / (n_success + n_failed) if n_success + n_failed else 0.0,
        "successful_attacks": float(n_success),
        "failed_attacks": float(n_failed),
        "skipped_attacks": float(n_skipped),
        "avg_perturbed_word_pct": float(np.mean(pcts)) if pcts else nan,
        "avg_num_queries": float(np.mean(queries)) if queries else nan,
        "avg_original_words": float(words.mean()) if total else nan,
        "avg_perturbed_words": float(np.mean(adv_words)) if adv_words else nan,
    }


@dataclass(frozen=True)
class AdversarialExample:
    recipe: str
    original: str
    perturbed: str
    label: int
    original_pred: int
    perturbed_pred: int
    verified: bool
    words_changed: int


def _text(attacked_text: Any) -> str:
    return attacked_text.text if hasattr(attacked_text, "text") else str(attacked_text)


def verify(run: RecipeRun, *, fresh_predict: Callable[[list[Any]], np.ndarray],
           maximizes: bool) -> list[AdversarialExample]:
    """Re-score every successful adversarial text with the model alone (no cache, no TextAttack):
    an untargeted success must predict something other than the ground truth; an input-reduction
    result must keep it. Returns one record per success, ``verified`` set accordingly."""
    picked = [(r, y) for r, y in zip(run.results, run.labels, strict=True)
              if outcome(r) in ("successful", "maximized")]
    if not picked:
        return []
    inputs = [r.perturbed_result.attacked_text.tokenizer_input for r, _ in picked]  # str, or a tuple for pairs
    preds = fresh_predict(inputs).argmax(axis=1)
    out = []
    for (r, y), pred in zip(picked, preds, strict=True):
        ok = int(pred) == y if maximizes else int(pred) != y
        original = r.original_result.attacked_text
        out.append(AdversarialExample(
            recipe=run.recipe, original=_text(original), perturbed=_text(r.perturbed_result.attacked_text),
            label=y, original_pred=int(r.original_result.output), perturbed_pred=int(pred), verified=bool(ok),
            words_changed=len(original.all_words_diff(r.perturbed_result.attacked_text))))
    return out


def word_diff(original: str, perturbed: str) -> list[tuple[str, str]]:
    """Word-level diff as (op, text) pieces, op in 'same' | 'del' | 'ins', for highlighting."""
    import difflib

    a, b = original.split(), perturbed.split()
    pieces: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append(("same", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(("del", " ".join(a[i1:i2])))
        if j2 > j1:
            pieces.append(("ins", " ".join(b[j1:j2])))
    return pieces
