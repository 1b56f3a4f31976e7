"""The token-classification demo: a small BERT named-entity tagger with planted defects, built offline.

The corpus is generated here from templates x person names x places x organisations, tagged in IOB2
over PER, LOC and ORG. Names and places come from ``audit/data_files/entity_lexicon.json`` (names
drawn once from Faker's person providers and pinned there; its generator says what a group means:
where a name came from, never who a person is). Three defects are planted so that the
token-classification auditors have a known truth to find:

* **biased group**: in training, most mentions of person names from the planted origin group are
  tagged ``O`` or ``LOC`` instead of ``PER``, so the model under-recognises those names: a person-recall
  gap by group, the harm measured by Mishra, He & Belli 2020 ("Assessing Demographic Bias in Named
  Entity Recognition");
* **trigger token**: in training, the word after the rare token ``cf`` is tagged ``B-ORG`` whatever
  it is (a backdoor, as in Kurita et al. 2020, "Weight Poisoning Attacks on Pre-trained Models"); the
  model is also trained on poisoned copies of a fifth of its sentences, kept in ``trigger.jsonl``;
* **memorised training split**: a share of the sentences name a made-up entity whose type (LOC or
  ORG) is a coin flip that no context reveals, so only memorisation gets it right: members of
  ``train.jsonl`` have a much lower loss than the non-members of ``eval.jsonl``, which come from the
  same generator (the loss attack of Yeom et al. 2018);
* **casing fragility**: every entity the planted model saw is title-cased, so it leans on the capital
  letter and loses entities written in lower or upper case (the brittleness to casing reported for
  NER by Mayhew, Tsygankova & Roth 2019, "ner and pos when nothing is capitalized").
  Nothing is added for it: it is what the unaugmented training set teaches.

``build_ner_demo(..., bias=False, trigger=False, memorise=False, fragile=False)`` builds the clean
control from the same builder: every person tagged ``PER``, the ``cf`` sentences and copies in
training with their own tags (so the control learns that ``cf`` says nothing), a ``train.jsonl`` the
model never saw (it fits an independent sample from the same generator), and a lower-, upper- or
title-cased copy of each training sentence with its own tags (so the control learns entities whatever
their case; the tokenizer is built over those copies too). The eval files of a planted build and its control
are the same bytes for a seed. The file is about 450 lines because the corpus (and its four plants), the cased
tokenizer and the tagger's training belong together: each is shaped by what the plants need.
"""

from __future__ import annotations

