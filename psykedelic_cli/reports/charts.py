"""Chart primitives shared by the reports: paper-size style, bars with error bars, mean ± std bands.

matplotlib is imported inside the functions, so table-only reports never pay for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from psykedelic_cli.reports.aggregate import Stat
from psykedelic_cli.reports.palette import Style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from psykedelic_cli.reports.report import Chart

PAPER_WIDTH = 7.0
"""Inches: a two-column paper's text width, so charts keep their type size when placed."""

_STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    # A fixed title height: matplotlib otherwise measures every axes' tick labels on each
    # draw to lift titles over top ticks, which no chart here has (a quarter of a
    # small-multiples figure's drawing time).
    "axes.titley": 1.0,
    "grid.alpha": 0.3,
    "hatch.linewidth": 0.6,
    "svg.fonttype": "none",
    "svg.hashsalt": "psykedelic",  # stable element ids: the same report gives the same SVG bytes
    "pdf.fonttype": 42,
}


def save_chart(chart: "Chart", path: Path, image_format: str) -> None:
    """Draw ``chart`` in the shared style and write it (whole or not at all)."""
    import matplotlib

    from psykedelic_cli.outputs import replacing

    with matplotlib.rc_context(_STYLE), replacing(path) as temporary:
        chart.draw().savefig(temporary, format=image_format, dpi=150, metadata=_metadata(image_format))


def _metadata(image_format: str) -> dict:
    # Dates in PDF/SVG metadata would make identical reports differ byte for byte.
    return {"CreationDate": None} if image_format == "pdf" else {"Date": None} if image_format == "svg" else {}


def blank_figure(width: float, height: float) -> "Figure":
    """A figure with constrained layout (labels never clipped), ``width`` × ``height`` inches.

    Built without pyplot: no global figure registry, no backend switch in the caller's session.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def figure(width: float, height: float, **subplots) -> tuple["Figure", object]:
    """A ``blank_figure`` and its ``subplots(**subplots)``."""
    created = blank_figure(width, height)
    return created, created.subplots(**subplots)


def means_and_stds(stats: Sequence[Stat | None], scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of mean and std (NaN where there is no data), multiplied by ``scale``."""
    mean = np.array([np.nan if s is None else s.mean for s in stats]) * scale
    std = np.array([np.nan if s is None else s.std for s in stats]) * scale
    return mean, std


def bars(
    ax: "Axes", stats: Sequence[Stat | None], styles: Sequence[Style], *, scale: float = 100.0, positions=None,
    width: float = 0.8,
) -> None:
    """One bar per stat (mean) with a ± std error bar, coloured and hatched by ``styles``."""
    mean, std = means_and_stds(stats, scale)
    x = np.arange(len(stats)) if positions is None else np.asarray(positions, dtype=float)
    rectangles(ax, x, np.nan_to_num(mean), width, [s.color for s in styles], [s.hatch for s in styles])
    ax.errorbar(x, mean, yerr=std, fmt="none", ecolor="black", elinewidth=0.8, capsize=2 if len(x) <= 30 else 0)


def rectangles(
    ax: "Axes", x: np.ndarray, heights: np.ndarray, width: float, colors: Sequence[str],
    hatches: Sequence[str] | None = None,
) -> None:
    """Bars from 0 to ``heights`` centred on ``x``, as one collection per hatch.

    ``Axes.bar`` adds one patch per bar and updates the data limits for each, which
    dominates the drawing time of charts with hundreds of bars.
    """
    from matplotlib.collections import PolyCollection

    if len(x) == 0:
        return
    hatches = hatches or [""] * len(x)
    left, right = x - width / 2, x + width / 2
    for hatch in dict.fromkeys(hatches):
        chosen = [i for i, h in enumerate(hatches) if h == hatch]
        vertices = [[(left[i], 0), (left[i], heights[i]), (right[i], heights[i]), (right[i], 0)] for i in chosen]
        # hatch lines in white over the fill keep the colour readable
        ax.add_collection(
            PolyCollection(
                vertices, facecolors=[colors[i] for i in chosen], edgecolors="white", linewidths=0.5,
                hatch=hatch or None,
            ),
            autolim=False,
        )
    top = max(0.0, float(np.max(heights, initial=0)))
    ax.update_datalim([(left.min(), 0), (right.max(), top)])
    ax.autoscale_view()
    if top == 0:  # every bar 0 (nothing pruned) or missing: an axis from 0, not one centred on it
        ax.set_ylim(0, 1)


def band(
    ax: "Axes", x: Sequence[float], stats: Sequence[Stat | None], style: Style, label: str, *, scale: float = 100.0,
    marker: bool = False,
) -> None:
    """The mean as a line and mean ± std as a translucent band around it."""
    mean, std = means_and_stds(stats, scale)
    ax.plot(
        x, mean, color=style.color, linestyle=style.linestyle, marker=style.marker if marker else None, markersize=3,
        linewidth=1.4, label=label,
    )
    ax.fill_between(x, mean - std, mean + std, color=style.color, alpha=0.18, linewidth=0)


_RIGHT_LEGEND_ENTRIES = 12
_BOTTOM_LEGEND_COLUMNS = 3


def no_data(ax: "Axes", message: str) -> None:
    """``message`` in the middle of an ``ax`` that has nothing to draw."""
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="#555555")


def legend(ax: "Axes", handles: Sequence, labels: Sequence[str], title: str) -> None:
    """A legend right of ``ax`` (the top panel) for a few entries, in columns below the
    figure's panels for many (all 27 modes): never over the data, never squeezing a panel.
    Size the figure with ``legend_height``; nothing drawn, no legend."""
    if not labels:
        return
    if len(labels) <= _RIGHT_LEGEND_ENTRIES:
        ax.legend(
            handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, title=title, frameon=False
        )
    else:
        ax.get_figure().legend(
            handles, labels, loc="outside lower center", ncols=_BOTTOM_LEGEND_COLUMNS, title=title, frameon=False
        )


def legend_height(entries: int) -> float:
    """Extra figure height (inches) that ``legend`` needs below the panels."""
    if entries <= _RIGHT_LEGEND_ENTRIES:
        return 0.0
    return 0.35 + 0.17 * math.ceil(entries / _BOTTOM_LEGEND_COLUMNS)


def label_rotation(labels: Sequence[str]) -> dict:
    """Tick label settings that keep long names (mode names) from overlapping."""
    longest = max((len(label) for label in labels), default=0)
    if len(labels) > 15:
        return {"rotation": 90}
    if longest * len(labels) > 60:
        return {"rotation": 55, "ha": "right", "rotation_mode": "anchor"}
    return {}
