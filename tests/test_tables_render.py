"""Wide tables in the report: a table that declares its on-screen columns shows those, with every
column in a closed <details> beneath; status-like columns render as chips; results.json keeps the
declaration and every column; print repeats a long table's header row on each page."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from audit.core.results import UNKNOWN_TABLE_COLUMN, AuditorResult, Table

COLUMNS = ["recipe", "examples", "successful", "failed", "avg_num_queries", "verified_successes", "cache_hits"]
SHOWN = ("recipe", "avg_num_queries", "verified_successes")


class _Tables(HTMLParser):
    """Each <table>: its header cells, its body rows of cell texts, and whether a <details> holds
    it (and whether that details is open)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._details: list[bool] = []  # open flag of each enclosing <details>
        self._cell: list[str] | None = None
        self._in_head = False
        self.chips: list[str] = []
        self._chip: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "details":
            self._details.append("open" in attrs)
        elif tag == "table":
            self.tables.append({"head": [], "rows": [], "in_details": bool(self._details),
                                "details_open": any(self._details)})
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td"):
            self._cell = []
        elif tag == "span" and "chip" in (attrs.get("class") or "").split():
            self._chip = []

    def handle_endtag(self, tag):
        if tag == "details":
            self._details.pop()
        elif tag == "thead":
            self._in_head = False
        elif tag in ("th", "td") and self._cell is not None:
            text = "".join(self._cell).strip()
            (self.tables[-1]["head"] if tag == "th" else self.tables[-1]["rows"][-1]).append(text)
            self._cell = None
        elif tag == "span" and self._chip is not None:
            self.chips.append("".join(self._chip).strip())
            self._chip = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._chip is not None:
            self._chip.append(data)


def _rendered(*tables: Table) -> tuple[str, _Tables]:
    from audit.report.html import render_section

    html = render_section(AuditorResult(auditor="some_plugin", tables=tables))
    parser = _Tables()
    parser.feed(html)
    return html, parser


def _wide(**declared) -> Table:
    rows = [["textfooler", 20, 7, 13, 412.5, 7, 3], ["pwws", 20, 9, 11, 301.0, 9, 0]]
    return Table(name="attacks", columns=COLUMNS, rows=rows, title="Attacks", **declared)


def test_a_declared_subset_is_shown_and_every_column_sits_in_a_closed_details():
    html, parsed = _rendered(_wide(shown=SHOWN))
    view, full = parsed.tables
    assert view["head"] == list(SHOWN)
    assert not view["in_details"]
    assert view["rows"] == [["textfooler", "412.500", "7"], ["pwws", "301.000", "9"]]
    assert full["head"] == COLUMNS
    assert full["in_details"] and not full["details_open"]
    assert full["rows"][0] == ["textfooler", "20", "7", "13", "412.500", "7", "3"]
    assert re.search(r"<summary>All 7 columns\s*\(4 more\)</summary>", html)


def test_a_table_without_a_declaration_shows_every_column_as_before():
    html, parsed = _rendered(_wide())
    assert len(parsed.tables) == 1
    assert parsed.tables[0]["head"] == COLUMNS and not parsed.tables[0]["in_details"]
    assert "<details" not in html


def test_the_declaration_round_trips_through_results_json_and_validates():
    from audit.core.schema import validate_result

    table = _wide(shown=SHOWN, chips=("recipe",))
    data = json.loads(json.dumps(AuditorResult(auditor="p", tables=(table,)).to_dict(), allow_nan=False))
    validate_result(data)
    assert data["tables"][0]["columns"] == COLUMNS  # results.json holds every column
    assert data["tables"][0]["shown"] == list(SHOWN)
    again = AuditorResult.from_dict(data).tables[0]
    assert again == table and again.shown == SHOWN and again.chips == ("recipe",)
    plain = AuditorResult(auditor="p", tables=(_wide(),)).to_dict()["tables"][0]
    assert "shown" not in plain and "chips" not in plain  # an undeclared table is written as before


def test_the_schema_rejects_a_declaration_that_is_not_a_list_of_names():
    import jsonschema

    from audit.core.schema import validate_result

    data = AuditorResult(auditor="p", tables=(_wide(shown=SHOWN),)).to_dict()
    data["tables"][0]["shown"] = "recipe"
    with pytest.raises(jsonschema.ValidationError):
        validate_result(data)


def test_a_declared_column_that_the_table_lacks_is_refused():
    with pytest.raises(ValueError) as err:
        _wide(shown=("recipe", "avg_queries"))
    assert str(err.value) == UNKNOWN_TABLE_COLUMN.format(table="attacks", field="shown", column="avg_queries",
                                                         columns=COLUMNS)


def test_from_frame_keeps_the_declaration_and_an_empty_frame_drops_it():
    frame = pd.DataFrame([{"slice": "g", "group": "a", "status": "judged", "count": 40}])
    table = Table.from_frame("groups", frame, shown=("group", "status"), chips=("status",))
    assert table.shown == ("group", "status") and table.shown_indices == [1, 2]
    empty = Table.from_frame("groups", pd.DataFrame([]), shown=("group",), chips=("status",))
    assert empty.shown == () and empty.chips == ()


def test_status_columns_render_as_chips_and_other_text_does_not():
    frame = pd.DataFrame([{"group": "women", "status": "judged", "count": 40},
                          {"group": "<b>men</b>", "status": "too small to judge", "count": 3}])
    html, parsed = _rendered(Table.from_frame("groups", frame, chips=("status",)))
    assert parsed.chips == ["judged", "too small to judge"]
    assert '<span class="chip chip-good">judged</span>' in html
    assert '<span class="chip">too small to judge</span>' in html
    assert "&lt;b&gt;men&lt;/b&gt;" in html and "<b>men</b>" not in html  # chips change nothing about escaping
    assert parsed.tables[0]["rows"][1] == ["<b>men</b>", "too small to judge", "3"]


def test_print_repeats_the_header_row_of_a_long_table_on_each_page():
    from audit.report.html import templates_dir

    css = (templates_dir() / "report.css.j2").read_text()
    print_block = css[css.index("@media print"):]
    assert re.search(r"thead\s*\{\s*display:\s*table-header-group", print_block)
    macros = (templates_dir() / "_macros.html.j2").read_text()
    assert "<thead>" in macros[macros.index("macro _table_body"):]

