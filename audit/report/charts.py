"""Inline SVG charts for the report, drawn with matplotlib (Agg, no display).

Auditors return a figure's data (:class:`audit.core.results.Figure`); :func:`draw` turns it into
SVG when the report is rendered, so results.json alone redraws every figure. Text stays text in
the SVG (``svg.fonttype = none``) so it is small, searchable and prints sharply; ids are salted
with a fixed string and the date is left out so the same data gives the same bytes (the report
must be reproducible).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.core.results import HEATMAP_COLOURMAPS, LEGEND_PLACES

if TYPE_CHECKING:
    from audit.core.results import Figure

PALETTE = ("#3b6ea8", "#d1793b", "#4f9a5b", "#b64a4a", "#7d5ba6", "#8c8c8c")
MAX_DECIMALS = 6
# Data with no spread: matplotlib zooms into +-4% around the point (ticks -0.04 ... 0.04 around a
# flat 0) and the axis reads as if there were differences. A value in [0, 1] (a rate, a
# probability) gets the unit interval with matplotlib's default 5% margin; any other value
# +-max(1, 10%) around it.
FLAT_TOLERANCE = 1e-9
AXIS_MARGIN = 0.05


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.fonttype": "none",
        "svg.hashsalt": "rai-audit",
        "font.family": "sans-serif",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 10,
    })
    return plt


def _svg(fig: Any) -> str:
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    # Drop the XML prolog and DOCTYPE: the SVG is inlined into HTML.
    return text[text.index("<svg"):]


def flat_limits(values: Any, *, include: Sequence[float] = ()) -> tuple[float, float] | None:
    """Axis limits for values with no spread (see FLAT_TOLERANCE), None when they have some."""
    arr = np.concatenate([np.asarray(values, dtype=float).ravel(), np.asarray(include, dtype=float)])
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return 0.0 - AXIS_MARGIN, 1.0 + AXIS_MARGIN
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo > FLAT_TOLERANCE * max(1.0, abs(hi)):
        return None
    if 0.0 <= lo <= 1.0:
        return 0.0 - AXIS_MARGIN, 1.0 + AXIS_MARGIN
    half = max(1.0, 0.1 * abs(lo))
    return lo - half, lo + half


def bar_chart(labels: Sequence[str], values: Sequence[float], *, ci_low: Sequence[float] | None = None,
              ci_high: Sequence[float] | None = None, title: str = "", xlabel: str = "",
              reference: float | None = None, reference_label: str = "") -> str:
    """Horizontal bars with optional error bars and a dashed reference line (a threshold)."""
    plt = _plt()
    values_arr = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 0.35 * len(labels) + 0.9))
    y = np.arange(len(labels))
    xerr = None
    if ci_low is not None and ci_high is not None:
        low = np.asarray(ci_low, dtype=float)
        high = np.asarray(ci_high, dtype=float)
        xerr = np.vstack([np.clip(values_arr - low, 0, None), np.clip(high - values_arr, 0, None)])
        xerr = np.nan_to_num(xerr)
        low, high = low[np.isfinite(low)], high[np.isfinite(high)]
    else:
        low = high = np.array([])
    ax.barh(y, np.nan_to_num(values_arr), xerr=xerr, color=PALETTE[0], ecolor="#333", capsize=3, height=0.6)
    ax.set_yticks(y, [str(s) for s in labels])
    ax.invert_yaxis()
    if reference is not None:
        ax.axvline(reference, color=PALETTE[3], linestyle="--", linewidth=1, label=reference_label or None)
        if reference_label:
            ax.legend(loc="lower right", frameon=False)
    flat = flat_limits(np.concatenate([values_arr, low, high]),
                       include=[0.0] + ([reference] if reference is not None else []))
    if flat is not None:
        ax.set_xlim(*flat)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def heatmap(matrix: Any, row_labels: Sequence[str], col_labels: Sequence[str], *, title: str = "",
            xlabel: str = "", ylabel: str = "", fmt: str = "{:.0f}", cmap: str = "Blues",
            vmin: float | None = None, vmax: float | None = None) -> str:
    """A heat map with the value written in each cell (confusion matrices, bias AUCs)."""
    plt = _plt()
    m = np.asarray(matrix, dtype=float)
    if vmin is None and vmax is None:
        vmin, vmax = flat_limits(m) or (None, None)
    fig, ax = plt.subplots(figsize=(0.6 * m.shape[1] + 2.4, 0.45 * m.shape[0] + 1.4))
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(m.shape[1]), [str(s) for s in col_labels], rotation=30, ha="right")
    ax.set_yticks(range(m.shape[0]), [str(s) for s in row_labels])
    finite = m[np.isfinite(m)]
    mid = (np.nanmax(finite) + np.nanmin(finite)) / 2 if finite.size else 0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            v = m[i, j]
            text = "–" if not np.isfinite(v) else fmt.format(v)
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if np.isfinite(v) and v > mid and cmap == "Blues" else "black")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.spines[:].set_visible(False)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    return _svg(fig)


def line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], *, title: str = "",
               xlabel: str = "", ylabel: str = "", log_x: bool = False, log_y: bool = False,
               diagonal: bool = False, xlim: tuple[float, float] | None = None,
               ylim: tuple[float, float] | None = None, markers: bool = False,
               dotted: Sequence[str] = (), legend_loc: str = "best", integer_x: bool = False) -> str:
    """Lines (name, x, y); ``diagonal`` draws y = x (a perfect calibration, a chance ROC); the
    series named in ``dotted`` are drawn dotted (baselines beside the lines they qualify);
    ``legend_loc`` is matplotlib's, or "outside" for a legend right of the axes (many series);
    ``integer_x`` puts x ticks on whole numbers only."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    if diagonal:
        lo, hi = (xlim or (0, 1))
        ax.plot([lo, hi], [lo, hi], color="#999", linestyle="--", linewidth=1, label="_diag")
    for k, (name, xs, ys) in enumerate(series):
        ax.plot(xs, ys, color=PALETTE[k % len(PALETTE)], label=name, linewidth=1.5,
                linestyle=":" if name in dotted else "-", marker="o" if markers else None, markersize=3)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    for limits, scale, log, axis in ((xlim, ax.set_xlim, log_x, 0), (ylim, ax.set_ylim, log_y, 1)):
        if limits:
            scale(*limits)
        elif not log and series:
            flat = flat_limits(np.concatenate([np.asarray(s[1 + axis], dtype=float) for s in series]))
            if flat is not None:
                scale(*flat)
    if integer_x:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(series) > 1 or any(name for name, _, _ in series):
        if legend_loc == "outside":
            ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        else:
            ax.legend(frameon=False, fontsize=8, loc=legend_loc)
    return _svg(fig)


