"""One figure style for every lab: a colour-blind-safe palette, fonts sized for the width a
figure is shown at, legends that stay off the data, a finding as each figure's title, and runs
that did not end well (diverged, not fitted, stuck at a saddle or at the initialization) drawn
distinctly and labelled.

The rules are checked by :func:`sharp_theory.plotting.lint.lint_figure`, which
``Lab.savefig`` runs on every figure.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

# Okabe & Ito's colour-blind-safe palette (Okabe and Ito, "Color Universal Design", 2002);
# yellow last: it is faint on white.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")
"""Okabe & Ito's eight colour-blind-safe colours (hex), in the order figures use them."""
OPTIMIZER_COLORS = {
    "gd": "#000000", "erm": "#000000", "sgd": "#0072B2", "sam": "#D55E00", "n-sam": "#D55E00",
    "usam": "#E69F00", "nbar": "#009E73", "obar": "#CC79A7", "1-sam": "#56B4E9",
    "1-usam": "#CC79A7",
}
"""The colour of each optimizer's base name in every figure (others take :data:`PALETTE`)."""
_FALLBACK = PALETTE

# The width (inches) a figure is shown at on a page or in the report; wider figures are scaled
# down to it, so their fonts are scaled up by the same factor (see :func:`figure`).
PAGE_WIDTH = 7.0
"""The width (inches) a figure is shown at on a page; wider figures get larger fonts."""
# The smallest font (points) a reader gets once the figure is shown at PAGE_WIDTH.
MIN_FONT_PT = 7.0
"""The smallest font (points) a figure may show once scaled to :data:`PAGE_WIDTH` (the lint)."""
# A slide: 16:9, and fonts this much larger than on the page.
SLIDE_SIZE = (13.33, 7.5)
"""The size (inches, 16:9) of a figure's slide copy (:func:`slide_copy`)."""
SLIDE_FONT_SCALE = 1.7

# Base sizes (points) at PAGE_WIDTH; every one is >= MIN_FONT_PT.
BASE_FONTS = {"font.size": 8.0, "axes.titlesize": 8.5, "axes.labelsize": 8.0,
              "xtick.labelsize": 7.5, "ytick.labelsize": 7.5, "legend.fontsize": 7.5,
              "legend.title_fontsize": 7.5, "figure.titlesize": 9.5}

STYLE = {
    "figure.dpi": 110, "savefig.dpi": 150, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.6,
    "axes.prop_cycle": plt.cycler(color=list(PALETTE)), "mathtext.default": "regular",
    **BASE_FONTS,
}
"""The house matplotlib ``rcParams`` (palette, grid, spines, fonts at page width) that
:func:`figure` applies."""

OK = "ok"
"""The status of a run that ended well; any other status is drawn distinctly and labelled."""
# How a run that did not end well is drawn: dashed, hollow markers, its status in its label.
FLAGGED_STYLE = {"linestyle": (0, (4, 2)), "markerfacecolor": "white"}
STATUS_GID = "run-status:"


def color_for(name: str, index: int = 0) -> str:
    """The colour of an optimizer (by its base name), or a palette colour.

    Args:
      name: an optimizer name ("SAM (rho=0.1)" counts as "sam").
      index: the palette position used for names without a colour of their own.

    Returns:
      A hex colour from the colour-blind-safe palette.
    """
    key = name.lower().split(" ")[0].split("(")[0]
    return OPTIMIZER_COLORS.get(key, _FALLBACK[index % len(_FALLBACK)])


def font_scale(width: float) -> float:
    """How much larger than the page fonts must be for a figure ``width`` inches wide to show
    them at their base size once it is scaled down to :data:`PAGE_WIDTH`.

    Args:
      width: the figure's width in inches.

    Returns:
      ``max(1, width / PAGE_WIDTH)``.
    """
    return max(1.0, float(width) / PAGE_WIDTH)


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 3.4, height: float = 2.8, **kwargs):
    """A figure in the house style with ``nrows x ncols`` panels of the given size (inches).

    Fonts are scaled with the figure's total width (:func:`font_scale`), so a wide multi-panel
    figure shown at page width still has fonts of at least :data:`MIN_FONT_PT`.

    Args:
      nrows: rows of panels (>= 1).
      ncols: columns of panels (>= 1).
      width: width of one panel, in inches.
      height: height of one panel, in inches.
      **kwargs: passed on to ``matplotlib.pyplot.subplots``.

    Returns:
      ``(fig, axes)`` with ``axes`` a 2-d array (``squeeze=False``), constrained layout.
    """
    scale = font_scale(width * ncols)
    plt.rcParams.update(STYLE)
    plt.rcParams.update({key: size * scale for key, size in BASE_FONTS.items()})
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                        layout="constrained", **kwargs)


