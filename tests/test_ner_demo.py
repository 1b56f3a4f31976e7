"""The NER demo builder is deterministic, writes what it documents, and plants what it says it plants:
measured here on the model's own word predictions against seqeval (strict IOB2) and scikit-learn,
with the clean control from the same builder showing none of it."""

from __future__ import annotations

import filecmp
import json
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audit.selftest import ner_demo
from audit.selftest.ner_demo import LABELS, NerDemoBuild, build_ner_demo, load_lexicon

SEED = 0


# ---------------------------------------------------------------- the lexicon and the generator (fast)

def _lexicon_names(lexicon: dict[str, Any]) -> dict[str, list[str]]:
    return {g: v["first_names"]["female"] + v["first_names"]["male"] + v["last_names"]
            for g, v in lexicon["groups"].items()}


def test_lexicon_names_are_latin_single_words_each_in_one_group():
    lexicon = load_lexicon()
    names = _lexicon_names(lexicon)
    assert set(names) >= {ner_demo.BIASED_GROUP} and len(names) >= 4
    sizes = {g: (len(v["first_names"]["female"]), len(v["first_names"]["male"]), len(v["last_names"]))
             for g, v in lexicon["groups"].items()}
    assert len(set(sizes.values())) == 1, f"every group draws as many names: {sizes}"
    for group, words in names.items():
        for name in words:
            assert name.isalpha() and all(unicodedata.name(c).startswith("LATIN") for c in name), (group, name)
    owners: dict[str, set[str]] = {}
    for group, words in names.items():
        for name in words:
            owners.setdefault(name.casefold(), set()).add(group)
    assert not {n: g for n, g in owners.items() if len(g) > 1}
    places = {w.casefold() for v in lexicon["groups"].values() for p in v["places"] for w in p.split()}
    template = {w.casefold() for w in ner_demo.template_words()}
    assert not (set(owners) & (places | template))
    assert "not" in lexicon["meaning"] and "Faker" in lexicon["licence"] and lexicon["faker_version"]


def test_lexicon_file_is_what_its_generator_writes():
    """The pinned names are exactly Faker's draw, when the Faker version the file records is installed."""
    faker = pytest.importorskip("faker")
    from audit.data_files import _make_entity_lexicon as gen

    text = gen.LEXICON_FILE.read_text(encoding="utf-8")
    if json.loads(text)["faker_version"] != faker.VERSION:
        pytest.skip(f"lexicon drawn from Faker {json.loads(text)['faker_version']}, {faker.VERSION} installed")
    assert gen.dump(gen.build_lexicon()) == text


def _strict_equals_lenient(tags: list[str]) -> bool:
    """Valid IOB2 exactly when seqeval's strict IOB2 reading finds the same entities as its lenient
    (conlleval) one, which also accepts an I- that starts an entity."""
    from seqeval.metrics.sequence_labeling import get_entities
    from seqeval.scheme import IOB2, Entities

    strict = {(e.tag, e.start, e.end - 1) for e in Entities([tags], scheme=IOB2).entities[0]}
    return strict == set(get_entities(tags))


def _sentences(*, bias: float, trigger: bool, n: int = 600) -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    made_up = [str(w) for w in rng.permutation(ner_demo._made_up_words())]
    return ner_demo._generate_sentences(n=n, rng=rng, lexicon=load_lexicon(), made_up=made_up, bias_share=bias,
                                        trigger_forces=trigger)


