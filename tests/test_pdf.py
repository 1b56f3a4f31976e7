"""report.pdf: printed by headless Chromium from the rendered report, one page per auditor section,
page numbers from the print CSS, a table of contents, and a first page that is not blank."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from audit.core.results import AuditorResult, AuditReport, Finding, Metric, Table
from audit.core.verdicts import PolicyOutcome, PolicyVerdict
from audit.errors import AuditInputError
from audit.report import pdf
from tests._text import one_line, starts_a_line

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "<script>alert('x')</script>"
# What the lead adds to report.css.j2 (print block) and model_card.html.j2; injected here until then.
PAGE_NUMBERS_CSS = ('@media print { @page { @bottom-right { content: "Page " counter(page) " of " counter(pages); '
                    'font: 9pt "DejaVu Sans", sans-serif; color: #5b6673; } } }')
TOC = ('<nav class="toc" id="contents"><h2>Contents</h2><ol>'
       '<li><a href="#summary">Summary of findings</a></li>{items}'
       '<li><a href="#compliance">Compliance review</a></li>'
       '<li><a href="#limitations">Limitations of this audit</a></li></ol></nav>')

needs_tools = pytest.mark.skipif(
    pdf.find_chromium() is None or not all(shutil.which(t) for t in ("pdfinfo", "pdftotext", "pdftoppm")),
    reason="needs chromium and poppler-utils (pdfinfo, pdftotext, pdftoppm); CI installs both")


def _report() -> AuditReport:
    meta = json.loads((ROOT / "tests" / "data" / "metadata.json").read_text())
    meta["auditor_titles"] = {"performance": "Performance", "privacy": "Privacy", "robustness": "Robustness"}
    return AuditReport(
        metadata=meta,
        results=[
            AuditorResult("performance", metrics=(Metric("accuracy", 0.9, 0.85, 0.95, True),),
                          tables=(Table("classification_report", ["class", "f1-score"], [["a", 0.9], ["b", 0.8]]),),
                          findings=(Finding("warn", f"Poorly calibrated {HOSTILE}"),)),
            AuditorResult("privacy", status="skipped", reason="no training data was given"),
            AuditorResult("robustness", status="failed", reason="RuntimeError: boom"),
        ],
        policy=PolicyVerdict.of([PolicyOutcome(kind="threshold", rule="performance.accuracy >= 0.95", value=0.9,
                                               outcome="fail", auditor="performance", metric="accuracy")]))


def _html_with_print_extras(report: AuditReport, out: Path) -> Path:
    """report.html as write_report renders it, plus page numbers, a TOC and the compliance section."""
    from audit.report.compliance import assess, load_mapping, reviewer_fields
    from audit.report.html import environment
    from audit.runner import write_report

    write_report(report, out)
    html = (out / "report.html").read_text(encoding="utf-8")
    items = "".join(f'<li><a href="#sec-{r.auditor}">{report.metadata["auditor_titles"][r.auditor]}</a></li>'
                    for r in report.results)
    compliance = environment().get_template("_compliance.html.j2").render(
        compliance=assess(report, load_mapping()), reviewer=reviewer_fields({"owner": "Risk team"}))
    html = html.replace("</style>", PAGE_NUMBERS_CSS + "</style>", 1)
    html = html.replace('<section class="summary"', TOC.format(items=items) + '<section class="summary"', 1)
    html = html.replace('<section id="limitations"', '<section id="compliance" class="card-section auditor-section">'
                        f'<h2>Compliance review</h2>{compliance}</section><section id="limitations"', 1)
    path = out / "report-print.html"
    path.write_text(html, encoding="utf-8")
    return path


@needs_tools
def test_pdf_has_a_page_per_section_numbers_contents_and_a_visible_first_page(tmp_path: Path) -> None:
    from PIL import Image

    html = _html_with_print_extras(_report(), tmp_path)
    target = tmp_path / "report.pdf"
    pdf.write_pdf(html_path=html, pdf_path=target)
    data = target.read_bytes()
    assert data[:5] == b"%PDF-"
    assert data.count(b"/Link") >= 6  # the contents entries are links to the sections
    info = subprocess.run(["pdfinfo", str(target)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    # summary page(s), then each auditor section and the compliance section on a page of its own
    assert pages >= 5
    text = subprocess.run(["pdftotext", "-layout", str(target), "-"], capture_output=True, text=True,
                          check=True).stdout
    per_page = text.split("\f")
    for title in ("Performance", "Privacy", "Robustness", "Compliance review"):
        starts = [i for i, p in enumerate(per_page) if starts_a_line(title, p)]
        assert starts, title
    first, last = one_line(per_page[0]), one_line(per_page[pages - 1])
    assert "Contents" in first and "Summary of findings" in first
    assert f"Page 1 of {pages}" in first and f"Page {pages} of {pages}" in last
    assert "not a legal determination of conformity" in one_line(text) and "Risk team" in one_line(text)
    assert "<script>" in text  # escaped in HTML, so printed as text rather than run
    # page 1 as an image: not blank
    png = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(target), str(png)], check=True)
    (image_path,) = tmp_path.glob("page*.png")
    image = Image.open(image_path).convert("L")
    dark = sum(1 for v in image.getdata() if v < 200)
    assert dark > 0.01 * image.width * image.height


@needs_tools
def test_the_packaged_report_prints_as_rendered(tmp_path: Path) -> None:
    """The plain report.html (no extras) prints too: one page per auditor section at least."""
    from audit.runner import write_report

    write_report(_report(), tmp_path)
    pdf.write_pdf(html_path=tmp_path / "report.html", pdf_path=tmp_path / "out" / "report.pdf")
    info = subprocess.run(["pdfinfo", str(tmp_path / "out" / "report.pdf")], capture_output=True, text=True,
                          check=True).stdout
    assert int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1)) >= 4
    assert not list((tmp_path / "out").glob(".report.pdf.tmp-*"))


def test_missing_chromium_names_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "r.html").write_text("<p>x</p>")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(pdf.ENV_CHROMIUM, raising=False)
    with pytest.raises(AuditInputError, match="apt-get install chromium"):
        pdf.write_pdf(html_path=tmp_path / "r.html", pdf_path=tmp_path / "r.pdf")
    assert not (tmp_path / "r.pdf").exists()


def test_missing_html_is_named(tmp_path: Path) -> None:
    with pytest.raises(AuditInputError, match="HTML report not found"):
        pdf.write_pdf(html_path=tmp_path / "nope.html", pdf_path=tmp_path / "r.pdf")


def test_a_browser_that_fails_is_reported_with_its_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'ERROR:printing failed' >&2\nexit 3\n")
    fake.chmod(0o755)
    (tmp_path / "r.html").write_text("<p>x</p>")
    monkeypatch.setenv(pdf.ENV_CHROMIUM, str(fake))
    with pytest.raises(AuditInputError, match=r"exit status 3\): ERROR:printing failed"):
        pdf.write_pdf(html_path=tmp_path / "r.html", pdf_path=tmp_path / "r.pdf")
    assert not list(tmp_path.glob("*.pdf*")) and not list(tmp_path.glob(".r.pdf*"))


def test_chromium_runs_offline_with_a_throwaway_profile(tmp_path: Path) -> None:
    cmd = pdf.chromium_command("chromium", html_path=tmp_path / "r.html", pdf_path=tmp_path / "r.pdf",
                               profile=tmp_path / "p")
    for flag in ("--headless", "--disable-background-networking", "--no-pdf-header-footer", "--disable-quic",
                 f"--user-data-dir={tmp_path / 'p'}", f"--print-to-pdf={tmp_path / 'r.pdf'}"):
        assert flag in cmd
    assert cmd[-1].startswith("file://")


def test_what_the_screen_collapses_is_printed_open():
    """A closed <details> prints as its summary line only: the PDF is printed from a copy with
    every block open (unjudgeable groups, full tables), and the HTML file is left as written."""
    from audit.report.pdf import open_details

    html = '<details><summary>5 groups</summary><table>t</table></details><details open>x</details>' \
           '<details class="u">y</details><detailsx>'
    assert open_details(html) == ('<details open><summary>5 groups</summary><table>t</table></details>'
                                  '<details open>x</details><details open class="u">y</details><detailsx>')
