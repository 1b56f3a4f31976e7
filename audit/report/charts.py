"""Inline SVG charts for the report, drawn with matplotlib (Agg, no display).

Text stays text in the SVG (``svg.fonttype = none``) so it is small, searchable and prints
sharply; ids are salted with a fixed string and the date is left out so the same data gives
the same bytes (results.json must be reproducible).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

PALETTE = ("#3b6ea8", "#d1793b", "#4f9a5b", "#b64a4a", "#7d5ba6", "#8c8c8c")


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
    ax.barh(y, np.nan_to_num(values_arr), xerr=xerr, color=PALETTE[0], ecolor="#333", capsize=3, height=0.6)
    ax.set_yticks(y, [str(s) for s in labels])
    ax.invert_yaxis()
    if reference is not None:
        ax.axvline(reference, color=PALETTE[3], linestyle="--", linewidth=1, label=reference_label or None)
        if reference_label:
            ax.legend(loc="lower right", frameon=False)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def heatmap(matrix: Any, row_labels: Sequence[str], col_labels: Sequence[str], *, title: str = "",
            xlabel: str = "", ylabel: str = "", fmt: str = "{:.0f}", cmap: str = "Blues",
            vmin: float | None = None, vmax: float | None = None) -> str:
    """A heat map with the value written in each cell (confusion matrices, bias AUCs)."""
    plt = _plt()
    m = np.asarray(matrix, dtype=float)
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
               dashed: Sequence[str] = (), legend_loc: str = "best") -> str:
    """Lines (name, x, y); ``diagonal`` draws y = x (a perfect calibration, a chance ROC); the
    series named in ``dashed`` are drawn dotted (baselines beside the lines they qualify);
    ``legend_loc`` is matplotlib's, or "outside" for a legend right of the axes (many series)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    if diagonal:
        lo, hi = (xlim or (0, 1))
        ax.plot([lo, hi], [lo, hi], color="#999", linestyle="--", linewidth=1, label="_diag")
    for k, (name, xs, ys) in enumerate(series):
        ax.plot(xs, ys, color=PALETTE[k % len(PALETTE)], label=name, linewidth=1.5,
                linestyle=":" if name in dashed else "-", marker="o" if markers else None, markersize=3)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    if xlim:
        ax.set_xlim(*xlim)
    if ylim:
        ax.set_ylim(*ylim)
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