def reliability_diagram(bin_conf: Sequence[float], bin_acc: Sequence[float], bin_count: Sequence[int], *,
                        title: str = "Reliability diagram") -> str:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1)
    conf = np.asarray(bin_conf, dtype=float)
    acc = np.asarray(bin_acc, dtype=float)
    count = np.asarray(bin_count, dtype=float)
    keep = count > 0
    sizes = 15 + 120 * count[keep] / max(count.max(), 1)
    ax.scatter(conf[keep], acc[keep], s=sizes, color=PALETTE[0], alpha=0.8, zorder=3)
    ax.plot(conf[keep], acc[keep], color=PALETTE[0], linewidth=1)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mean confidence in bin")
    ax.set_ylabel("accuracy in bin")
    ax.set_title(title)
    return _svg(fig)


def draw(figure: Figure) -> str:
    """The SVG of a figure, drawn from its data alone; ValueError when the data does not fit
    its kind (the caller shows a placeholder, the rest of the report renders)."""
    d = figure.data
    title = _text(d.get("title", ""))
    if figure.kind == "bar":
        bars = d["bars"]
        has_ci = any(b.get("ci_low") is not None or b.get("ci_high") is not None for b in bars)
        return bar_chart([_text(b["label"]) for b in bars], _floats(b["value"] for b in bars),
                         ci_low=_floats(b.get("ci_low") for b in bars) if has_ci else None,
                         ci_high=_floats(b.get("ci_high") for b in bars) if has_ci else None,
                         title=title, xlabel=_text(d.get("xlabel", "")), reference=_opt_float(d.get("reference")),
                         reference_label=_text(d.get("reference_label", "")))
    if figure.kind == "heatmap":
        cells = np.array([_floats(row) for row in d["cells"]], dtype=float).reshape(len(d["rows"]), len(d["columns"]))
        decimals = d.get("decimals", 0)
        colourmap = d.get("colourmap", "Blues")
        if not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
            raise ValueError(f"heatmap decimals must be an integer from 0 to {MAX_DECIMALS}, got {decimals!r}")
        if colourmap not in HEATMAP_COLOURMAPS:
            raise ValueError(f"heatmap colourmap must be one of {HEATMAP_COLOURMAPS}, got {colourmap!r}")
        return heatmap(cells, [_text(r) for r in d["rows"]], [_text(c) for c in d["columns"]], title=title,
                       xlabel=_text(d.get("xlabel", "")), ylabel=_text(d.get("ylabel", "")),
                       fmt=f"{{:.{decimals}f}}", cmap=colourmap, vmin=_opt_float(d.get("vmin")),
                       vmax=_opt_float(d.get("vmax")))
    if figure.kind == "lines":
        legend = d.get("legend", "best")
        if legend not in LEGEND_PLACES:
            raise ValueError(f"lines legend must be one of {LEGEND_PLACES}, got {legend!r}")
        series = [(_text(s["name"]), _floats(s["x"]), _floats(s["y"])) for s in d["series"]]
        return line_chart(series, title=title, xlabel=_text(d.get("xlabel", "")), ylabel=_text(d.get("ylabel", "")),
                          log_x=bool(d.get("log_x")), log_y=bool(d.get("log_y")), diagonal=bool(d.get("diagonal")),
                          xlim=_limits(d.get("xlim")), ylim=_limits(d.get("ylim")), markers=bool(d.get("markers")),
                          dotted=[_text(s["name"]) for s in d["series"] if s.get("dotted")], legend_loc=legend,
                          integer_x=bool(d.get("integer_x")))
    if figure.kind == "reliability":
        return reliability_diagram(_floats(d["confidence"]), _floats(d["accuracy"]), _floats(d["count"]),
                                   title=title or "Reliability diagram")
    raise ValueError(f"no chart draws figures of kind {figure.kind!r}")


def _text(value: Any) -> str:
    """A label from the data, shown as written: a "$" in a group name or a term would otherwise
    start matplotlib's TeX mode (and an unbalanced or bad formula stops the drawing)."""
    return str(value).replace("$", r"\$")


def _floats(values: Any) -> list[float]:
    """Numbers from JSON, None (a NaN in results.json) back to NaN; anything else is an error."""
    out = []
    for v in values:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ValueError(f"expected a number or null, got {type(v).__name__}")
        out.append(float("nan") if v is None else float(v))
    return out


def _opt_float(value: Any) -> float | None:
    return None if value is None else _floats([value])[0]


def _limits(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    lo, hi = _floats(value)
    return lo, hi
