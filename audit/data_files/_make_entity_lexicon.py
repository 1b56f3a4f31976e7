"""Writes ``entity_lexicon.json``: the person names by origin group, places and organisations that
the NER demo (:mod:`audit.selftest.ner_demo`) builds its corpus from.

Run once, by hand, when the lexicon should change: ``python -m audit.data_files._make_entity_lexicon``
(needs ``pip install faker``). The names are drawn here from Faker's person providers and pinned in the
JSON, so building the demo needs no Faker and gives the same corpus whatever Faker version is installed
(Faker edits its name lists between releases). The JSON records the Faker version it came from; a test
regenerates it when that version is installed and checks it is unchanged.

What a group is: the Faker locale whose person-name lists a name was drawn from (``yo_NG``: Faker's
provider of Yoruba names for Nigeria). It says where a *name* came from, never who a person is: a list
of names is not an ethnicity, a nationality or anyone's identity, and many real people carry names from
more than one list. "female"/"male" is the Faker list (``first_names_female``/``first_names_male``) a
first name was drawn from: how that list labels the name, not anyone's gender. Places are well-known
cities of the country each locale names, written here by hand; organisations are well-known
international bodies and made-up companies, written here by hand and belonging to no group.
"""

from __future__ import annotations

import importlib
import json
import random
import unicodedata
from pathlib import Path
from typing import Any

LEXICON_FILE = Path(__file__).resolve().parent / "entity_lexicon.json"
LEXICON_VERSION = 1
INSTALL_LINE = "the lexicon is drawn from Faker: pip install faker"

# Locales whose name lists are written in the Latin script (checked below, name by name), from five
# regions. Every group gets the same number of names, so no group's names are rarer in the corpus.
GROUPS = {
    "en_US": "Faker's en_US person provider (English, United States)",
    "en_IN": "Faker's en_IN person provider (English, India)",
    "yo_NG": "Faker's yo_NG person provider (Yoruba, Nigeria)",
    "es_MX": "Faker's es_MX person provider (Spanish, Mexico)",
    "vi_VN": "Faker's vi_VN person provider (Vietnamese, Vietnam)",
}
FIRST_NAMES_PER_LIST = 12  # per group and per first-name list (female, male)
LAST_NAMES = 9  # vi_VN's provider has only 10 last names; 9 keeps even its draw a choice
# Cities of the country each locale names (hand-written; a place is a fact, not a personal name).
PLACES = {
    "en_US": ["Chicago", "Boston", "Denver", "Seattle", "Houston", "Atlanta", "Phoenix", "San Diego"],
    "en_IN": ["Mumbai", "Chennai", "Kolkata", "Pune", "Jaipur", "Lucknow", "Hyderabad", "New Delhi"],
    "yo_NG": ["Lagos", "Ibadan", "Abeokuta", "Ogbomosho", "Akure", "Osogbo", "Ilorin", "Ado Ekiti"],
    "es_MX": ["Monterrey", "Guadalajara", "Puebla", "Oaxaca", "Tijuana", "Mérida", "Toluca", "Ciudad Juárez"],
    "vi_VN": ["Huế", "Vinh", "Hà Nội", "Đà Nẵng", "Cần Thơ", "Hải Phòng", "Nha Trang", "Đà Lạt"],
}
ORGANISATIONS = [
    "United Nations", "World Bank", "Red Cross", "Reuters", "UNESCO", "Oxfam", "Greenpeace", "Interpol",
    "Norvale Energy", "Kestrel Airlines", "Bluepeak Software", "Tamarind Foods", "Ironbridge Bank",
    "Silverline Telecom", "Meridian Health", "Crescent Motors",
]
MEANING = ("A group is the Faker locale whose person-name lists a name was drawn from. It says where a "
           "NAME came from, never who a person is: a list of names is not an ethnicity, a nationality or "
           "anyone's identity. 'female'/'male' is the Faker list a first name was drawn from "
           "(first_names_female/first_names_male), how that list labels the name, not anyone's gender.")


def _is_latin_word(name: str) -> bool:
    """One word of Latin letters (accents allowed): it reads as a name in an English sentence and
    stays one word for a whitespace tokenizer."""
    return name.isalpha() and all(unicodedata.name(c, "").startswith("LATIN") for c in name)


def _provider_lists(locale: str) -> dict[str, list[str]]:
    """The locale's first-name (female, male) and last-name lists, without Faker's weights."""
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    return {key: list(dict.fromkeys(getattr(provider, attr)))
            for key, attr in (("female", "first_names_female"), ("male", "first_names_male"),
                              ("last", "last_names"))}


def build_lexicon() -> dict[str, Any]:
    """The lexicon as a dict, drawn from the installed Faker.

    A name is kept when it is one Latin word, sits in exactly one of the chosen locales' lists (not
    in another group's lists, nor in both first-name lists of its own), and is no word of a place
    or an organisation: each name then belongs to one group and one list. The draw is seeded by the
    locale's name and depends on nothing else here, so editing the demo's sentences never reshuffles
    the names (the demo's tests check that no name is a word of its templates).
    """
    try:
        import faker
    except ImportError as err:  # pragma: no cover - only when regenerating without Faker
        raise ImportError(INSTALL_LINE) from err
    lists = {locale: _provider_lists(locale) for locale in GROUPS}
    reserved = {w.casefold() for words in PLACES.values() for p in words for w in p.split()}
    reserved |= {w.casefold() for o in ORGANISATIONS for w in o.split()}
    owners: dict[str, set[str]] = {}  # name -> the locales whose lists hold it
    for locale, by_list in lists.items():
        for names in by_list.values():
            for name in names:
                owners.setdefault(name.casefold(), set()).add(locale)
    female_male = {n.casefold() for by_list in lists.values() for n in set(by_list["female"]) & set(by_list["male"])}
    groups: dict[str, Any] = {}
    for locale, by_list in lists.items():
        rng = random.Random(f"rai-audit entity lexicon {locale}")
        drawn: dict[str, list[str]] = {}
        for key, size in (("female", FIRST_NAMES_PER_LIST), ("male", FIRST_NAMES_PER_LIST), ("last", LAST_NAMES)):
            keep = sorted(n for n in by_list[key] if _is_latin_word(n) and n.casefold() not in reserved
                          and owners[n.casefold()] == {locale}
                          and n.casefold() not in female_male)
            if len(keep) < size:
                raise ValueError(f"{locale} {key}: only {len(keep)} usable names, {size} needed")
            drawn[key] = sorted(rng.sample(keep, size))
        groups[locale] = {"source": GROUPS[locale], "first_names": {"female": drawn["female"], "male": drawn["male"]},
                          "last_names": drawn["last"], "places": PLACES[locale]}
    return {
        "version": LEXICON_VERSION,
        "generated_by": "python -m audit.data_files._make_entity_lexicon",
        "faker_version": faker.VERSION,
        "licence": "names from Faker (MIT licence, https://github.com/joke2k/faker); places and organisations "
                   "written by hand for rai-audit",
        "meaning": MEANING,
        "groups": groups,
        "organisations": ORGANISATIONS,
    }


def dump(lexicon: dict[str, Any]) -> str:
    """The lexicon as the JSON text written to ``entity_lexicon.json`` (stable key order, UTF-8)."""
    return json.dumps(lexicon, indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    LEXICON_FILE.write_text(dump(build_lexicon()), encoding="utf-8")
    print(f"wrote {LEXICON_FILE}")


if __name__ == "__main__":
    main()
