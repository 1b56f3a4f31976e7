"""The Hugging Face model card (README.md): YAML front matter with ``model-index`` results, then
the same evidence as the HTML report in Markdown. Text from the data is escaped for Markdown
and HTML, since the Hub renders HTML inside Markdown."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from audit.core.results import AuditReport, Table
from audit.core.scorecard import SCORECARD_NOTE, KeyNumber, Scorecard
from audit.core.verdicts import ComplianceAssessment
from audit.report.compliance import DISCLAIMER
from audit.report.html import format_number
from audit.report.limitations import limitations

# Metrics that go into model-index, with the Hub's metric type ids.
MODEL_INDEX_METRICS = {
    ("performance", "accuracy"): ("accuracy", "Accuracy"),
    ("performance", "macro_f1"): ("f1", "Macro F1"),
    ("performance", "weighted_f1"): ("f1", "Weighted F1"),
    ("performance", "macro_precision"): ("precision", "Macro precision"),
    ("performance", "macro_recall"): ("recall", "Macro recall"),
    ("performance", "roc_auc"): ("roc_auc", "ROC AUC"),
    # token classification: seqeval's names, as the Hub's token-classification cards use them
    ("performance", "entity_precision_micro"): ("precision", "Precision (seqeval, strict)"),
    ("performance", "entity_recall_micro"): ("recall", "Recall (seqeval, strict)"),
    ("performance", "entity_f1_micro"): ("f1", "F1 (seqeval, strict)"),
    ("performance", "token_accuracy"): ("accuracy", "Accuracy (words)"),
}
TASK_NAMES = {"text-classification": "Text Classification", "token-classification": "Token Classification"}
# Metrics listed per clause in the card's compliance table; results.json and the HTML list all.
MAX_CLAUSE_EVIDENCE = 6


def md_escape(value: Any) -> str:
    """Text safe in a Markdown table cell: HTML escaped, pipes and newlines neutralised."""
    text = str(format_number(value))
    text = html.escape(text, quote=False)
    for ch in ("\\", "|", "*", "_", "`", "[", "]"):
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())


def md_table(table: Table, *, max_rows: int = 30) -> str:
    lines = ["| " + " | ".join(md_escape(c) for c in table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    for row in table.rows[:max_rows]:
        lines.append("| " + " | ".join(md_escape(v) for v in row) + " |")
    if len(table.rows) > max_rows:
        lines.append(f"\n_{len(table.rows) - max_rows} more rows in results.json._")
    return "\n".join(lines)


def front_matter(report: AuditReport) -> dict[str, Any]:
    meta = report.metadata
    metrics = []
    for r in report.results:
        if r.status != "ok":
            continue
        for m in r.metrics:
            key = (r.auditor, m.name)
            if key in MODEL_INDEX_METRICS and m.slice is None and m.value is not None:
                mtype, label = MODEL_INDEX_METRICS[key]
                metrics.append({"type": mtype, "value": round(float(m.value), 4), "name": label})
    task = str(meta["model"].get("task") or "text-classification")
    card: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": task,
        "tags": ["rai-audit", task, "model-card"],
    }
    if metrics:
        card["model-index"] = [{
            "name": str(meta["model"]["name"]),
            "results": [{
                "task": {"type": task, "name": TASK_NAMES.get(task, task)},
                "dataset": {"name": str(meta["data"]["source"]), "type": "custom", "split": "eval"},
                "metrics": metrics,
            }],
        }]
    return card


def _membership_lines(mia: dict[str, Any]) -> list[str]:
    """The membership-inference verdict: the same sentences as the HTML section (results.json
    holds them), the warning that members and non-members differ without the model first."""
    statements = mia.get("statements") or []
    if not mia.get("ran") or not statements:
        return []
    lines = ["Membership inference:", ""]
    for st in statements:
        text = md_escape(st.get("text", ""))
        lines.append(f"- **{text}**" if st.get("kind") == "warn" else f"- {text}")
    return [*lines, ""]


def render_markdown(report: AuditReport) -> str:
    import yaml

    meta = report.metadata
    out = ["---", yaml.safe_dump(front_matter(report), sort_keys=False, allow_unicode=True).strip(), "---", ""]
    out.append(f"# Model card: {md_escape(meta['model']['name'])}")
    out.append("")
    out.append(f"Audited by rai-audit {meta['tool_version']} on {md_escape(meta['data']['rows'])} rows of "
               f"`{md_escape(meta['data']['source'])}` (seed {meta['seed']}). "
               "`results.json` holds every number; `report.html` shows the figures.")
    out.append("")
    if meta.get("profile"):  # reports written before profiles existed have none
        p = meta["profile"]
        out.append(f"Profile **{p['name']}** ({p['purpose']}). {p['intervals']}")
        out.append("")
    out += scorecard_lines(report.scorecard, titles=meta.get("auditor_titles"))
    out.append("## Summary of findings")
    out.append("")
    from audit.core.policy import describe_verdict

    verdict = describe_verdict(report)
    out.append(f"Findings: {verdict['findings']}.")
    out.append("")
    if report.policy.outcomes:
        out.append(f"Policy: **{'PASSED' if report.passed else 'FAILED'}** — {md_escape(verdict['policy'])}")
        out.append("")
    else:
        out.append("Policy: none set — no thresholds were given, so the findings above decide nothing.")
        out.append("")
        out.append("| threshold | measured | outcome |\n|---|---|---|")
        for p in report.policy.outcomes:
            out.append(f"| `{md_escape(p.rule)}` | {md_escape(p.value)} | {md_escape(p.outcome)} |")
        out.append("")
    serious = [(a, f) for a, f in report.findings() if f.severity in ("fail", "warn")]
    if serious:
        for auditor, f in serious:
            out.append(f"- **{f.severity.upper()}** ({auditor}) {md_escape(f.title)}")
    else:
        out.append("No warnings or failures.")
    out.append("")
    out.append("## Model details")
    out.append("")
    model = meta["model"]
    out.append(f"- Architecture: {md_escape(model['architecture'])} ({md_escape(model['parameters'])} parameters)")
    out.append(f"- Task: {md_escape(model['problem_type'])} text classification; labels: "
               f"{', '.join(md_escape(x) for x in model['labels'])}")
    out.append(f"- Fingerprint: `{model['fingerprint'][:16]}`")
    card = meta.get("model_card") or {}
    out.append("")
    out.append("## Intended use")
    out.append("")
    out.append(md_escape(card.get("intended_use") or "Not stated."))
    for r in report.results:
        out.append("")
        out.append(f"## {md_escape(meta.get('auditor_titles', {}).get(r.auditor, r.auditor))}")
        out.append("")
        if r.status != "ok":
            out.append(f"_{r.status}: {md_escape(r.reason)}_")
            continue
        for f in r.findings:
            out.append(f"- {f.severity.upper()}: {md_escape(f.title)}")
        if r.findings:
            out.append("")
        if r.auditor == "performance":
            for name in ("classification_report", "entity_report", "token_report"):
                try:
                    table = r.table(name)
                except KeyError:
                    continue
                out += [f"**{md_escape(table.title)}**" if table.title else "", "", md_table(table), ""]
        if r.auditor == "privacy":
            out += _membership_lines(r.extra.get("membership") or {})
        out.append("| metric | slice | value | 95% CI |\n|---|---|---|---|")
        for m in r.metrics[:40]:
            ci = f"{format_number(m.ci_low)} – {format_number(m.ci_high)}" if m.ci_low is not None else ""
            out.append(f"| {md_escape(m.name)} | {md_escape(m.slice or '')} | {md_escape(m.value)} | {ci} |")
        if len(r.metrics) > 40:
            out.append(f"\n_{len(r.metrics) - 40} more metrics in results.json._")
    out += _compliance_lines(report.compliance)
    out.append("")
    out.append("## Limitations")
    out.append("")
    out += [f"- {md_escape(line)}" for line in limitations(report)]
    out.append("")
    return "\n".join(out)


def _key_number(k: KeyNumber | None) -> str:
    """A key number as the HTML shows it: value, 95% interval, metric and the slice it was read on."""
    if k is None:
        return "–"
    text = f"{md_escape(k.value)}"
    if k.ci_low is not None and k.ci_high is not None:
        text += f" (95% CI {md_escape(k.ci_low)}–{md_escape(k.ci_high)})"
    text += f" `{k.metric}`"
    if k.slice is not None:
        text += f" worst: {md_escape(k.slice)}"
    return text


def heading_anchor(title: str) -> str:
    """The anchor GitHub and the Hub give a Markdown heading: lower case, punctuation dropped,
    spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def scorecard_lines(scorecard: Scorecard, *, titles: Mapping[str, str] | None = None) -> list[str]:
    """The stored scorecard as the card's first section: the same rows, verdicts and rules as
    the HTML's, each area linked to its section's heading below (``titles``: the headings)."""
    if not scorecard.rows:
        return []
    titles = titles or {}
    lines = ["## Scorecard", "", md_escape(SCORECARD_NOTE), "",
             "| area | verdict | key number | beside it | why (rule) |", "|---|---|---|---|---|"]
    for row in scorecard.rows:
        verdict = f"**{row.verdict}**" if row.concern else row.verdict
        also = "; ".join(_key_number(k) for k in row.also) or "–"
        area = f"[{md_escape(row.area)}](#{heading_anchor(titles.get(row.auditor, row.auditor))})"
        lines.append(f"| {area} | {verdict} | {_key_number(row.key)} | {also} | "
                     f"{md_escape(row.reason)} (rule: {md_escape(row.rule_text)}) |")
    return [*lines, ""]


