"""report.pdf from report.html, printed by headless Chromium.

Why Chromium: reviewers open the HTML report in a browser, and most browsers are Chromium's
Blink; printing with the same engine gives the same layout, the same print CSS (page breaks
between auditor sections, ``@page`` margin boxes for page numbers) and the same inline SVG as
the HTML they check on screen. It adds no Python dependency (the distribution's ``chromium``
package, which CI installs anyway for the HTML check). WeasyPrint would be the alternative: a
well-kept pure-Python renderer, but with its own CSS engine (no flexbox gaps or some SVG), a
stack of native libraries (Pango, cairo), and a layout that can differ from what the reviewer
saw in the browser.

The HTML is self-contained and its Content-Security-Policy forbids every fetch; Chromium also
runs with networking, sync, component updates and first-run work turned off, a throw-away
profile, and a timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from audit.errors import PATH_MISSING, AuditInputError
from audit.report.outdir import atomic_write

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROMIUM_MISSING = ("--pdf needs Chromium to print the report, and none was found on PATH (looked for "
                    "{names}); install it, e.g. 'sudo apt-get install chromium' on Debian/Ubuntu, or set "
                    "RAI_AUDIT_CHROMIUM to the browser's path")
PDF_FAILED = "Chromium could not print {html} to PDF (exit status {code}): {error}"
PDF_TIMEOUT = "Chromium did not finish printing {html} within {timeout:g} s"
ENV_CHROMIUM = "RAI_AUDIT_CHROMIUM"


def find_chromium() -> str | None:
    """The browser to print with: $RAI_AUDIT_CHROMIUM, else the first Chromium on PATH."""
    override = os.environ.get(ENV_CHROMIUM)
    if override:
        return shutil.which(override) or (override if Path(override).is_file() else None)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM_ENV_BAD = "--pdf: {env}={value!r} is not a browser that can be run; fix or unset it"


def require_chromium() -> str:
    """The browser for --pdf, or a one-line error now (before the audit, not after it)."""
    browser = find_chromium()
    if browser is None:
        override = os.environ.get(ENV_CHROMIUM)
        if override:
            raise AuditInputError(CHROMIUM_ENV_BAD.format(env=ENV_CHROMIUM, value=override))
        raise AuditInputError(CHROMIUM_MISSING.format(names=", ".join(CHROMIUM_NAMES)))
    return browser


def chromium_command(browser: str, *, html_path: Path, pdf_path: Path, profile: Path) -> list[str]:
    """The headless print command: offline, no first-run or background work, no header/footer
    from Chromium (page numbers come from the report's own ``@page`` CSS)."""
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            "--no-pdf-header-footer", f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()]


_DETAILS = re.compile(r"<details(?=[\s>])(?![^>]*\bopen\b)")


def open_details(html: str) -> str:
    """The report with every ``<details>`` block open: on paper nothing can be clicked open, so
    what the screen collapses (unjudgeable groups, full tables) is printed in full."""
    return _DETAILS.sub("<details open", html)


def write_pdf(*, html_path: Path, pdf_path: Path, timeout: float = 120) -> None:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium. Raises AuditInputError when
    Chromium is missing (naming how to install it), fails, or runs past ``timeout`` seconds."""
    html_path, pdf_path = Path(html_path), Path(pdf_path)
    if not html_path.is_file():
        raise AuditInputError(PATH_MISSING.format(what="HTML report", path=html_path))
    browser = require_chromium()
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    # Chromium writes into a private temporary folder of ours (a predictable name beside the
    # report could be a planted symlink); the bytes are then moved in atomically.
    with tempfile.TemporaryDirectory(prefix="rai-audit-chromium-") as work:
        tmp_pdf = Path(work) / "report.pdf"
        profile = Path(work) / "profile"
        printed = Path(work) / "report.html"  # self-contained: inline CSS and SVG, nothing relative
        printed.write_text(open_details(html_path.read_text(encoding="utf-8")), encoding="utf-8")
        cmd = chromium_command(browser, html_path=printed, pdf_path=tmp_pdf, profile=profile)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AuditInputError(PDF_TIMEOUT.format(html=html_path, timeout=timeout)) from None
        if proc.returncode != 0 or not tmp_pdf.is_file() or tmp_pdf.stat().st_size == 0:
            lines = [ln for ln in (proc.stderr or "").splitlines() if "ERROR" in ln or "error" in ln]
            raise AuditInputError(PDF_FAILED.format(html=html_path, code=proc.returncode,
                                                    error=(lines[-1] if lines else "no PDF was written")[:300]))
        atomic_write(pdf_path.parent, pdf_path.name, tmp_pdf.read_bytes())