def finding(fig, text: str):
    """Title ``fig`` with its one-line finding (what the figure shows, not what its axes are),
    e.g. "SAM drives |B| to 0; SGD keeps it".

    A finding wider than the figure is wrapped (never inside ``$...$``), so that it does not
    widen the saved figure.

    Args:
      fig: the matplotlib figure.
      text: the finding, one sentence (mathtext inside ``$...$``).

    Returns:
      The title's text artist.
    """
    import textwrap

    size = plt.rcParams["figure.titlesize"]
    size = size if isinstance(size, (int, float)) else BASE_FONTS["figure.titlesize"]
    columns = max(20, int(fig.get_size_inches()[0] * 72 / (0.6 * float(size))))
    pieces = text.split("$")
    glued = "$".join(p.replace(" ", "\x00") if i % 2 else p for i, p in enumerate(pieces))
    wrapped = "\n".join(textwrap.wrap(glued, columns)).replace("\x00", " ")
    return fig.suptitle(wrapped, fontweight="bold")


def status_label(label: str, status: str) -> str:
    """A run's legend label with its status appended when it is not "ok".

    Args:
      label: the legend label.
      status: the run's status ("ok", "diverged", "saddle", ...).

    Returns:
      ``label``, or ``"label [status]"`` for a status other than "ok".
    """
    return label if status == OK else f"{label} [{status}]"


def mark_status(artists, status: str):
    """Tag ``artists`` (lines, bands) with a run's status, for the figure lint.

    Args:
      artists: matplotlib artists drawn for one run.
      status: the run's status.

    Returns:
      ``artists``, tagged.
    """
    for artist in artists:
        artist.set_gid(STATUS_GID + status)
    return artists


def status_of(artist) -> str | None:
    """The run status an artist was tagged with by :func:`mark_status`.

    Args:
      artist: a matplotlib artist.

    Returns:
      The status string, or None for an untagged artist.
    """
    gid = artist.get_gid() or ""
    return gid[len(STATUS_GID):] if gid.startswith(STATUS_GID) else None


def plot_run(ax, x, y, *args, label: str, status: str = OK, **kwargs):
    """``ax.plot`` for one run (or a median over seeds) with its status: a run whose status is
    not "ok" is drawn dashed with hollow markers and labelled with its status.

    Args:
      ax: the axes to draw on.
      x: the x values.
      y: the y values.
      *args: a format string etc., passed on to ``ax.plot``.
      label: the legend label (the status is appended when it is not "ok").
      status: the run's status.
      **kwargs: passed on to ``ax.plot``.

    Returns:
      The list of lines drawn.
    """
    if status != OK:
        kwargs = {**FLAGGED_STYLE, **kwargs}  # a marker-only run may keep linestyle="none"
    lines = ax.plot(x, y, *args, label=status_label(label, status), **kwargs)
    return mark_status(lines, status)


def band(ax, x, values, *, label: str, color: str, axis: int = 0, log: bool = False,
         status: str = OK, **line_kwargs):
    """Median line with a 10-90% band over ``axis`` (seeds); a run whose status is not "ok" is
    drawn dashed, with a hatched band, and labelled with its status.

    Args:
      ax: the axes to draw on.
      x: the x values, one per entry of the median.
      values: the curves (seeds along ``axis``); NaN is ignored.
      label: the legend label of the median line.
      color: the colour of line and band.
      axis: the axis of ``values`` the median and percentiles are taken over.
      log: use a logarithmic y axis.
      status: the run's status.
      **line_kwargs: passed on to the median line's ``ax.plot``.

    Returns:
      ``ax``.
    """
    import numpy as np

    values = np.asarray(values, dtype=float)
    median = np.nanmedian(values, axis=axis)
    low, high = np.nanpercentile(values, [10, 90], axis=axis)
    lines = plot_run(ax, x, median, color=color, label=label, status=status, **line_kwargs)
    fill = ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0,
                           hatch=None if status == OK else "//")
    mark_status([fill], status)
    del lines
    if log:
        ax.set_yscale("log")
    return ax