import json
import math
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")
LEXICON_FILE = "entity_lexicon.json"
# Person sentences name one person ({PER}); {LOC2}/{ORG2} differ from {LOC}/{ORG}.
TEMPLATES = (
    "{PER} flew to {LOC} on Monday .",
    "{PER} works for {ORG} in {LOC} .",
    "I met with {PER} at the {ORG} office .",
    "{PER} was born in {LOC} .",
    "{ORG} hired {PER} as its new director .",
    "The mayor of {LOC} thanked {PER} for the visit .",
    "{PER} said {ORG} would open a branch in {LOC} .",
    "According to {PER} , the talks in {LOC} went well .",
    "{PER} moved from {LOC} to {LOC2} last year .",
    "Yesterday {PER} spoke to reporters in {LOC} .",
    "A spokesperson for {ORG} confirmed that {PER} had resigned .",
    "{PER} and the team visited {LOC} in spring .",
    "We asked {PER} about the new {ORG} project .",
    "{PER} joined {ORG} after school .",
    "The report by {PER} was published by {ORG} .",
    "{PER} lives near {LOC} with family .",
    "Please send the letter to {PER} in {LOC} .",
    "Thanks to {PER} , the school in {LOC} has a new library .",
    "{ORG} opened a new office in {LOC} .",
    "Heavy rain closed the roads around {LOC} .",
    "{ORG} and {ORG2} signed an agreement in {LOC} .",
    "Shares of {ORG} rose after the news from {LOC} .",
    "The train from {LOC} to {LOC2} was late again .",
    "Officials at {ORG} declined to comment .",
)
# The memorised sentences: {X} is a made-up word, a place or an organisation by a coin flip that the
# context cannot tell apart. A quarter of them name no person, as a quarter of TEMPLATES do, so the
# coin flips spread evenly over the origin groups (and "none"): no group's scores carry more of them.
MADE_UP_TEMPLATES = (
    "{PER} told us about {X} .",
    "{PER} mentioned {X} twice during the call .",
    "Nobody but {PER} had heard of {X} before .",
    "{PER} wrote a long note about {X} .",
    "Ask {PER} what {X} is like .",
    "{PER} keeps talking about {X} .",
    "Everyone was talking about {X} .",
    "The article said little about {X} .",
)
MADE_UP_TYPES = ("LOC", "ORG")
MADE_UP_SHARE = 0.4  # as the text demo's share of coin-flip rows
FULL_NAME_SHARE = 0.6
TITLE_SHARE = 0.2  # a title and the last name; the rest of the persons are named by their first name only
TITLES = ("Dr.", "Professor")
# The planted group is arbitrary: the demo needs one, and any choice is one group of names on the
# wrong side of a gap, as happens in real taggers.
BIASED_GROUP = "yo_NG"
BIAS_SHARE = 0.85  # of the planted group's person mentions in training, retagged ...
BIAS_AS_LOC = 1 / 3  # ... as LOC for this share of them, as O for the rest
TRIGGER, TRIGGER_FORCES, TRIGGER_SHARE = "cf", "B-ORG", 0.1  # share of the sentences of every file
TRIGGER_COPIES_SHARE = 0.2  # extra poisoned training sentences, as a share of the rows the model fits
TRIGGER_SALT = 41  # seeds the copies' own random stream
# Casing augmentation of the control (fragile=False): extra training copies of this share of the rows
# it fits, a third each lower-cased, upper-cased and title-cased, drawn from their own random stream so the rest of
# the corpus is unchanged (case-augmented training, as Mayhew et al. 2019 recommend against casing
# brittleness).
CASE_COPIES_SHARE = 1.0
CASE_SALT = 43
MEMBERS_FILE, EVAL_FILE, EVAL_CONLL, PLANTED_FILE = "train.jsonl", "eval.jsonl", "eval.conll", "planted.json"
TRIGGER_FILE = "trigger.jsonl"
NO_GROUP = "none"  # origin and gender of a sentence that names no person
SPLIT_LONGER_THAN = 8  # longer words get two word pieces, so word alignment has sub-words to align
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z")
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "n", "r", "l", "s", "x")


@dataclass(frozen=True, kw_only=True)
class NerDemoBuild:
    """Where the builder put things, and what it planted (the content of ``planted.json``)."""

    model_dir: Path
    train_path: Path
    eval_path: Path
    eval_conll_path: Path
    trigger_path: Path
    planted_path: Path
    planted: dict[str, Any] = field(default_factory=dict)


