"""The HTML model card: Jinja2, autoescaped, self-contained (inline CSS and SVG, no scripts,
nothing fetched), printable. Each auditor's section is its own partial template."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

from audit.core.results import AuditorResult, AuditReport, Figure
from audit.core.scorecard import SCORECARD_NOTE
from audit.report.compliance import DISCLAIMER
from audit.report.heat import heat_legend, heat_words
from audit.report.svg import safe_svg, sanitize_svg

GENERIC_SECTION = "sections/_generic.html.j2"
FIGURE_NOT_DRAWN = '<p class="note">[figure {name} could not be drawn from its data: {reason}]</p>'


def templates_dir() -> Path:
    """Templates inside the installed package (wheel), else reports/templates in the source tree."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "templates"
    if (packaged / "model_card.html.j2").is_file():
        return packaged
    return here.parent / "reports" / "templates"


def format_number(value: Any) -> Any:
    """Numbers for people: 3 significant decimals, integers as they are, missing as '–'."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value != 0 and abs(value) < 0.001:
            return f"{value:.2e}"
        if float(value).is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{value:.3f}"
    return value


FIGURE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError)
# Figures drawn ahead (id of the Figure -> (the Figure, kept alive so its id is not reused; "ok"
# and its svg, or "error" and the reason)): by render_html over forked workers, or by the runner
# while auditors still run (predraw). render_html empties it.
_DRAWN: dict[int, tuple[Figure, str, str]] = {}
# Fewest figures worth forking for: matplotlib draws one in ~0.1-0.6 s, a fork costs ~30 ms.
PARALLEL_FIGURES = 4


def _draw(fig: Figure) -> tuple[str, str]:
    from audit.report import charts

    try:
        return "ok", charts.draw(fig)
    except FIGURE_ERRORS as exc:
        return "error", str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def draw_figure(fig: Figure) -> Any:
    """Jinja2 filter: ``{{ fig | draw_figure }}``, the figure drawn from its data as inline SVG.
    Data that does not fit its kind (a hand-edited results.json) gives a note, not a broken page;
    the SVG still goes through the allow-list, since its labels are data."""
    from markupsafe import Markup, escape

    kind, text = _drawn(fig) or _draw(fig)
    if kind == "error":
        return Markup(FIGURE_NOT_DRAWN).format(name=escape(fig.name), reason=escape(text))
    return sanitize_svg(text)


def _drawn(fig: Figure) -> tuple[str, str] | None:
    entry = _DRAWN.get(id(fig))
    return (entry[1], entry[2]) if entry is not None and entry[0] is fig else None


def predraw(figures: list[Figure]) -> None:
    """Draw ``figures`` now, into the cache the next :func:`render_html` reads: the runner draws a
    finished section's figures while the other auditors still run."""
    for fig in figures:
        if _drawn(fig) is None:
            _DRAWN[id(fig)] = (fig, *_draw(fig))


def forget_drawn() -> None:
    """Empty the cache of figures drawn ahead (a run that ends without a report)."""
    _DRAWN.clear()


def draw_ahead(figures: list[Figure]) -> None:
    """Draw those of ``figures`` not drawn yet over forked workers (:func:`audit.engine.forked.fork_map`:
    matplotlib is single-threaded, one figure per core at once) into the cache :func:`draw_figure` reads."""
    from audit.engine.forked import default_workers, fork_map

    figures = [f for f in figures if _drawn(f) is None]
    if len(figures) < PARALLEL_FIGURES:
        return
    drawn = fork_map(lambda i: _draw(figures[i]), len(figures), workers=default_workers(), what="figure")
    _DRAWN.update({id(f): (f, *d) for f, d in zip(figures, drawn, strict=True)})


def warm_templates(auditors: list[str]) -> None:
    """Compile the report's templates for a run of ``auditors`` ahead of :func:`render_html`
    (into the environment it will use), as the runner does while the auditors run."""
    import jinja2

    own = _own_templates_of(auditors)
    env = environment({k: v.parent for k, v in own.items()})
    names = ["model_card.html.j2", GENERIC_SECTION]
    names += [f"{a}/{own[a].name}" if a in own else f"sections/{a}.html.j2" for a in auditors]
    for name in names:
        with contextlib.suppress(jinja2.TemplateNotFound):
            env.get_template(name)


# One environment per set of section folders: Jinja2 compiles a template once per environment
# (about 0.3 s for the report's templates), so a run, a selftest or a test session that renders
# many reports compiles them once.
_ENVS: dict[tuple[tuple[str, str], ...], Any] = {}


