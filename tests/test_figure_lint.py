"""The figure lint fails on the figures issue 18 found wanting (reconstructed here) and passes on
their fixed versions; each rule can fail on its own."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st_  # noqa: E402

from sharp_theory import plotting  # noqa: E402
from sharp_theory.plotting.lint import lint_figure, raw_tex  # noqa: E402

STEPS = np.arange(0, 10_001, 100)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _phase_panel(reference_label: str, legend_loc: str = "upper left"):
    """The benign-overfitting phase diagram of before issue 18: an image, a fitted boundary, and
    its reference line."""
    fig, axes = plotting.figure(1, 1, width=4.6, height=3.8)
    ax = axes[0][0]
    dims = np.array([50.0, 100.0, 200.0, 400.0])
    ax.imshow(np.random.default_rng(0).random((6, 4)), origin="lower", aspect="auto",
              extent=(dims[0], dims[-1], 0.5, 3.0))
    ax.plot(dims, 0.6 * dims ** 0.25, "w:", label=reference_label)
    ax.set_xlabel("dimension d")
    ax.set_ylabel("signal strength")
    ax.legend(loc=legend_loc)
    return fig, ax


def test_lint_fails_on_the_raw_tex_label_of_the_phase_diagram():
    fig, _ = _phase_panel("reference ∝ d^{1/4}")
    plotting.finding(fig, "SAM is benign where SGD is not")
    problems = lint_figure(fig)
    assert any("raw TeX" in p and "d^{1/4}" in p for p in problems), problems
    # The legend sat over the image: that is found too.
    assert any("legend covers" in p for p in problems), problems


def test_the_fixed_phase_diagram_passes():
    fig, ax = _phase_panel("reference $\\propto d^{1/4}$")
    ax.get_legend().remove()
    plotting.legend_right(ax)
    plotting.finding(fig, "SAM is benign where SGD is not")
    assert lint_figure(fig) == []


def _dynamics(marked: bool, *, finding: bool = True):
    """matrix-sensing/dynamics.png of before issue 18, small-init row: SAM stays at the zero
    matrix (the saddle) but was drawn like the others, solid, and looked best on the str panel."""
    rng = np.random.default_rng(1)
    fig, axes = plotting.figure(1, 2, width=3.4, height=2.8)
    curves = {"GD": np.exp(-STEPS / 2000.0) + 4.0, "SAM (ρ = 0.1)": 1e-4 + 0 * STEPS,
              "nBAR": np.exp(-STEPS / 3000.0) + 4.2}
    for ax, title in zip(axes[0], ("scaled Hessian trace", "training loss")):
        for index, (label, curve) in enumerate(curves.items()):
            values = curve[None, :] * (1 + 0.01 * rng.standard_normal((4, STEPS.size)))
            status = "at the saddle X = 0" if (marked and label.startswith("SAM")) else "ok"
            plotting.band(ax, STEPS, values, label=label, color=plotting.color_for(label, index),
                          log=True, status=status)
        ax.set_title(f"{title} (small balanced init)")
        ax.set_xlabel("step")
        ax.set_ylabel(title)
    plotting.figure_legend(fig)
    if finding:
        plotting.finding(fig, "From a small balanced init, SAM stays at the saddle X = 0")
    return fig


def test_lint_fails_on_the_unmarked_saddle_of_the_matrix_sensing_dynamics():
    runs = {"SAM": "at the saddle X = 0", "GD": "ok"}
    problems = lint_figure(_dynamics(marked=False), runs=runs)
    assert any("drawn as if it ended well" in p for p in problems), problems
    assert lint_figure(_dynamics(marked=True), runs=runs) == []


def test_a_run_declared_only_in_one_panel_is_looked_for_there_only():
    runs = {"SAM @ large init": "diverged"}
    assert lint_figure(_dynamics(marked=False), runs=runs) == [
        "run 'SAM @ large init' (diverged) is declared but not found among the labelled artists"]


def test_a_marked_run_must_be_drawn_distinctly_and_say_its_status():
    fig, axes = plotting.figure()
    ax = axes[0][0]
    lines = ax.plot(STEPS, np.sqrt(STEPS), label="SAM")
    plotting.mark_status(lines, "diverged")
    ax.set(xlabel="step", ylabel="loss")
    plotting.legend_right(ax)
    plotting.finding(fig, "SAM diverges")
    problems = lint_figure(fig)
    assert any("drawn solid" in p for p in problems), problems
    assert any("does not say so" in p for p in problems), problems


def test_lint_wants_labels_a_finding_and_legible_fonts():
    fig, axes = plotting.figure(1, 3, width=4.3)
    for ax in axes[0]:
        ax.plot(STEPS, STEPS, label="gd")
    axes[0][0].legend(fontsize=6, loc="lower right")
    problems = lint_figure(fig)
    assert sum("no x label" in p for p in problems) == 3, problems
    assert any("no finding" in p for p in problems), problems
    assert any("below 7 pt" in p for p in problems), problems
    # The house style scales every default font with the width: only the 6 pt legend is small.
    assert any("1 text(s) below" in p for p in problems), problems


def test_the_legend_check_counts_covered_points():
    fig, axes = plotting.figure()
    ax = axes[0][0]
    x = np.linspace(0, 1, 200)
    ax.plot(x, np.ones_like(x), label="flat line under the legend")
    ax.set_ylim(0.0, 1.1)
    ax.set(xlabel="x", ylabel="y")
    ax.legend(loc="upper center")
    plotting.finding(fig, "a line")
    assert any("legend covers" in p for p in lint_figure(fig))
    ax.get_legend().remove()
    ax.legend(loc="lower center")
    assert lint_figure(fig) == []


@settings(max_examples=50, deadline=None)
@given(st_.text(alphabet="ab d$^_{}1/4\\", max_size=12))
def test_raw_tex_sees_nothing_inside_paired_dollars(text):
    wrapped = "$" + text.replace("$", "").rstrip("\\") + "$"  # no escaped closing dollar
    assert raw_tex(wrapped) is None
    if any(piece in text.replace("$", "") for piece in ("^{", "_{", "{", "}")) and "$" not in text:
        assert raw_tex(text) is not None


@pytest.mark.parametrize("text, bad", [("d^{1/4}", True), ("$d^{1/4}$", False),
                                        ("(1/T) Σ_{t<T} ‖∇L‖²", True), ("‖X‖_F", True),
                                        ("$\\|X\\|_F$", False), ("cost $5", True),
                                        ("test error", False), ("ρ = 0.1", False)])
def test_raw_tex_examples(text, bad):
    assert (raw_tex(text) is not None) is bad


def test_slide_copy_is_16_by_9_with_larger_fonts_and_leaves_the_figure(tmp_path, monkeypatch):
    fig = _dynamics(marked=True)
    before = fig.axes[0].xaxis.label.get_fontsize()
    size = tuple(fig.get_size_inches())
    seen = {}

    def spy(path, **kwargs):
        seen["size"] = tuple(fig.get_size_inches())
        seen["font"] = fig.axes[0].xaxis.label.get_fontsize()
        path.write_bytes(b"png")

    monkeypatch.setattr(fig, "savefig", spy)
    plotting.slide_copy(fig, tmp_path / "x-slide.png")
    width, height = seen["size"]
    assert width / height == pytest.approx(16 / 9, rel=1e-2)
    assert seen["font"] == pytest.approx(before * plotting.SLIDE_FONT_SCALE
                                         / plotting.font_scale(size[0]))
    assert seen["font"] > before
    assert tuple(fig.get_size_inches()) == size
    assert fig.axes[0].xaxis.label.get_fontsize() == before


# --- st.plotting.save_figure: one drawing for the PNG, the SVG and the lint ----------------------

def _counted_draws(fig):
    """Make ``fig`` count its draws (any renderer) in the returned list."""
    draws = []
    draw = fig.draw

    def counting(renderer):
        draws.append(type(renderer).__name__)
        return draw(renderer)
    fig.draw = counting
    return draws


def _log_panels(outside_text: bool = False):
    fig, axes = plotting.figure(1, 2, width=5.0, height=2.4)
    for ax in np.ravel(axes):
        ax.semilogy(STEPS, 1e-3 + np.exp(-STEPS / 2000), label=r"$\lambda_{max}$")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.legend()
    plotting.finding(fig, "a finding")
    if outside_text:  # an artist beyond the figure's right edge
        fig.text(1.05, 0.5, "beyond the edge")
    return fig


def _picture_difference(first: np.ndarray, second: np.ndarray, block: int = 6) -> float:
    """How far two renderings of one picture differ: the largest difference (0-255) of the mean
    colour of any 6 × 6-pixel block, at the best of the shifts by up to one pixel (renderings of
    one figure at sub-pixel offsets differ along thin lines, not block by block)."""
    rows = (min(first.shape[0], second.shape[0]) - 2) // block * block
    columns = (min(first.shape[1], second.shape[1]) - 2) // block * block

    def means(image):
        return image.reshape(rows // block, block, columns // block, block, -1).mean(axis=(1, 3))
    reference = means(first[1:1 + rows, 1:1 + columns].astype(float))
    return min(np.abs(reference - means(second[1 + dy:1 + dy + rows, 1 + dx:1 + dx + columns]
                                        .astype(float))).max()
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


@pytest.mark.parametrize("outside_text", [False, True])
def test_save_figure_draws_once_and_saves_what_a_tight_savefig_saves(tmp_path, outside_text):
    from PIL import Image

    fig = _log_panels(outside_text)
    fig.savefig(tmp_path / "reference.png", dpi=150, bbox_inches="tight")
    fig.savefig(tmp_path / "reference.svg", dpi=150, bbox_inches="tight")
    dpi, engine = fig.dpi, fig.get_layout_engine()
    draws = _counted_draws(fig)
    linted = []
    problems = plotting.save_figure(fig, tmp_path / "one.png", tmp_path / "one.svg", dpi=150,
                                    lint=lambda renderer: linted.append(renderer) or ["seen"])
    # One Agg drawing (the PNG, and the lint's), one SVG drawing; a PNG that must show an artist
    # beyond the figure's edge is rendered once more, over the whole box.
    assert draws == ["RendererAgg"] * (2 if outside_text else 1) + ["MixedModeRenderer"]
    assert problems == ["seen"] and linted[0] is not None
    assert fig.dpi == dpi and fig.get_layout_engine() is engine
    reference = np.asarray(Image.open(tmp_path / "reference.png").convert("RGB"))
    saved = np.asarray(Image.open(tmp_path / "one.png").convert("RGB"))
    assert abs(saved.shape[0] - reference.shape[0]) <= 2
    assert abs(saved.shape[1] - reference.shape[1]) <= 2
    # The same picture up to sub-pixel offsets (measured 30-37), where one changed letter of a
    # text is 70: the check can tell them apart.
    assert _picture_difference(reference, saved) < 50
    fig.texts[-1].set_text(fig.texts[-1].get_text()[:-1] + "X")
    plotting.save_figure(fig, tmp_path / "changed.png")
    changed = np.asarray(Image.open(tmp_path / "changed.png").convert("RGB"))
    assert _picture_difference(reference, changed) > 50
    assert Image.open(tmp_path / "one.png").info["dpi"][0] == pytest.approx(150, abs=0.1)
    if outside_text:  # the text beyond the edge is in the picture: wider than the figure
        assert saved.shape[1] > 5.0 * 150
    width = lambda svg: float(svg.read_text()[:800].split('width="')[1].split("pt")[0])
    assert width(tmp_path / "one.svg") == pytest.approx(width(tmp_path / "reference.svg"), abs=2.0)


def test_the_lint_of_a_saved_figure_judges_the_saved_drawing(tmp_path):
    """The lint run by save_figure finds what it finds on a fresh drawing (here: two titles
    forced onto each other), and a clean figure stays clean."""
    fig = _log_panels()
    assert plotting.save_figure(fig, tmp_path / "a.png", lint=lambda r: lint_figure(fig, renderer=r)) == []
    fig = _log_panels()
    for ax in fig.axes:  # x labels far wider than their panels run into each other
        ax.set_xlabel("a long label that runs over into the next panel " * 2)
    fresh = lint_figure(fig)
    saved = plotting.save_figure(fig, tmp_path / "b.png", lint=lambda r: lint_figure(fig, renderer=r))
    assert any("overlap" in problem for problem in fresh)
    assert [p for p in saved if "overlap" in p] == [p for p in fresh if "overlap" in p]
