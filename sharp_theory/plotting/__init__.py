"""One figure style for every lab: consistent colours per optimizer, readable defaults."""
from __future__ import annotations

import matplotlib.pyplot as plt

OPTIMIZER_COLORS = {
    "gd": "#333333", "sgd": "#1f77b4", "sam": "#d62728", "usam": "#ff7f0e", "nbar": "#2ca02c",
    "obar": "#9467bd", "1-sam": "#8c564b", "n-sam": "#d62728", "1-usam": "#8c564b",
    "erm": "#333333",
}
"""The colour of each optimizer's base name in every figure (others get matplotlib's cycle)."""
_FALLBACK = plt.rcParams["axes.prop_cycle"].by_key()["color"]

STYLE = {
    "figure.dpi": 110, "savefig.dpi": 150, "font.size": 10, "axes.titlesize": 11,
    "axes.labelsize": 10, "legend.fontsize": 8, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.6,
}
"""The house matplotlib ``rcParams`` (sizes, grid, no top/right spines) that :func:`figure`
applies.
"""


def color_for(name: str, index: int = 0) -> str:
    """The colour of an optimizer (by its base name), or a cycle colour.

    Args:
      name: the optimizer's name or a label starting with it (``"SAM (rho=0.1)"``).
      index: the position in matplotlib's colour cycle used for names without a colour.

    Returns:
      A colour string (``"#d62728"``).
    """
    key = name.lower().split(" ")[0].split("(")[0]
    return OPTIMIZER_COLORS.get(key, _FALLBACK[index % len(_FALLBACK)])


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 4.2, height: float = 3.2, **kwargs):
    """A figure in the house style with ``nrows x ncols`` panels of the given size (inches).

    Args:
      nrows: rows of panels (≥ 1).
      ncols: columns of panels (≥ 1).
      width: width of one panel, in inches.
      height: height of one panel, in inches.
      **kwargs: passed on to ``matplotlib.pyplot.subplots``.

    Returns:
      ``(fig, axes)`` with ``axes`` a 2-D array of shape (nrows, ncols) (never squeezed).
    """
    plt.rcParams.update(STYLE)
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                        constrained_layout=True, **kwargs)


def band(ax, x, values, *, label: str, color: str, axis: int = 0, log: bool = False):
    """Plot a median line with a 10-90% band over ``axis`` (seeds), ignoring NaN.

    Args:
      ax: the matplotlib axes to draw on.
      x: the x values, one per entry of the median.
      values: the array of curves (seeds along ``axis``).
      label: the legend label of the median line.
      color: the colour of line and band.
      axis: the axis of ``values`` to take the median and percentiles over.
      log: use a logarithmic y axis.

    Returns:
      ``ax``.
    """
    import numpy as np

    values = np.asarray(values, dtype=float)
    median = np.nanmedian(values, axis=axis)
    low, high = np.nanpercentile(values, [10, 90], axis=axis)
    ax.plot(x, median, color=color, label=label)
    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    if log:
        ax.set_yscale("log")
    return ax


__all__ = ["figure", "color_for", "band", "STYLE", "OPTIMIZER_COLORS"]