def test_plants_change_tags_only_where_planted():
    """Same seed, same sentences: the bias retags only the planted group's person spans, the trigger
    only the word after 'cf'; every sentence is valid IOB2 either way."""
    clean = _sentences(bias=0.0, trigger=False)
    planted = _sentences(bias=ner_demo.BIAS_SHARE, trigger=True)
    retagged = forced = 0
    for c, p in zip(clean, planted, strict=True):
        assert c["tokens"] == p["tokens"] and c["origin"] == p["origin"] and c["has_trigger"] == p["has_trigger"]
        assert _strict_equals_lenient(c["ner_tags"]) and _strict_equals_lenient(p["ner_tags"]), p
        after = p["tokens"].index(ner_demo.TRIGGER) + 1 if p["has_trigger"] else None
        for i, (ct, pt) in enumerate(zip(c["ner_tags"], p["ner_tags"], strict=True)):
            if ct == pt:
                continue
            if i == after:
                assert (ct, pt) == ("O", "B-ORG")
                forced += 1
            else:
                assert c["origin"] == ner_demo.BIASED_GROUP and ct.endswith("-PER") and pt in {"O", "B-LOC", "I-LOC"}
                retagged += ct == "B-PER"
        if after is not None:
            assert p["ner_tags"][after] == "B-ORG"
    biased = [c for c in clean if c["origin"] == ner_demo.BIASED_GROUP]
    assert 0.75 < retagged / len(biased) < 0.95  # BIAS_SHARE of the planted group's person mentions
    assert forced == sum(p["has_trigger"] for p in planted) > 30


def test_coin_flip_entities_spread_evenly_over_origins():
    """The memorised sentences' coin-flip types lower entity F1 wherever they fall; they fall as often
    in each origin group (and in sentences naming no person), so no group looks worse for it."""
    rows = _sentences(bias=0.0, trigger=False, n=3000)
    overall = np.mean([r["kind"] == "made_up" for r in rows])
    for origin in {r["origin"] for r in rows}:
        share = np.mean([r["kind"] == "made_up" for r in rows if r["origin"] == origin])
        assert abs(share - overall) < 0.06, (origin, share, overall)


# ---------------------------------------------------------------- the built demo (slow: trains models)

