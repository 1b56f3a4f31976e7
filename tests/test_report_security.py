"""The HTML report treats dataset text, label names, model names and config values as hostile:
nothing from them runs in a real browser (Debian's chromium), and nothing is fetched."""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest

from audit import AuditConfig, run_audit
from tests._text import one_line
from tests._tiny import save_tiny_model

PAYLOADS = [
    "<script>document.title='pwned-1'</script>",
    "<img src=x onerror=\"document.title='pwned-2'\">",
    "<a href=\"javascript:document.title='pwned-3'\" id=lnk>click</a>",
    "</td></tr></table><script>document.title='pwned-4'</script>",
    "\"><svg onload=\"document.title='pwned-5'\">",
    "\u202e\u2066<script>document.title='pwned-6'</script>\u2069",
    "</title><script>document.title='pwned-7'</script>",
    "<iframe srcdoc=\"<script>parent.document.title='pwned-8'</script>\"></iframe>",
    "<link rel=stylesheet href=http://127.0.0.1:9/x.css><style>@import 'http://127.0.0.1:9/y.css';</style>",
    "{{ 7 * 7 }}{% raw %}",
    "the elderly woman said <script>document.title='pwned-13'</script> was great",
    "the young man said <img src=x onerror=\"document.title='pwned-14'\"> was awful",
]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xss")
    labels = ["<b onmouseover=\"document.title='pwned-9'\">neg</b>", "pos<script>document.title='pwned-10'</script>"]
    model = save_tiny_model(tmp / "m<svg onload=\"document.title='pwned-11'\">", num_labels=2, labels=labels)
    rows = [{"text": p, "label": i % 2, "group": p[:20]} for i, p in enumerate(PAYLOADS * 4)]
    data = tmp / "hostile.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    out = tmp / "out"
    # Every auditor runs, so dataset text reaches the report through counterfactual examples,
    # heat-mapped explanations, adversarial examples and invariance examples.
    cfg = AuditConfig(model=str(model), data=str(data), out=str(out), sensitive=["group"],
                      thresholds=["performance.accuracy >= 0.0"],
                      options={"explainability": {"explain_examples": 6, "methods": ["integrated_gradients"],
                                                  "n_steps": 8, "sanity_check": False},
                               "robustness": {"attack_examples": 4, "recipes": ["deepwordbug"],
                                              "invariance_examples": 20},
                               "fairness": {"n_bootstrap": 50, "min_group_size": 2}},
                      model_card={"intended_use": "<script>document.title='pwned-12'</script>"})
    run_audit(cfg, progress=False)
    return out / "report.html"


def test_no_payload_reaches_the_html_unescaped(hostile_report):
    html = hostile_report.read_text()
    results = __import__("json").loads((hostile_report.parent / "results.json").read_text())
    assert {r["auditor"]: r["status"] for r in results["results"]} == {
        "performance": "ok", "fairness": "ok", "explainability": "ok", "robustness": "ok", "privacy": "ok"}
    assert "&lt;script&gt;document.title=" in html  # dataset text is shown, as text
    assert "<script" not in html.lower()
    assert not re.search(r"<[a-z][^>]*\son\w+\s*=", html, re.I)  # no event-handler attribute
    assert not re.search(r"<[^>]*\s(href|src)\s*=\s*[\"']?\s*(javascript|http)", html, re.I)  # inside a real tag
    assert not re.search(r"<(iframe|link|img|object|embed)\b", html, re.I)
    assert "m&lt;svg onload=" in one_line(html) and "pos&lt;script&gt;" in html  # shown, but as text
    assert "Content-Security-Policy" in html and "default-src 'none'" in one_line(html)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (CI installs it)")
def test_no_payload_runs_in_headless_chromium(hostile_report, tmp_path):
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", "--dump-dom",
         hostile_report.as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert "<body" in dom, proc.stderr[-2000:]
    import html as _html

    title = _html.unescape(re.search(r"<title>(.*?)</title>", dom, re.S).group(1))
    original = _html.unescape(re.search(r"<title>(.*?)</title>", hostile_report.read_text(), re.S).group(1))
    assert title == original  # no payload changed document.title
    assert "pwned-1'" not in title.replace(original, "")
