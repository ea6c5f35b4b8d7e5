"""A figure lint: what a reader needs to understand a figure without the text, measured from the
figure's artists after it is drawn.

``lint_figure(fig)`` returns a list of problems (empty: the figure passes):

- every axes has an x and a y label (a colour bar: a label on its long side);
- no text contains unrendered TeX (``^{``, ``_{``, a backslash command, a brace, or a sub- or
  superscript glued to a symbol such as ``X_f`` or ``d^2``, outside ``$...$``), and every
  ``$`` is paired;
- every font is at least :data:`~sharp_theory.plotting.MIN_FONT_PT` once the figure, at the size
  it is saved (tight bounding box), is shown at :data:`~sharp_theory.plotting.PAGE_WIDTH`;
- no legend covers more than :data:`MAX_LEGEND_COVER` of the plotted points of any axes (line
  vertices and scatter offsets inside the axes, in display coordinates) or of an image's area;
- no two axes titles, axis labels, legends or the figure title overlap;
- the figure has a finding as its title (``fig.suptitle``, see
  :func:`sharp_theory.plotting.finding`);
- honest annotations: each run the caller declares with a status other than "ok" (``runs``:
  legend label -> status, from the numbers) is drawn with the status mark of
  :func:`sharp_theory.plotting.plot_run` / :func:`~sharp_theory.plotting.band` (not solid, its
  status in its label), and every artist tagged with such a status is drawn that way.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from . import MIN_FONT_PT, OK, PAGE_WIDTH, status_of

# The largest fraction of an axes' plotted points (or image area) a legend may cover.
MAX_LEGEND_COVER = 0.02
# ^{ _{ \command, braces, and a sub/superscript glued to a symbol (X_f, ‖A‖_F, d^2)
_RAW_TEX = re.compile(r"\^\{|_\{|\\[A-Za-z]+|[{}]|\S_[A-Za-z0-9*]|\S\^\S")
_SOLID = ("-", "solid")


def _axes_name(fig, ax) -> str:
    index = fig.axes.index(ax)
    title = ax.get_title() or ax.get_title("left") or ""
    return f"axes {index}" + (f" ({title.splitlines()[0][:40]!r})" if title else "")


def _visible_texts(fig):
    from matplotlib.text import Text

    seen = set()
    for text in fig.findobj(Text):
        if id(text) in seen:
            continue
        seen.add(id(text))
        if text.get_visible() and text.get_text().strip() and _shown(text):
            yield text


def _shown(artist) -> bool:
    """Whether every parent of ``artist`` we can see is visible too (a hidden legend's texts)."""
    parent = getattr(artist, "axes", None)
    return parent is None or parent.get_visible()


def raw_tex(text: str) -> str | None:
    """The first piece of unrendered TeX in ``text`` (outside ``$...$``), or None.

    Args:
      text: a label as given to matplotlib.

    Returns:
      The offending fragment, "unpaired $" if a math segment is left open, or None.
    """
    unescaped = text.replace(r"\$", "")
    pieces = unescaped.split("$")
    if len(pieces) % 2 == 0:
        return "unpaired $"
    for outside in pieces[::2]:
        match = _RAW_TEX.search(outside)
        if match:
            return outside[max(0, match.start() - 6): match.end() + 6]
    return None


def saved_width(fig, renderer) -> float:
    """The width (inches) ``fig`` is saved at with ``bbox_inches="tight"``."""
    tight = fig.get_tightbbox(renderer)
    return max(float(fig.get_size_inches()[0]), float(tight.width))


def _plotted_points(ax) -> np.ndarray:
    """Display coordinates of the line vertices and scatter offsets shown inside ``ax``."""
    chunks = []
    for line in ax.get_lines():
        if not line.get_visible():
            continue
        xy = np.asarray(line.get_xydata(), dtype=float)
        if xy.size:
            chunks.append(line.get_transform().transform(xy))
    for collection in ax.collections:  # scatter plots; bands and meshes are areas, not points
        if type(collection).__name__ != "PathCollection" or not collection.get_visible():
            continue
        offsets = np.asarray(collection.get_offsets(), dtype=float)
        if offsets.size:
            chunks.append(collection.get_offset_transform().transform(offsets))
    if not chunks:
        return np.zeros((0, 2))
    points = np.concatenate(chunks)
    points = points[np.all(np.isfinite(points), axis=1)]
    box = ax.get_window_extent()
    inside = ((points[:, 0] >= box.x0) & (points[:, 0] <= box.x1)
              & (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1))
    return points[inside]


def _overlap_area(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def legend_cover(fig, renderer) -> list[tuple[object, float]]:
    """(axes, the largest fraction of its plotted points, or image area, under any legend)."""
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    boxes = [legend.get_window_extent(renderer) for legend in legends if legend.get_visible()]
    found = []
    for ax in fig.axes:
        if not ax.get_visible() or not boxes:
            continue
        points = _plotted_points(ax)
        worst = 0.0
        for box in boxes:
            if len(points):
                covered = ((points[:, 0] >= box.x0) & (points[:, 0] <= box.x1)
                           & (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1))
                worst = max(worst, float(np.mean(covered)))
            for image in ax.images + [c for c in ax.collections if type(c).__name__ == "QuadMesh"]:
                extent = image.get_window_extent(renderer)
                area = extent.width * extent.height
                if area > 0:
                    worst = max(worst, _overlap_area(extent, box) / area)
        found.append((ax, worst))
    return found


def overlapping_texts(fig, renderer) -> list[tuple[str, str]]:
    """Pairs of axes titles, axis labels, legends and the figure title whose display boxes
    overlap."""
    boxes = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
            if text.get_visible() and text.get_text().strip():
                boxes.append((text.get_text(), text.get_window_extent(renderer)))
        if ax.get_legend() is not None:
            boxes.append(("legend", ax.get_legend().get_window_extent(renderer)))
    boxes += [("figure legend", legend.get_window_extent(renderer)) for legend in fig.legends]
    title = fig.get_suptitle()
    if title:
        from matplotlib.text import Text

        boxes += [(title, text.get_window_extent(renderer)) for text in fig.findobj(Text)
                  if text.axes is None and text.get_text() == title and text.get_visible()]
    found = []
    for i, (first, a) in enumerate(boxes):
        for second, b in boxes[i + 1:]:
            if _overlap_area(a, b) > 1.0:
                found.append((first, second))
    return found


def _is_colorbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None


def lint_figure(fig, *, runs: Mapping[str, str] | None = None, renderer=None) -> list[str]:
    """The problems a reader would have with ``fig`` (empty list: none).

    Args:
      fig: a matplotlib figure, complete (it is drawn once here).
      runs: legend label (or its start) -> status ("ok", "diverged", "not fitted",
        "at the saddle", ...) of the runs the figure shows, as measured by the lab; each run
        whose status is not "ok" must be drawn with its status mark. A key
        ``"LABEL @ PANEL"`` names the run only in the axes whose label (``ax.set_label``) or
        title contains PANEL.
      renderer: the renderer of a current drawing of ``fig`` (``st.plotting.save_figure``
        passes the one its PNG came from, so the lint judges the saved layout); None: ``fig``
        is drawn here.

    Returns:
      One line per problem, naming the axes or text concerned.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if renderer is None:
        if fig.canvas is None or not hasattr(fig.canvas, "get_renderer"):
            FigureCanvasAgg(fig)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
    problems: list[str] = []

    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        name = _axes_name(fig, ax)
        xlabel, ylabel = ax.get_xlabel().strip(), ax.get_ylabel().strip()
        if _is_colorbar(ax):
            if not (xlabel or ylabel):
                problems.append(f"{name}: colour bar without a label")
            continue
        if not xlabel:
            problems.append(f"{name}: no x label")
        if not ylabel:
            problems.append(f"{name}: no y label")

    width = saved_width(fig, renderer)
    shown = min(1.0, PAGE_WIDTH / width)
    small = []
    for text in _visible_texts(fig):
        content = text.get_text()
        fragment = raw_tex(content)
        if fragment is not None:
            problems.append(f"raw TeX {fragment!r} in text {content[:60]!r} (use $...$ mathtext)")
        size = text.get_fontsize() * shown
        if size < MIN_FONT_PT - 1e-6:
            small.append((size, content))
    if small:
        size, content = min(small)
        problems.append(f"{len(small)} text(s) below {MIN_FONT_PT:g} pt at page width "
                        f"({PAGE_WIDTH:g} in; figure saved {width:.1f} in wide), smallest "
                        f"{size:.1f} pt: {content[:40]!r}")

    for ax, fraction in legend_cover(fig, renderer):
        if fraction > MAX_LEGEND_COVER:
            problems.append(f"{_axes_name(fig, ax)}: a legend covers {fraction:.0%} of the plotted "
                            f"data (at most {MAX_LEGEND_COVER:.0%}; move it outside or split it)")

    for first, second in overlapping_texts(fig, renderer):
        problems.append(f"texts overlap: {first[:40]!r} and {second[:40]!r}")

    title = fig.get_suptitle().strip()
    if not title:
        problems.append("no finding: give the figure a one-line finding as its title "
                        "(st.plotting.finding)")

    legend_texts = " ".join(t.get_text() for t in _visible_texts(fig))
    drawn = [artist for ax in fig.axes for artist in list(ax.get_lines()) + list(ax.collections)]
    for artist in drawn:
        status = status_of(artist)
        if status is None or status == OK:
            continue
        label = artist.get_label()
        if hasattr(artist, "get_linestyle") and type(artist).__name__ == "Line2D" \
                and artist.get_linestyle() in _SOLID:
            problems.append(f"run {label!r} ({status}) is drawn solid, like a run that ended well")
        if status not in legend_texts:
            problems.append(f"run {label!r} ({status}): the figure does not say so")
    for run, status in (runs or {}).items():
        if status == OK:
            continue
        label, _, panel = run.partition(" @ ")
        mine = [a for ax in fig.axes if panel in ax.get_label() or panel in ax.get_title()
                for a in list(ax.get_lines()) + list(ax.collections)
                if a.get_label().startswith(label)]
        if not mine:
            problems.append(f"run {run!r} ({status}) is declared but not found among the "
                            f"labelled artists")
        elif any(status_of(a) != status for a in mine):
            problems.append(f"run {run!r} is {status} but drawn as if it ended well (unmarked: "
                            f"use st.plotting.plot_run/band with status=)")
    return list(dict.fromkeys(problems))


__all__ = ["lint_figure", "raw_tex", "legend_cover", "saved_width", "MAX_LEGEND_COVER"]