def environment(sections: dict[str, Path] | None = None) -> Any:
    """The Jinja2 environment (autoescape on for everything: dataset text is hostile input).
    ``sections`` maps an auditor to its own partial's folder, loaded as ``<auditor>/<file>``."""
    key = tuple(sorted((name, str(folder)) for name, folder in (sections or {}).items()))
    env = _ENVS.get(key)
    if env is None:
        env = _ENVS[key] = _new_environment(sections)
    return env


def _new_environment(sections: dict[str, Path] | None) -> Any:
    import jinja2

    loader: Any = jinja2.FileSystemLoader([str(templates_dir())])
    if sections:
        loader = jinja2.ChoiceLoader([loader, jinja2.PrefixLoader(
            {name: jinja2.FileSystemLoader(str(folder)) for name, folder in sections.items()})])
    env = jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = format_number
    env.filters["safe_svg"] = safe_svg  # for SVG a plugin's own template inlines
    env.filters["draw_figure"] = draw_figure
    env.filters["heat_words"] = heat_words
    env.globals["heat_legend"] = heat_legend
    env.globals["compliance_disclaimer"] = DISCLAIMER
    env.globals["scorecard_note"] = SCORECARD_NOTE
    return env


def _own_templates(results: list[AuditorResult]) -> dict[str, Path]:
    """Each result's auditor's own partial (auditor -> file), from the installed plugins."""
    return _own_templates_of([r.auditor for r in results])


def _own_templates_of(auditors: list[str]) -> dict[str, Path]:
    from audit.auditors.base import discover

    registry = discover()
    found = {}
    for name in auditors:
        info = registry.get(name)
        path = info.cls.template_path() if info is not None and info.cls is not None else None
        if path is not None:
            found[name] = path
    return found


def section_template(result: AuditorResult, env: Any, own: dict[str, Path] | None = None) -> str:
    """The auditor's own partial when it ran and has one; the generic one otherwise."""
    import jinja2

    if result.status != "ok":
        return GENERIC_SECTION
    if own and result.auditor in own:
        return f"{result.auditor}/{own[result.auditor].name}"
    name = f"sections/{result.auditor}.html.j2"
    try:
        env.get_template(name)
    except jinja2.TemplateNotFound:
        return GENERIC_SECTION
    return name


SECTION_RENDER_FAILED = ("This section's template failed to render ({error}); its results are kept in "
                         "results.json, shown here without the template.")


def _section_body(result: AuditorResult, env: Any, own: dict[str, Path]) -> Any:
    """One section's HTML, rendered alone: a template that raises (a plugin's, or ours on data it
    did not expect) costs that section its layout, never the report."""
    import markupsafe

    try:
        return markupsafe.Markup(env.get_template(section_template(result, env, own)).render(result=result))
    except Exception as exc:  # noqa: BLE001 - any template error; the generic layout is the fallback
        note = SECTION_RENDER_FAILED.format(error=f"{type(exc).__name__}: {exc}"[:300])
        body = env.get_template(GENERIC_SECTION).render(result=result)
        return markupsafe.Markup('<p class="failed">') + markupsafe.escape(note) + markupsafe.Markup("</p>" + body)


def render_section(result: AuditorResult) -> str:
    """One auditor's section alone (used by tests and by plugins checking their partial)."""
    own = _own_templates([result])
    env = environment({k: v.parent for k, v in own.items()})
    return env.get_template(section_template(result, env, own)).render(result=result)


def render_html(report: AuditReport) -> str:
    """The whole report as one HTML document: the policy verdict, the compliance verdicts and the
    scorecard are the report's stored ones (judged by the runner), never recomputed here."""
    from audit.core.policy import describe_verdict
    from audit.report.compliance import reviewer_fields
    from audit.report.limitations import limitations

    own = _own_templates(report.results)
    env = environment({k: v.parent for k, v in own.items()})
    try:
        draw_ahead([f for r in report.results for f in r.figures])
        sections = [(r, _section_body(r, env, own)) for r in report.results]
    finally:
        _DRAWN.clear()
    return env.get_template("model_card.html.j2").render(
        report=report, meta=report.metadata, sections=sections, findings=report.findings(),
        verdict=describe_verdict(report), limitations=limitations(report),
        compliance=report.compliance, scorecard=report.scorecard,
        reviewer=reviewer_fields(report.metadata.get("model_card")))