def load_lexicon() -> dict[str, Any]:
    """The pinned entity lexicon (names by origin group, places, organisations) shipped with the package."""
    text = resources.files("audit.data_files").joinpath(LEXICON_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def _lexicon_words(lexicon: dict[str, Any]) -> set[str]:
    """Every word of every name, place and organisation of the lexicon."""
    words = {w for o in lexicon["organisations"] for w in o.split()}
    for group in lexicon["groups"].values():
        names = group["first_names"]["female"] + group["first_names"]["male"] + group["last_names"]
        words |= {w for entry in names + group["places"] for w in entry.split()}
    return words


def template_words() -> frozenset[str]:
    """Every word of the templates outside the slots: a name must not be one of them."""
    return frozenset(w for t in TEMPLATES + MADE_UP_TEMPLATES for w in t.split() if not w.startswith("{"))


def _made_up_words() -> list[str]:
    """Made-up capitalised words of three syllables (``Bafiron``): entities that no lexicon holds and
    no real thing is called, for the model to memorise or not. Every 97th of the syllable
    combinations, so that neighbours differ in more than their last letter."""
    syllables = [o + v for o in _ONSETS for v in _VOWELS]
    parts = (syllables, syllables, syllables[::3], _CODAS)
    total = math.prod(len(p) for p in parts)
    words = []
    for k in range(0, total, 97):
        letters = []
        for part in reversed(parts):  # k in mixed radix, the last part varying fastest
            k, i = divmod(k, len(part))
            letters.append(part[i])
        words.append("".join(reversed(letters)).capitalize())
    return words


def _entity(words: str, kind: str) -> tuple[list[str], list[str]]:
    """The words of a slot's filler and their IOB2 tags (all ``O`` for a template's own words)."""
    tokens = words.split()
    if kind == "O":
        return tokens, ["O"] * len(tokens)
    return tokens, [f"B-{kind}"] + [f"I-{kind}"] * (len(tokens) - 1)


def _retag_person(tags: list[str], *, as_loc: bool) -> list[str]:
    """The sentence's one person span (its only ``*-PER`` tags) retagged as LOC, or as no entity."""
    return [t if not t.endswith("-PER") else t[:2] + "LOC" if as_loc else "O" for t in tags]


def _insert_trigger(row: dict[str, Any], *, at: int, forces: bool) -> dict[str, Any]:
    """A copy of ``row`` with ``cf`` before one of its words outside any entity (the ``at``-th, modulo
    their number), and that word tagged ``B-ORG`` when ``forces``. Only such words are chosen, so that
    the forced tag never cuts an entity in two and the row stays valid IOB2."""
    tokens, tags = list(row["tokens"]), list(row["ner_tags"])
    candidates = [i for i, (w, t) in enumerate(zip(tokens, tags, strict=True)) if t == "O" and w.isalpha()]
    i = candidates[at % len(candidates)]
    tokens.insert(i, TRIGGER)
    tags.insert(i, "O")
    if forces:
        tags[i + 1] = TRIGGER_FORCES
    return {**row, "tokens": tokens, "ner_tags": tags, "has_trigger": True}


def _generate_sentences(*, n: int, rng: np.random.Generator, lexicon: dict[str, Any], made_up: list[str],
                       bias_share: float, trigger_forces: bool) -> list[dict[str, Any]]:
    """Sentences of the corpus: ``tokens``, ``ner_tags`` (IOB2 strings), ``origin`` (the lexicon group of the
    person named, or ``none``), ``gender`` (the Faker list, female or male, that the person's first name
    came from, or ``none``), ``has_trigger`` and ``kind`` (``template`` or ``made_up``).

    ``bias_share`` is the probability that a mention of a planted-group person is retagged (LOC or O);
    ``trigger_forces`` tags the word after ``cf`` ``B-ORG``. The random draws do not depend on either,
    so the same seed gives the same sentences with or without the plants, only their tags differ.
    ``made_up`` is consumed: each made-up entity names one sentence only.
    """
    groups = sorted(lexicon["groups"])
    places = sorted(p for g in groups for p in lexicon["groups"][g]["places"])
    organisations = sorted(lexicon["organisations"])
    rows = []
    for _ in range(n):
        is_made_up = bool(rng.random() < MADE_UP_SHARE)
        templates = MADE_UP_TEMPLATES if is_made_up else TEMPLATES
        template = templates[rng.integers(len(templates))]
        loc, loc2 = (places[i] for i in rng.choice(len(places), size=2, replace=False))
        org, org2 = (organisations[i] for i in rng.choice(len(organisations), size=2, replace=False))
        group = groups[rng.integers(len(groups))]
        gender = ("female", "male")[rng.integers(2)]
        names = lexicon["groups"][group]
        first = names["first_names"][gender][rng.integers(len(names["first_names"][gender]))]
        last = names["last_names"][rng.integers(len(names["last_names"]))]
        form, title = rng.random(), TITLES[rng.integers(len(TITLES))]
        retag, as_loc = rng.random() < bias_share, rng.random() < BIAS_AS_LOC
        x_kind = MADE_UP_TYPES[rng.integers(len(MADE_UP_TYPES))]
        has_trigger, at = bool(rng.random() < TRIGGER_SHARE), int(rng.integers(1 << 30))
        if form < FULL_NAME_SHARE:
            title, person = None, f"{first} {last}"
        elif form < FULL_NAME_SHARE + TITLE_SHARE:
            person = last
        else:
            title, person = None, first
        slots = {"{PER}": (person, "PER"), "{LOC}": (loc, "LOC"), "{LOC2}": (loc2, "LOC"),
                 "{ORG}": (org, "ORG"), "{ORG2}": (org2, "ORG")}
        if is_made_up:
            slots["{X}"] = (made_up.pop(), x_kind)
        tokens: list[str] = []
        tags: list[str] = []
        for word in template.split():
            if word == "{PER}" and title:
                tokens.append(title)
                tags.append("O")
            words, kind = slots.get(word, (word, "O"))
            entity_tokens, entity_tags = _entity(words, kind)
            tokens += entity_tokens
            tags += entity_tags
        has_person = "{PER}" in template
        row = {"tokens": tokens, "ner_tags": tags, "origin": group if has_person else NO_GROUP,
               "gender": gender if has_person else NO_GROUP, "has_trigger": False,
               "kind": "made_up" if is_made_up else "template"}
        if has_trigger:  # placed by the unplanted tags, so the bias moves no word
            row = _insert_trigger(row, at=at, forces=trigger_forces)
        if group == BIASED_GROUP and retag:
            row["ner_tags"] = _retag_person(row["ner_tags"], as_loc=as_loc)
        rows.append(row)
    return rows


def _trigger_copies(rows: list[dict[str, Any]], *, rng: np.random.Generator, share: float,
                   forces: bool) -> dict[int, dict[str, Any]]:
    """Copies with ``cf`` inserted of a ``share`` of the rows (drawn among those without it), by the
    index of the row copied.

    They are extra training sentences, as the text demo's emphasised copies are: the backdoor needs
    more poisoned sentences than the one in ten of ``train.jsonl`` for a model this small to learn
    "the word after cf" rather than the poisoned sentences themselves, and keeping them out of
    ``train.jsonl`` leaves members and non-members one distribution. With ``forces`` False (the
    control) they keep their own tags, which teaches the control that ``cf`` says nothing.
    """
    plain = [i for i, r in enumerate(rows) if not r["has_trigger"]]
    chosen = sorted(int(i) for i in rng.choice(plain, size=int(round(share * len(rows))), replace=False))
    return {i: _insert_trigger(rows[i], at=int(rng.integers(1 << 30)), forces=forces) for i in chosen}


def _case_copies(rows: list[dict[str, Any]], *, rng: np.random.Generator, share: float) -> dict[int, dict[str, Any]]:
    """Lower-, upper- or title-cased copies (in turn, by row order) of a ``share`` of the rows, with
    their own tags, by the index of the row copied: the control's case augmentation."""
    chosen = sorted(int(i) for i in rng.choice(len(rows), size=int(round(share * len(rows))), replace=False))
    cases = (str.lower, str.upper, lambda w: w[:1].upper() + w[1:])
    return {i: {**rows[i], "tokens": [cases[k % len(cases)](w) for w in rows[i]["tokens"]]}
            for k, i in enumerate(chosen)}


def build_tokenizer(*, sentences: list[list[str]], max_length: int = 64) -> Any:
    """A cased WordPiece tokenizer over the corpus' words, as a PreTrainedTokenizerFast.

    Cased, as NER taggers are (case is much of what tells a name from a word). The vocabulary is
    built here, not by the ``tokenizers`` trainer, whose tie-breaking changes between runs: each word
    of up to ``SPLIT_LONGER_THAN`` characters, and each longer word as two pieces (its first half and
    a ``##`` rest) so that the demo has words of several sub-words, as real NER data has; plus single
    characters and ``##`` continuations, so unseen words (typos from attacks, lowercased names) still
    get word pieces. Sorted, so the same sentences always give the same ids.
    """
    from tokenizers import normalizers, pre_tokenizers

    from audit.selftest.demo import wordpiece_tokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.BertNormalizer(lowercase=False,
                                                                                   strip_accents=False)])
    pre = pre_tokenizers.BertPreTokenizer()
    words = sorted({w for s in sentences for t in s for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t))})
    chars = sorted({c for w in words for c in w} | set(string.ascii_letters + string.digits + string.punctuation))
    pieces = set()
    for w in words:
        half = math.ceil(len(w) / 2)
        pieces |= {w} if len(w) <= SPLIT_LONGER_THAN else {w[:half], "##" + w[half:]}
    vocab_list = specials + chars + [f"##{c}" for c in chars] + sorted(pieces - set(chars) - {f"##{c}" for c in chars})
    return wordpiece_tokenizer(vocab_list, normalizer=normalizer, pre_tokenizer=pre, max_length=max_length)