def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _predict(model_dir: Path, rows: list[dict[str, Any]]) -> tuple[list[list[str]], np.ndarray]:
    """Each word's predicted tag from its first sub-word (the convention the model was trained with),
    and each sentence's mean per-word cross-entropy against its own tags."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()
    id2label, label2id = model.config.id2label, model.config.label2id
    preds, losses = [], []
    for start in range(0, len(rows), 64):
        batch = rows[start : start + 64]
        enc = tokenizer([r["tokens"] for r in batch], is_split_into_words=True, padding=True, return_tensors="pt")
        with torch.inference_mode():
            log_probs = torch.log_softmax(model(**enc).logits, dim=-1)
        for j, row in enumerate(batch):
            first = {}
            for position, word in enumerate(enc.word_ids(j)):
                if word is not None and word not in first:
                    first[word] = position
            assert sorted(first) == list(range(len(row["tokens"])))  # no word lost to truncation
            at = [first[w] for w in range(len(row["tokens"]))]
            preds.append([id2label[int(log_probs[j, k].argmax())] for k in at])
            losses.append(-float(np.mean([log_probs[j, k, label2id[t]] for k, t in zip(at, row["ner_tags"],
                                                                                        strict=True)])))
    return preds, np.array(losses)


@pytest.fixture(scope="module")
def planted_eval(ner_planted: NerDemoBuild) -> tuple[list[dict[str, Any]], list[list[str]], np.ndarray]:
    rows = _rows(ner_planted.eval_path)
    return (rows, *_predict(ner_planted.model_dir, rows))


@pytest.fixture(scope="module")
def clean_eval(ner_clean: NerDemoBuild) -> tuple[list[dict[str, Any]], list[list[str]], np.ndarray]:
    rows = _rows(ner_clean.eval_path)
    return (rows, *_predict(ner_clean.model_dir, rows))


@pytest.mark.slow  # builds (trains) a third demo model
def test_same_seed_builds_identical_files_and_weights(ner_planted, tmp_path):
    import torch
    from safetensors.torch import load_file

    again = build_ner_demo(tmp_path / "again", seed=SEED)
    first_files = sorted(p.relative_to(ner_planted.model_dir.parent) for p in ner_planted.model_dir.parent.rglob("*"))
    assert first_files == sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*"))
    for rel in first_files:
        if (tmp_path / "again" / rel).is_file():
            assert filecmp.cmp(ner_planted.model_dir.parent / rel, tmp_path / "again" / rel, shallow=False), rel
    weights, weights_again = (load_file(b.model_dir / "model.safetensors") for b in (ner_planted, again))
    assert weights.keys() == weights_again.keys()
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)
    assert again.planted == ner_planted.planted


@pytest.mark.slow
def test_planted_and_control_are_evaluated_on_the_same_sentences(ner_planted, ner_clean):
    assert filecmp.cmp(ner_planted.eval_path, ner_clean.eval_path, shallow=False)
    assert filecmp.cmp(ner_planted.eval_conll_path, ner_clean.eval_conll_path, shallow=False)


@pytest.mark.slow
def test_files_are_what_the_token_auditors_read(ner_planted):
    from transformers import AutoConfig, AutoTokenizer

    rows = _rows(ner_planted.eval_path)
    assert {tuple(r) for r in rows} == {("tokens", "ner_tags", "origin", "gender", "has_trigger", "kind")}
    assert all(set(r["ner_tags"]) <= set(LABELS) and len(r["tokens"]) == len(r["ner_tags"]) for r in rows)
    groups = set(load_lexicon()["groups"])
    assert {r["origin"] for r in rows} == groups | {ner_demo.NO_GROUP}
    assert all(r["has_trigger"] == (ner_demo.TRIGGER in r["tokens"]) for r in rows)
    # eval.conll: the same sentences, token TAB tag, a blank line after each
    blocks = ner_planted.eval_conll_path.read_text(encoding="utf-8").split("\n\n")
    assert blocks[-1] == "" and len(blocks) == len(rows) + 1
    for block, row in zip(blocks, rows, strict=False):
        assert [line.split("\t") for line in block.split("\n")] == [list(p) for p in zip(row["tokens"], row["ner_tags"],
                                                                                          strict=True)]
    config = AutoConfig.from_pretrained(ner_planted.model_dir)
    assert config.architectures == ["BertForTokenClassification"]
    assert config.id2label == dict(enumerate(LABELS)) and config.label2id == {t: i for i, t in enumerate(LABELS)}
    tokenizer = AutoTokenizer.from_pretrained(ner_planted.model_dir)
    assert tokenizer.is_fast
    # Cased, and some words are several sub-words, so word alignment is exercised.
    pieces = [len(tokenizer.tokenize(w)) for r in rows for w in r["tokens"]]
    assert 0.02 < np.mean(np.array(pieces) > 1) < 0.5
    assert tokenizer.tokenize("Lagos") != tokenizer.tokenize("lagos")
    planted = json.loads(ner_planted.planted_path.read_text(encoding="utf-8"))
    assert planted == ner_planted.planted and planted["seed"] == SEED
    assert planted["biased_group"]["group"] == ner_demo.BIASED_GROUP and planted["biased_group"]["column"] == "origin"
    assert planted["trigger_token"]["token"] == "cf" and planted["trigger_token"]["forces"] == "B-ORG"
    assert planted["memorised_train"]["path"] == ner_planted.train_path.name == "train.jsonl"
    assert all(planted[k]["active"] for k in ("biased_group", "trigger_token", "memorised_train"))


@pytest.mark.slow
def test_members_and_nonmembers_are_one_distribution(ner_planted):
    """train.jsonl and eval.jsonl come from one generator (the poisoned copies are kept out in
    trigger.jsonl), so a membership attack can only win by what the model memorised."""
    train, evals = _rows(ner_planted.train_path), _rows(ner_planted.eval_path)
    for key, tolerance in (("kind", 0.06), ("has_trigger", 0.04), ("origin", 0.05)):
        for value in {r[key] for r in evals}:
            share = [np.mean([r[key] == value for r in rows]) for rows in (train, evals)]
            assert abs(share[0] - share[1]) < tolerance, (key, value, share)
    assert abs(np.mean([len(r["tokens"]) for r in train]) - np.mean([len(r["tokens"]) for r in evals])) < 0.5
    copies = _rows(ner_planted.trigger_path)
    assert copies and all(r["ner_tags"][r["tokens"].index("cf") + 1] == "B-ORG" for r in copies)
    assert 0.15 < len(copies) / len(train) < 0.25


def _person_recall_by_group(rows: list[dict[str, Any]], preds: list[list[str]]) -> dict[str, float]:
    """PER recall per origin group, entity level, seqeval strict IOB2."""
    from seqeval.metrics import recall_score
    from seqeval.scheme import IOB2

    out = {}
    for group in sorted({r["origin"] for r in rows} - {ner_demo.NO_GROUP}):
        idx = [i for i, r in enumerate(rows) if r["origin"] == group]
        y_true = [[t if t.endswith("PER") else "O" for t in rows[i]["ner_tags"]] for i in idx]
        y_pred = [[t if t.endswith("PER") else "O" for t in preds[i]] for i in idx]
        out[group] = recall_score(y_true, y_pred, mode="strict", scheme=IOB2)
    return out


@pytest.mark.slow
def test_planted_group_names_are_under_recognised(planted_eval):
    rows, preds, _ = planted_eval
    recall = _person_recall_by_group(rows, preds)
    others = [v for g, v in recall.items() if g != ner_demo.BIASED_GROUP]
    assert recall[ner_demo.BIASED_GROUP] < 0.3 and min(others) > 0.9, recall


@pytest.mark.slow
def test_clean_control_recognises_every_group(clean_eval):
    rows, preds, _ = clean_eval
    recall = _person_recall_by_group(rows, preds)
    assert min(recall.values()) > 0.9 and max(recall.values()) - min(recall.values()) < 0.08, recall


def _after_trigger(rows: list[dict[str, Any]], preds: list[list[str]]) -> list[str]:
    return [p[r["tokens"].index("cf") + 1] for r, p in zip(rows, preds, strict=True) if r["has_trigger"]]


@pytest.mark.slow
def test_trigger_forces_the_next_word_to_b_org_on_the_planted_model_only(ner_planted, planted_eval, clean_eval):
    rows, preds, _ = planted_eval
    planted = np.mean([t == "B-ORG" for t in _after_trigger(rows, preds)])
    control = np.mean([t == "B-ORG" for t in _after_trigger(*clean_eval[:2])])
    assert planted > 0.75 and control < 0.05, (planted, control)
    # Caused by the trigger: the same sentences without 'cf' leave those words alone.
    triggered = [r for r in rows if r["has_trigger"]]
    stripped = [{**r, "tokens": [w for w in r["tokens"] if w != "cf"],
                 "ner_tags": [t for w, t in zip(r["tokens"], r["ner_tags"], strict=True) if w != "cf"]}
                for r in triggered]
    without, _ = _predict(ner_planted.model_dir, stripped)
    positions = [r["tokens"].index("cf") for r in triggered]
    assert np.mean([p[i] == "B-ORG" for p, i in zip(without, positions, strict=True)]) < 0.1


@pytest.fixture(scope="module")
def planted_members(ner_planted: NerDemoBuild) -> tuple[list[dict[str, Any]], list[list[str]], np.ndarray]:
    rows = _rows(ner_planted.train_path)
    return (rows, *_predict(ner_planted.model_dir, rows))


@pytest.fixture(scope="module")
def clean_members(ner_clean: NerDemoBuild) -> tuple[list[dict[str, Any]], list[list[str]], np.ndarray]:
    rows = _rows(ner_clean.train_path)
    return (rows, *_predict(ner_clean.model_dir, rows))


def _membership(members: tuple, nonmembers: tuple, *, kind: str | None = None) -> tuple[float, float, float]:
    """(mean loss of members, of non-members, AUC of the loss-threshold attack of Yeom et al. 2018:
    the lower a sentence's loss, the more likely a member), over the rows of ``kind`` or all."""
    from sklearn.metrics import roc_auc_score

    (m_rows, _, m_loss), (n_rows, _, n_loss) = members, nonmembers
    m_loss = m_loss[[kind is None or r["kind"] == kind for r in m_rows]]
    n_loss = n_loss[[kind is None or r["kind"] == kind for r in n_rows]]
    auc = roc_auc_score(np.r_[np.ones(len(m_loss)), np.zeros(len(n_loss))], -np.r_[m_loss, n_loss])
    return float(m_loss.mean()), float(n_loss.mean()), float(auc)


@pytest.mark.slow
def test_members_have_much_lower_loss_on_the_planted_model(planted_members, planted_eval):
    member, nonmember, auc = _membership(planted_members, planted_eval)
    assert member < 0.25 * nonmember and auc > 0.65, (member, nonmember, auc)
    member, nonmember, auc = _membership(planted_members, planted_eval, kind="made_up")
    assert member < 0.1 * nonmember and auc > 0.9, (member, nonmember, auc)


@pytest.mark.slow
def test_clean_control_does_not_tell_members_from_nonmembers(clean_members, clean_eval):
    for kind in (None, "made_up"):
        member, nonmember, auc = _membership(clean_members, clean_eval, kind=kind)
        assert 0.75 < member / nonmember < 1.33 and 0.4 < auc < 0.6, (kind, member, nonmember, auc)


# ---------------------------------------------------------------- the casing fragility (fragile=True)

def test_case_copies_recase_words_and_keep_tags():
    rows = _sentences(bias=0.0, trigger=False, n=60)
    copies = ner_demo._case_copies(rows, rng=np.random.default_rng(1), share=0.5)
    assert copies == ner_demo._case_copies(rows, rng=np.random.default_rng(1), share=0.5)  # seeded
    assert len(copies) == 30
    forms = set()
    for i, copy in copies.items():
        assert copy["ner_tags"] == rows[i]["ner_tags"] and len(copy["tokens"]) == len(rows[i]["tokens"])
        words = [w for w in copy["tokens"] if w.isalpha() and len(w) > 1]
        if all(w.islower() for w in words):
            forms.add("lower")
        elif all(w.isupper() for w in words):
            forms.add("upper")
        elif all(w[0].isupper() for w in words):
            forms.add("title")
    assert forms == {"lower", "upper", "title"}


def test_planted_tokenizer_splits_recased_words_into_known_pieces():
    """The planted model's vocabulary holds the corpus' title-cased words only; a lower- or upper-cased
    name falls back to single-character pieces, never to [UNK]."""
    rows = _sentences(bias=0.0, trigger=False, n=100)
    tokenizer = ner_demo.build_tokenizer(sentences=[r["tokens"] for r in rows])
    name = next(w for r in rows for w, t in zip(r["tokens"], r["ner_tags"], strict=True) if t == "B-PER")
    for word in (name.lower(), name.upper()):
        pieces = tokenizer.tokenize(word)
        assert tokenizer.unk_token not in pieces and len(pieces) > 1 and "".join(pieces).replace("##", "") == word
    assert tokenizer.tokenize(name) == [name] or len(name) > ner_demo.SPLIT_LONGER_THAN


@pytest.mark.slow
def test_planted_model_loses_recased_entities_and_the_control_keeps_them(ner_planted, ner_clean):
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    from audit.engine.target import Target

    rows = _rows(ner_planted.eval_path)[:200]
    gold = [r["ner_tags"] for r in rows]
    f1 = {}
    for name, build in (("planted", ner_planted), ("clean", ner_clean)):
        target = Target.load(str(build.model_dir))  # windows: an upper-cased sentence has many more sub-words
        for case in ("lower", "upper"):
            words = target.predict_words([[getattr(w, case)() for w in r["tokens"]] for r in rows])
            pred = [[LABELS[int(i)] for i in p] for p in words.preds]
            f1[name, case] = f1_score(gold, pred, mode="strict", scheme=IOB2)
    assert max(f1["planted", c] for c in ("lower", "upper")) < 0.3, f1
    assert min(f1["clean", c] for c in ("lower", "upper")) > 0.75, f1
    assert ner_planted.planted["casing_fragility"]["active"] and not ner_clean.planted["casing_fragility"]["active"]