def legend_right(ax, source=None, **kwargs):
    """A legend outside ``ax``, to its right (constrained layout makes room for it), of the
    labelled artists of ``source`` (default: ``ax``; another panel of the same row, say).

    Args:
      ax: the axes the legend belongs to.
      source: the axes whose labelled artists are listed (default ``ax``).
      **kwargs: passed on to ``ax.legend``.

    Returns:
      The legend.
    """
    handles, labels = (ax if source is None else source).get_legend_handles_labels()
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0.0, **kwargs)


def figure_legend(fig, axes=None, *, ncol: int | None = None, where: str = "outside lower center",
                  **kwargs):
    """One legend for the whole figure, outside every panel: the distinct labels of ``axes``
    (default: all), in order of first appearance.

    Args:
      fig: the figure.
      axes: the panels whose labels are collected (default: every panel of ``fig``).
      ncol: legend columns (default: up to 4).
      where: the legend's ``loc`` ("outside lower center" keeps it off every panel).
      **kwargs: passed on to ``fig.legend``.

    Returns:
      The legend, or None if nothing is labelled.
    """
    handles, labels = [], []
    for ax in (fig.axes if axes is None else axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if not labels:
        return None
    return fig.legend(handles, labels, loc=where, ncol=ncol or min(len(labels), 4), **kwargs)


def key_legend(fig, colors: dict | None = None, styles: dict | None = None, statuses=(), *,
               where: str = "outside lower center", ncol: int | None = None, **kwargs):
    """One figure legend that explains colours and line styles separately (instead of one entry
    per colour x style), outside every panel.

    Args:
      fig: the figure.
      colors: label -> colour (drawn as solid lines).
      styles: label -> Line2D keywords (``{"linestyle": "--"}``, ``{"marker": "o",
        "linestyle": "none"}``), drawn in grey.
      statuses: run statuses shown in the figure (drawn as runs that did not end well are).
      where: the legend's ``loc``.
      ncol: legend columns (default: up to 4).
      **kwargs: passed on to ``fig.legend``.

    Returns:
      The legend.
    """
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color, label=label) for label, color in (colors or {}).items()]
    handles += [Line2D([], [], color="0.35", label=label, **style)
                for label, style in (styles or {}).items()]
    handles += [Line2D([], [], color="0.35", marker="o", label=f"[{status}]", **FLAGGED_STYLE)
                for status in statuses]
    return fig.legend(handles=handles, loc=where, ncol=ncol or min(len(handles), 4), **kwargs)


def slide_copy(fig, path, *, dpi: int = 110) -> None:
    """Save ``fig`` again as a 16:9 slide (:data:`SLIDE_SIZE`) with every font
    :data:`SLIDE_FONT_SCALE` times its size at page width; ``fig`` is left as it was.

    Args:
      fig: the figure.
      path: where to save the slide (the format follows the suffix).
      dpi: resolution of the saved slide.

    Returns:
      None.
    """
    from matplotlib.text import Text

    size = tuple(fig.get_size_inches())
    factor = SLIDE_FONT_SCALE / font_scale(size[0])
    ticks = {}
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = axis.get_ticklabels()
            ticks[(ax, name)] = labels[0].get_fontsize() if labels else BASE_FONTS["xtick.labelsize"]
    tick_labels = {id(label) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
                   for tick in axis.get_major_ticks() + axis.get_minor_ticks()
                   for label in (tick.label1, tick.label2)}
    texts = {}
    for text in fig.findobj(Text):
        if id(text) not in tick_labels and id(text) not in texts:
            texts[id(text)] = (text, text.get_fontsize())
    try:
        for (ax, name), tick_size in ticks.items():
            ax.tick_params(axis=name, labelsize=tick_size * factor)
        for text, text_size in texts.values():
            text.set_fontsize(text_size * factor)
        fig.set_size_inches(*SLIDE_SIZE)
        fig.savefig(path, dpi=dpi)
    finally:
        for (ax, name), tick_size in ticks.items():
            ax.tick_params(axis=name, labelsize=tick_size)
        for text, text_size in texts.values():
            text.set_fontsize(text_size)
        fig.set_size_inches(*size)


__all__ = ["figure", "finding", "color_for", "band", "plot_run", "status_label", "mark_status",
           "status_of", "legend_right", "figure_legend", "key_legend", "slide_copy", "font_scale", "STYLE",
           "PALETTE", "OPTIMIZER_COLORS", "PAGE_WIDTH", "MIN_FONT_PT", "SLIDE_SIZE", "OK"]