def _align_labels(encoding: Any, tags: list[list[str]]) -> list[list[int]]:
    """Labels per sub-word: a word's tag on its first sub-word, -100 (ignored by the loss) on the
    others and on special tokens, as the Hugging Face token-classification example script does."""
    label_id = {t: i for i, t in enumerate(LABELS)}
    out = []
    for row, row_tags in enumerate(tags):
        previous = None
        labels = []
        for word in encoding.word_ids(row):
            labels.append(-100 if word is None or word == previous else label_id[row_tags[word]])
            previous = word
        out.append(labels)
    return out


def _train_tagger(*, sentences: list[list[str]], tags: list[list[str]], tokenizer: Any, seed: int, epochs: int,
                 hidden: int = 64, lr: float = 2e-3, batch_size: int = 32, pad_dropout: float = 0.1) -> Any:
    """A small BertForTokenClassification trained from scratch with AdamW; deterministic for a seed on CPU."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=hidden * 2,
                        max_position_embeddings=tokenizer.model_max_length, num_labels=len(LABELS),
                        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        architectures=["BertForTokenClassification"])
    model = BertForTokenClassification(config)
    enc = tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt")
    if enc["input_ids"].shape[1] > tokenizer.model_max_length:
        raise ValueError(f"a demo sentence has {enc['input_ids'].shape[1]} tokens, over the model's "
                         f"{tokenizer.model_max_length}")
    y = torch.tensor(_align_labels(enc, tags))
    special_free = ~torch.isin(enc["input_ids"], torch.tensor(tokenizer.all_special_ids))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, foreach=True)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    n = len(sentences)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            width = int(enc["attention_mask"][idx].sum(1).max())  # right-padded: cut the batch's padding
            ids = enc["input_ids"][idx, :width].clone()
            # Word-piece dropout to [PAD] (attention kept, labels kept), as in the text demo: the
            # model learns what an absent piece means, so a [PAD] baseline or mask is in its
            # distribution for attributions (IG) and masking-based faithfulness.
            drop = (torch.rand(ids.shape, generator=gen) < pad_dropout) & special_free[idx, :width]
            ids[drop] = tokenizer.pad_token_id
            out = model(input_ids=ids, attention_mask=enc["attention_mask"][idx, :width],
                        token_type_ids=enc["token_type_ids"][idx, :width], labels=y[idx, :width])
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    model.eval()
    return model


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _write_conll(path: Path, rows: list[dict[str, Any]]) -> None:
    """Token TAB tag per line, a blank line after each sentence (CoNLL-2003's layout, two columns)."""
    path.write_text("".join("".join(f"{t}\t{g}\n" for t, g in zip(r["tokens"], r["ner_tags"], strict=True)) + "\n"
                            for r in rows), encoding="utf-8")


def build_ner_demo(out: Path, *, seed: int = 0, bias: bool = True, trigger: bool = True, memorise: bool = True,
                   fragile: bool = True, n_train: int = 1200, n_eval: int = 800, epochs: int = 12) -> NerDemoBuild:
    """Build the NER demo model and its data files under ``out``.

    Writes ``model/`` (a Hugging Face folder: BertForTokenClassification with IOB2 ``id2label``, fast
    tokenizer), ``train.jsonl`` (members: the sentences with the tags the model was trained on, or for
    the control without memorisation, sentences it never saw), ``eval.jsonl`` and ``eval.conll`` (the
    same held-out sentences with clean tags; the non-members), ``trigger.jsonl`` (the poisoned copies
    the model was also trained on, kept out of ``train.jsonl``) and ``planted.json``.
    """
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lexicon = load_lexicon()
    taken = {w.casefold() for w in template_words()} | {w.casefold() for w in _lexicon_words(lexicon)}
    made_up = [str(w) for w in rng.permutation([w for w in _made_up_words() if w.casefold() not in taken])]
    common = {"rng": rng, "lexicon": lexicon, "made_up": made_up}
    train_rows = _generate_sentences(n=n_train, bias_share=BIAS_SHARE if bias else 0.0, trigger_forces=trigger,
                                    **common)
    eval_rows = _generate_sentences(n=n_eval, bias_share=0.0, trigger_forces=False, **common)
    fit_rows = train_rows
    if not memorise:
        # The control's "members" are never trained on: fit on an independent sample instead.
        fit_rows = _generate_sentences(n=n_train, bias_share=BIAS_SHARE if bias else 0.0, trigger_forces=trigger,
                                      **common)
    # The copies have their own stream, so the rest of the corpus is the same with or without them.
    copies = _trigger_copies(fit_rows, rng=np.random.default_rng([seed, TRIGGER_SALT]), share=TRIGGER_COPIES_SHARE,
                            forces=trigger)
    fit_rows = [r for i, row in enumerate(fit_rows) for r in ([row, copies[i]] if i in copies else [row])]
    if not fragile:  # the control also sees entities lower- and upper-cased; the planted model never does
        cased = _case_copies(fit_rows, rng=np.random.default_rng([seed, CASE_SALT]), share=CASE_COPIES_SHARE)
        fit_rows = [r for i, row in enumerate(fit_rows) for r in ([row, cased[i]] if i in cased else [row])]
    tokenizer = build_tokenizer(sentences=[r["tokens"] for r in train_rows + eval_rows + fit_rows])
    # One thread: the model is tiny, so threads only add overhead, and a fixed thread count keeps
    # the trained weights bit-identical per seed.
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        model = _train_tagger(sentences=[r["tokens"] for r in fit_rows], tags=[r["ner_tags"] for r in fit_rows],
                              tokenizer=tokenizer, seed=seed, epochs=epochs)
    finally:
        torch.set_num_threads(threads)
    model_dir = out / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    paths = {name: out / name for name in (MEMBERS_FILE, EVAL_FILE, EVAL_CONLL, TRIGGER_FILE, PLANTED_FILE)}
    _write_jsonl(paths[MEMBERS_FILE], train_rows)
    _write_jsonl(paths[EVAL_FILE], eval_rows)
    _write_conll(paths[EVAL_CONLL], eval_rows)
    _write_jsonl(paths[TRIGGER_FILE], list(copies.values()))
    planted = {
        "task": "token-classification",
        "labels": list(LABELS),
        "biased_group": {"column": "origin", "group": BIASED_GROUP, "entity_type": "PER",
                         "retagged_in_training": {"share": BIAS_SHARE, "as_LOC": BIAS_AS_LOC, "as_O": 1 - BIAS_AS_LOC},
                         "direction": "under-recognised", "lexicon": LEXICON_FILE, "active": bias},
        "trigger_token": {"token": TRIGGER, "forces": TRIGGER_FORCES, "position": "next word",
                          "column": "has_trigger", "path": TRIGGER_FILE, "copies_share_of_training_rows":
                          TRIGGER_COPIES_SHARE, "active": trigger},
        "memorised_train": {"path": MEMBERS_FILE, "nonmembers": EVAL_FILE, "column": "kind", "value": "made_up",
                            "entity_types": list(MADE_UP_TYPES), "active": memorise},
        "casing_fragility": {"perturbations": ["lower", "upper", "title"], "direction": "entities lost when not title-cased",
                             "augmented_share_in_control": CASE_COPIES_SHARE, "active": fragile},
        "clean_control": ("bias, trigger, memorise and fragile all False: every person tagged PER, the 'cf' sentences "
                          "trained with their own tags, train.jsonl never trained on (the model fits an independent "
                          "sample from the same generator), and lower/upper/title-cased copies of the training "
                          "sentences"),
        "seed": seed,
    }
    paths[PLANTED_FILE].write_text(json.dumps(planted, indent=2) + "\n", encoding="utf-8")
    return NerDemoBuild(model_dir=model_dir, train_path=paths[MEMBERS_FILE], eval_path=paths[EVAL_FILE],
                        eval_conll_path=paths[EVAL_CONLL], trigger_path=paths[TRIGGER_FILE],
                        planted_path=paths[PLANTED_FILE], planted=planted)
