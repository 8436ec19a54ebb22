"""The reports' charts: matplotlib figures rendered to inline SVG (no file, no font or script to load).

Text is drawn as paths (`svg.fonttype = path`), so a chart looks the same in any browser and in the
PDF with no font installed; the SVG ids are salted with a fixed string so the same figures give the
same file. Missing values (NULL prices) are left out of a chart and said so in its note, never drawn
as zero. Only the object-oriented API is used (no pyplot): no global state, safe in threads."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display: the charts are only ever written to SVG
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

logger = logging.getLogger(__name__)

# one palette for every report (colour-blind safe: Okabe-Ito)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
BANDS = {"punta": "#D55E00", "intermedia": "#E69F00", "valle": "#0072B2"}
_RC = {
    "svg.fonttype": "path",
    "svg.hashsalt": "mayorista",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.axisbelow": True,
}


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]  # inline: without the XML declaration and DOCTYPE


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def _value(v: float | None) -> float:
    return math.nan if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def compact(value: float, _pos: object = None) -> str:
    """Axis labels: 1.2M, 350k, 12."""
    a = abs(value)
    if a >= 1e9:
        return f"{value / 1e9:.1f}G"
    if a >= 1e6:
        return f"{value / 1e6:.1f}M"
    if a >= 1e3:
        return f"{value / 1e3:.0f}k"
    return f"{value:g}"


def grouped_bars(
    categories: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    title: str,
    ylabel: str,
    colors: dict[str, str] | None = None,
    width: float = 7.0,
    height: float = 2.8,
) -> str:
    """Bars per category, one per series side by side (e.g. distributors x bands)."""
    with matplotlib.rc_context(_RC):
        fig = _figure(width, height)
        ax = fig.add_subplot()
        n = max(len(series), 1)
        step = 0.8 / n
        for k, (label, values) in enumerate(series.items()):
            xs = [i - 0.4 + step * (k + 0.5) for i in range(len(categories))]
            ax.bar(
                xs,
                [_value(v) for v in values],
                step * 0.95,
                label=label,
                color=(colors or {}).get(label, PALETTE[k % len(PALETTE)]),
            )
        ax.set_xticks(range(len(categories)), list(categories))
        ax.set_title(title, loc="left", fontsize=10)
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(FuncFormatter(compact))
        ax.axhline(0, color="#444", linewidth=0.6)
        if len(series) > 1:
            ax.legend(frameon=False, fontsize=8, ncols=min(len(series), 4), loc="upper left", bbox_to_anchor=(0, -0.12))
        return _svg(fig)


def stacked_bars(
    categories: Sequence[str],
    parts: dict[str, Sequence[float | None]],
    *,
    title: str,
    xlabel: str,
    percent: bool = False,
    colors: dict[str, str] | None = None,
    width: float = 7.0,
) -> str:
    """Horizontal stacked bars, one per category (e.g. spot / contract split per distributor).
    With `percent`, each bar is the parts' shares of their sum of magnitudes; negative parts (energy
    sold back to the spot market) are drawn left of zero."""
    with matplotlib.rc_context(_RC):
        fig = _figure(width, 0.5 + 0.38 * max(len(categories), 1))
        ax = fig.add_subplot()
        pos = [0.0] * len(categories)
        neg = [0.0] * len(categories)
        scale = [1.0] * len(categories)
        if percent:
            totals = [
                sum(abs(_value(p[i])) for p in parts.values() if not math.isnan(_value(p[i])))
                for i in range(len(categories))
            ]
            scale = [100.0 / t if t else 0.0 for t in totals]
        for k, (label, values) in enumerate(parts.items()):
            vals = [0.0 if math.isnan(_value(v)) else _value(v) * scale[i] for i, v in enumerate(values)]
            lefts = [neg[i] if v < 0 else pos[i] for i, v in enumerate(vals)]
            ax.barh(
                range(len(categories)),
                vals,
                left=lefts,
                label=label,
                height=0.6,
                color=(colors or {}).get(label, PALETTE[k % len(PALETTE)]),
            )
            for i, v in enumerate(vals):
                if v < 0:
                    neg[i] += v
                else:
                    pos[i] += v
        ax.set_yticks(range(len(categories)), list(categories))
        ax.invert_yaxis()
        ax.set_title(title, loc="left", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, p: f"{v:.0f}%" if percent else compact(v)))
        ax.axvline(0, color="#444", linewidth=0.6)
        ax.legend(
            frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0)
        )  # beside: never over the axis
        return _svg(fig)


def lines(
    xs: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    title: str,
    ylabel: str,
    colors: dict[str, str] | None = None,
    width: float = 7.0,
    height: float = 2.6,
) -> str:
    """One line with markers per series over ordered categories (e.g. quarters of a year)."""
    with matplotlib.rc_context(_RC):
        fig = _figure(width, height)
        ax = fig.add_subplot()
        for k, (label, values) in enumerate(series.items()):
            ax.plot(
                range(len(xs)),
                [_value(v) for v in values],
                marker="o",
                label=label,
                color=(colors or {}).get(label, PALETTE[k % len(PALETTE)]),
            )
        ax.set_xticks(range(len(xs)), list(xs), fontsize=7)
        ax.set_title(title, loc="left", fontsize=10)
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(FuncFormatter(compact))
        if width < 5:  # a narrow chart (two side by side): a legend below, wider than the axis, would shrink it
            ax.legend(frameon=False, fontsize=7, ncols=1, loc="upper left", bbox_to_anchor=(1.01, 1))
        else:
            ax.legend(frameon=False, fontsize=8, ncols=min(len(series), 4), loc="upper left", bbox_to_anchor=(0, -0.12))
        return _svg(fig)


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    title: str,
    label: str,
    vmin: float = 0.0,
    vmax: float = 100.0,
    width: float = 7.2,
) -> str:
    """Cells coloured by value on cividis (dark blue low, yellow full: ordered in lightness, so it
    reads the same to colour-blind readers and in greyscale); None cells (days a point was not
    active) are white."""
    with matplotlib.rc_context({**_RC, "axes.grid": False}):
        fig = _figure(width, 0.9 + 0.16 * max(len(rows), 1))
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps["cividis"].with_extremes(bad="#ffffff")
        grid = [[_value(v) for v in row] for row in values] or [[math.nan] * max(len(columns), 1)]
        image = ax.imshow(grid, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_yticks(range(len(rows)), list(rows), fontsize=6.5)
        ax.set_xticks(range(len(columns)), list(columns), fontsize=6.5)
        ax.set_title(title, loc="left", fontsize=10)
        fig.colorbar(image, ax=ax, label=label, shrink=0.8, pad=0.01)
        return _svg(fig)


def bars(
    categories: Sequence[str], values: Sequence[float | None], *, title: str, xlabel: str, width: float = 7.0
) -> str:
    """Horizontal bars, one per category (e.g. VEE findings by rule)."""
    with matplotlib.rc_context(_RC):
        fig = _figure(width, 0.6 + 0.3 * max(len(categories), 1))
        ax = fig.add_subplot()
        ax.barh(range(len(categories)), [_value(v) for v in values], color=PALETTE[0], height=0.6)
        ax.set_yticks(range(len(categories)), list(categories))
        ax.invert_yaxis()
        ax.set_title(title, loc="left", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_formatter(FuncFormatter(compact))
        return _svg(fig)