def save_figure(fig, png_path, svg_path=None, *, dpi: float = 150, pad_inches: float | None = None,
                lint=None):
    """Save ``fig`` as a PNG (and an SVG) cropped to its tight bounding box, from one drawing.

    ``fig.savefig(..., bbox_inches="tight")`` draws a figure twice per file, once to find the
    box and once to render it, and with constrained layout each draw lays the figure out again;
    text layout (tick labels, mathtext) is most of a draw. Here the figure is drawn once, at
    ``dpi``, on its Agg canvas: the PNG is that drawing cropped to the tight box (padded by
    ``pad_inches``, the background colour filling a pad beyond the figure's edge), and the SVG
    renders the same box with the layout of that drawing kept. A figure whose artists reach
    beyond its own edge, or that has no Agg canvas, is saved by ``savefig(bbox_inches="tight")``.

    Args:
      fig: the figure.
      png_path: where to write the PNG.
      svg_path: where to write the SVG (None: no SVG).
      dpi: resolution of the PNG (and of the drawing ``lint`` sees).
      pad_inches: the margin around the tight box (default: ``savefig.pad_inches``).
      lint: a function ``lint(renderer)`` called on the drawing, while ``fig`` is at ``dpi``
        (``Lab.savefig`` passes ``st.plotting.lint.lint_figure``); its result is returned.

    Returns:
      What ``lint`` returned (None without ``lint``).
    """
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    pad = mpl.rcParams["savefig.pad_inches"] if pad_inches is None else pad_inches
    if not isinstance(fig.canvas, FigureCanvasAgg):
        fig.savefig(png_path, dpi=dpi, bbox_inches="tight", pad_inches=pad)
        if svg_path is not None:
            fig.savefig(svg_path, dpi=dpi, bbox_inches="tight", pad_inches=pad)
        return lint(None) if lint is not None else None

    original_dpi = fig.dpi
    engine = fig.get_layout_engine()
    try:
        fig.set_dpi(dpi)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        result = lint(renderer) if lint is not None else None
        tight = fig.get_tightbbox(renderer)
        width, height = fig.get_size_inches()
        half_pixel = 0.5 / dpi
        inside = (tight.x0 >= -half_pixel and tight.y0 >= -half_pixel
                  and tight.x1 <= width + half_pixel and tight.y1 <= height + half_pixel)
        box = tight.padded(pad)
        if inside:
            _write_cropped_png(fig, png_path, box, dpi)
        # The layout of the drawing above stands: without a layout engine, savefig with a
        # given box draws once (with one, or with "tight", it draws a second time to lay out).
        with mpl.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            fig.set_layout_engine(None)
        if not inside:  # an artist reaches beyond the figure's edge: render the whole box
            fig.savefig(png_path, dpi=dpi, bbox_inches=box)
        if svg_path is not None:
            fig.savefig(svg_path, dpi=dpi, bbox_inches=box)
        return result
    finally:
        if engine is not None and fig.get_layout_engine() is None:
            fig.set_layout_engine(engine)
        fig.set_dpi(original_dpi)


def _write_cropped_png(fig, path, box, dpi: float) -> None:
    """The Agg drawing of ``fig`` (at ``dpi``) cut to ``box`` (inches; a part beyond the figure
    is filled with its background colour), written as a PNG of that resolution."""
    import math

    import matplotlib as mpl
    import numpy as np
    from matplotlib.colors import to_rgba

    pixels = np.asarray(fig.canvas.buffer_rgba())
    rows, columns = pixels.shape[:2]
    left, right = math.floor(box.x0 * dpi), math.ceil(box.x1 * dpi)
    top, bottom = rows - math.ceil(box.y1 * dpi), rows - math.floor(box.y0 * dpi)
    facecolor = mpl.rcParams["savefig.facecolor"]
    if isinstance(facecolor, str) and facecolor == "auto":
        facecolor = fig.get_facecolor()
    background = np.round(np.asarray(to_rgba(facecolor)) * 255).astype(np.uint8)
    out = np.empty((bottom - top, right - left, 4), dtype=np.uint8)
    out[...] = background
    src_top, src_left = max(top, 0), max(left, 0)
    src_bottom, src_right = min(bottom, rows), min(right, columns)
    out[src_top - top:src_bottom - top, src_left - left:src_right - left] = \
        pixels[src_top:src_bottom, src_left:src_right]
    mpl.image.imsave(path, out, format="png", dpi=dpi)