def _compliance_lines(compliance: ComplianceAssessment) -> list[str]:
    """The stored clause verdicts (the HTML's compliance section, without the reviewer block)."""
    if not compliance.clauses:
        return []
    lines = ["", "## Compliance evidence", "", f"_{md_escape(DISCLAIMER)}_", "",
             "| clause | verdict | evidence in this report |", "|---|---|---|"]
    for c in compliance.clauses:
        parts = [f"{e.auditor}.{e.metric}" + (f"[{e.slice}]" if e.slice is not None else "")
                 + f" = {format_number(e.value)}" + (f" (policy: {e.policy_outcome})" if e.policy_outcome else "")
                 for e in c.evidence[:MAX_CLAUSE_EVIDENCE]]
        if len(c.evidence) > MAX_CLAUSE_EVIDENCE:
            parts.append(f"{len(c.evidence) - MAX_CLAUSE_EVIDENCE} more metrics in results.json")
        if c.findings:  # the titles are in the summary above; here only how many, and whose
            counts = ", ".join(f"{sum(f.severity == s for f in c.findings)} {s}" for s in ("fail", "warn")
                               if any(f.severity == s for f in c.findings))
            parts.append(f"findings: {counts} ({', '.join(sorted({f.auditor for f in c.findings}))})")
        if c.gaps:
            parts.append("missing: " + "; ".join(c.gaps))
        evidence = "; ".join(md_escape(p) for p in parts) or "–"
        lines.append(f"| {md_escape(c.id)}: {md_escape(c.title)} | {md_escape(c.verdict)} | {evidence} |")
    return lines
